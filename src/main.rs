//! Binary entry point: parse flags, set up logging, build and serve the emulator.

use std::process::ExitCode;
use std::sync::Arc;

use acs_chat_emulator::clock::SystemClock;
use acs_chat_emulator::config::{Cli, Command, Config};
use acs_chat_emulator::{App, build_app, commands, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.command {
        None => cli.serve,
        Some(Command::Serve(config)) => config,
        Some(Command::Healthcheck(args)) => return commands::healthcheck(args).await,
        Some(Command::ConnectionString(args)) => return commands::connection_string(&args),
        Some(Command::Export(args)) => return exit(commands::export(args).await),
        Some(Command::Import(args)) => return exit(commands::import(args).await),
        Some(Command::Reset(args)) => return exit(commands::reset(args).await),
    };
    telemetry::init_tracing(config.log_format);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("acs-chat-emulator: {e:#}");
            // 1: could not start or serve (port taken, unreadable data dir, bad flag value).
            ExitCode::from(1)
        }
    }
}

/// 0 on success; 1 with the error on stderr.
fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("acs-chat-emulator: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let app = build_app(config, Arc::new(SystemClock)).await?;
    print_banner(&app);
    app.serve(shutdown).await
}

/// What a user needs to connect, printed once on stdout.
fn print_banner(app: &App) {
    let config = &app.state.config;
    let https = match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("https://{}", display_addr(app.https_addr)),
    };
    let ca = app.tls.trust_path.display();
    let storage = if config.in_memory {
        "in memory (nothing is kept)".to_owned()
    } else {
        config.data_dir.join("emulator.db").display().to_string()
    };
    println!("acs-chat-emulator {} is ready", env!("CARGO_PKG_VERSION"));
    println!("  endpoint:          {https}/");
    println!(
        "  plain http:        http://{}/",
        display_addr(app.http_addr)
    );
    println!(
        "  connection string: endpoint={https}/;accesskey={}",
        config.access_key
    );
    println!("  storage:           {storage}");
    for (identity, token) in &app.seed_tokens {
        println!("  seeded token:      {identity} {token}");
    }
    println!("  trust the CA (HTTPS is required by the SDKs):");
    println!("    export REQUESTS_CA_BUNDLE={ca}   # Python, sync clients");
    println!("    export SSL_CERT_FILE={ca}        # Python, aio clients");
    println!("    export NODE_EXTRA_CA_CERTS={ca}  # Node.js");
}

/// `127.0.0.1:8443` as-is; the unspecified address as `localhost`, which the certificate covers.
fn display_addr(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this is called, not
/// when the future is first polled, so a signal that arrives right after the banner still
/// means a clean shutdown rather than the default of dying at once.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {},
                _ = interrupt.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
