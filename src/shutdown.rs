//! Signals -> one cancellation token. The first SIGTERM/SIGINT starts a graceful stop
//! (stop planning and fetching, drain in-flight sends up to the drain deadline); a second
//! one quits at once.

use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGTERM or SIGINT; exits the process on the second.
pub fn install(token: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping intake, draining in-flight sends"),
            _ = int.recv() => tracing::info!("SIGINT: stopping intake, draining in-flight sends"),
        }
        token.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: quitting without waiting for the drain");
        std::process::exit(130);
    });
    Ok(())
}
