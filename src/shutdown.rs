//! Signals -> one cancellation token. The first SIGTERM/SIGINT starts a graceful stop
//! (stop planning and fetching, hand back sends not started, give those in flight the
//! drain timeout); a second one quits at once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long past the drain timeout the process may take to stop, whatever happens (a
/// store that does not answer while outcomes are recorded, a stuck task): supervisors
/// (systemd's `TimeoutStopSec`, `docker stop -t`) can count on it.
pub const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Cancels `token` on the first SIGTERM or SIGINT; exits the process on the second, and
/// in any case `drain_timeout` + [`EXIT_GRACE`] after the first (exit 0: what was not
/// recorded by then stays leased in the ledger and is sent again after the lease, with
/// the same Message-ID).
pub fn install(token: CancellationToken, drain_timeout: Duration) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping intake, draining in-flight sends"),
            _ = int.recv() => tracing::info!("SIGINT: stopping intake, draining in-flight sends"),
        }
        token.cancel();
        // A thread, not a task: it must fire even if the runtime is wedged.
        std::thread::spawn(move || {
            std::thread::sleep(drain_timeout + EXIT_GRACE - Duration::from_millis(100));
            // The exit does not wait on the log line (stderr may be a full pipe).
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                std::process::exit(0);
            });
            tracing::warn!("the drain deadline passed; exiting with what is recorded");
            std::process::exit(0);
        });
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: quitting without waiting for the drain");
        std::process::exit(130);
    });
    Ok(())
}
