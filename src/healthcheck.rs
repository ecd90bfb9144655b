//! The `healthcheck` subcommand: one plain-HTTP GET of the health endpoint, for container
//! health checks in images that have no shell or curl.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// GETs `url` (`http://host:port/path`) and succeeds on a 200.
pub async fn check(url: &str, timeout: Duration) -> anyhow::Result<()> {
    tokio::time::timeout(timeout, get_status(url))
        .await
        .with_context(|| format!("no answer from {url} within {timeout:?}"))?
        .and_then(|status| {
            if status == 200 {
                Ok(())
            } else {
                bail!("{url} answered {status}")
            }
        })
}

async fn get_status(url: &str) -> anyhow::Result<u16> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = vec![0_u8; 64];
    let read = stream.read(&mut head).await?;
    let line = String::from_utf8_lossy(&head[..read]);
    // "HTTP/1.1 200 OK"
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("{url}: not an HTTP answer"))
}
