//! The SMS outbox: each message is a file in a folder, so SMS touches can be developed
//! and demonstrated without a provider account.

use crate::channels::SetupError;
use std::path::PathBuf;

use futures::future::BoxFuture;

use crate::channels::{DeliveryError, OutboundSms, SmsChannel};

/// Writes each SMS as `<touch token>.sms`: `To:` and `Touch:` lines, a blank line, the
/// body.
#[derive(Debug)]
pub struct SmsOutbox {
    dir: PathBuf,
}

impl SmsOutbox {
    /// Creates `dir` if needed.
    pub fn new(dir: PathBuf) -> Result<Self, SetupError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create SMS outbox {}: {e}", dir.display()))?;
        Ok(Self { dir })
    }
}

impl SmsChannel for SmsOutbox {
    fn send_gated<'a>(
        &'a self,
        sms: &'a OutboundSms,
        gate: &'a dyn crate::channels::Gate,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let content = format!(
                "To: {}\nTouch: {}\n\n{}\n",
                sms.to.as_str(),
                sms.touch.as_str(),
                sms.body
            );
            let name = format!("{}.sms", sms.touch.token());
            gate.admit(crate::channels::OUTBOX_WRITE).await?;
            crate::channels::outbox::write_file(&self.dir, name, content.into_bytes(), "SMS outbox")
                .await
        })
    }

    fn kind(&self) -> &'static str {
        "outbox"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContactId, PhoneNumber, TouchId};

    fn sms(body: &str) -> OutboundSms {
        OutboundSms {
            touch: TouchId::derive("birthday", &ContactId::parse("ada").unwrap(), "2026"),
            to: PhoneNumber::parse("+447700900123").unwrap(),
            body: body.into(),
        }
    }

    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn each_touch_is_one_file_and_a_retry_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SmsOutbox::new(dir.path().join("sms")).unwrap();
        assert_eq!(outbox.kind(), "outbox");
        let path = dir.path().join("sms/birthday.ada.2026.sms");

        outbox.send(&sms("Happy birthday,\nAda!")).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "To: +447700900123\nTouch: birthday:ada:2026\n\nHappy birthday,\nAda!\n"
        );

        outbox.send(&sms("Second try")).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "To: +447700900123\nTouch: birthday:ada:2026\n\nSecond try\n"
        );
        assert_eq!(files(&dir.path().join("sms")), ["birthday.ada.2026.sms"]);

        let mut other = sms("Hi Bob");
        other.touch = TouchId::derive("birthday", &ContactId::parse("bob").unwrap(), "2026");
        outbox.send(&other).await.unwrap();
        assert_eq!(
            files(&dir.path().join("sms")),
            ["birthday.ada.2026.sms", "birthday.bob.2026.sms"]
        );
    }

    #[test]
    fn a_folder_that_cannot_be_created_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("taken");
        std::fs::write(&file, "").unwrap();
        let err = SmsOutbox::new(file.join("sms")).unwrap_err().to_string();
        assert!(
            err.contains(&file.join("sms").display().to_string()),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_failed_write_is_transient() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SmsOutbox::new(dir.path().join("sms")).unwrap();
        std::fs::remove_dir(dir.path().join("sms")).unwrap();
        let err = outbox.send(&sms("Hi")).await.unwrap_err();
        assert_eq!(err.class, crate::channels::DeliveryClass::Transient);
        assert!(!err.reason.contains("+44"), "{err}");
    }
}
