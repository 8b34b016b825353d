use adcast_writer::config::{Cli, Command};
use adcast_writer::startup::{self, Application};
use adcast_writer::telemetry;
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // The import and export commands are clients of a running writer:
        // they report on stderr and have exit statuses of their own.
        Some(Command::Import(args)) => {
            return adcast_writer::cli::finish(
                "import",
                adcast_writer::cli::import::run(args).await,
            )
        }
        Some(Command::Export(args)) => {
            return adcast_writer::cli::finish(
                "export",
                adcast_writer::cli::export::run(args).await,
            )
        }
        Some(Command::Snapshot { out }) => {
            telemetry::init(cli.settings.log_format, &cli.settings.log);
            startup::write_snapshot_file(&cli.settings, out).await
        }
        Some(Command::Migrate { grant_to }) => {
            telemetry::init(cli.settings.log_format, &cli.settings.log);
            startup::migrate(&cli.settings, grant_to.as_ref()).await
        }
        None => {
            telemetry::init(cli.settings.log_format, &cli.settings.log);
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
