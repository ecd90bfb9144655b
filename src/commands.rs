//! The subcommands other than `serve`: what each does and its exit code. `main` only
//! dispatches here.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::config::{ConnectionStringArgs, ExportArgs, HealthcheckArgs, ImportArgs, ResetArgs};
use crate::store::{StateDocument, Store};

/// `healthcheck`: 0 when the health endpoint answers 200, 1 otherwise.
pub async fn healthcheck(args: HealthcheckArgs) -> ExitCode {
    let url = args
        .url
        .unwrap_or_else(|| format!("http://127.0.0.1:{}/_emulator/health", args.http_port));
    match crate::healthcheck::check(&url, Duration::from_secs(args.timeout_secs)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unhealthy: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `connection-string`: prints it.
pub fn connection_string(args: &ConnectionStringArgs) -> ExitCode {
    println!("{}", args.connection_string());
    ExitCode::SUCCESS
}

/// `export`: the state document of a data dir.
pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let store = open_existing(&args.data_dir).await?;
    let document = store.export_state().await?;
    store.close().await;
    let text = serde_json::to_string_pretty(&document)?;
    match &args.output {
        Some(path) => std::fs::write(path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

/// `import`: replaces a data dir's state with a document.
pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let document = StateDocument::read_file(&args.file)?;
    let store = Store::connect(&args.data_dir, false).await?;
    let (identities, threads) = (document.identities.len(), document.threads.len());
    store
        .import_state(document)
        .await
        .context("importing the state")?;
    store.close().await;
    eprintln!(
        "imported {identities} identities and {threads} threads into {}",
        args.data_dir.display()
    );
    Ok(())
}

/// `reset`: deletes a data dir's state.
pub async fn reset(args: ResetArgs) -> anyhow::Result<()> {
    let store = open_existing(&args.data_dir).await?;
    store.reset(args.keep_identities).await?;
    store.close().await;
    eprintln!("reset {}", args.data_dir.display());
    Ok(())
}

/// Opens the database of a data dir that must already have one (no silent empty export).
async fn open_existing(data_dir: &Path) -> anyhow::Result<Store> {
    let file = data_dir.join("emulator.db");
    anyhow::ensure!(file.exists(), "{} has no emulator.db", data_dir.display());
    Store::connect(data_dir, false).await
}
