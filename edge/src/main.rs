use adcast_edge::config::Settings;
use adcast_edge::{telemetry, Application};
use clap::Parser;

fn main() -> std::process::ExitCode {
    let settings = Settings::parse();
    telemetry::init(settings.log_format, &settings.log);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = settings.worker_threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("adcast-edge: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let app = Application::build(settings).await?;
        app.run_until_stopped(shutdown_signal()).await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "adcast-edge failed");
            eprintln!("adcast-edge: {error:#}");
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
