use adcast_writer::config::{Cli, Command};
use adcast_writer::startup::{self, Application};
use adcast_writer::telemetry;
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.settings.log_format, &cli.settings.log);
    let result = match cli.command {
        Some(Command::Snapshot { out }) => startup::write_snapshot_file(&cli.settings, out).await,
        Some(Command::Migrate { grant_to }) => {
            startup::migrate(&cli.settings, grant_to.as_ref()).await
        }
        None => {
            async {
                let app = Application::build(cli.settings).await?;
                app.run_until_stopped(shutdown_signal()).await
            }
            .await
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "adcast-writer failed");
            eprintln!("adcast-writer: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}
