//! The outbox transport: each message is a `.eml` file in a folder. The embedded default,
//! so `rapport run` works with no mail server; open the files with any mail client.

use crate::channels::SetupError;
use std::path::PathBuf;

use futures::future::BoxFuture;

use super::{DeliveryError, EmailChannel, Gate, OUTBOX_WRITE, OutboundEmail, email::Dkim};
use crate::config::EmailConfig;

#[derive(Debug)]
pub(super) struct Outbox {
    dir: PathBuf,
    cfg: EmailConfig,
    dkim: Option<Dkim>,
}

impl Outbox {
    pub(super) fn new(
        dir: PathBuf,
        cfg: EmailConfig,
        dkim: Option<Dkim>,
    ) -> Result<Self, SetupError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create outbox {}: {e}", dir.display()))?;
        Ok(Self { dir, cfg, dkim })
    }
}

impl EmailChannel for Outbox {
    fn send_gated<'a>(
        &'a self,
        email: &'a OutboundEmail,
        gate: &'a dyn Gate,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let bytes = super::build_message(&self.cfg, self.dkim.as_ref(), email)?.formatted();
            gate.admit(OUTBOX_WRITE).await?;
            write_file(
                &self.dir,
                format!("{}.eml", email.touch.token()),
                bytes,
                "outbox",
            )
            .await
        })
    }

    fn kind(&self) -> &'static str {
        "outbox"
    }
}

/// Writes one outbox file: whole to a temp file, synced, then renamed, so a retry
/// replaces the file rather than adding a second message and a reader never sees half
/// a file. Failures are transient and name only the I/O error kind (`what` says which
/// outbox).
pub(super) async fn write_file(
    dir: &std::path::Path,
    name: String,
    bytes: Vec<u8>,
    what: &'static str,
) -> Result<(), DeliveryError> {
    let (tmp, dest) = (dir.join(format!(".{name}.tmp")), dir.join(name));
    let io = move |e: std::io::Error| {
        DeliveryError::transient(format!("{what} write failed: {}", e.kind()))
    };
    tokio::task::spawn_blocking(move || -> Result<(), DeliveryError> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &dest).map_err(io)
    })
    .await
    .map_err(|_| DeliveryError::transient(format!("{what} writer panicked")))?
}
