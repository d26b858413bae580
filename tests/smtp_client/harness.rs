//! The client under test: the SMTP channel built from config/rapport.toml against a test
//! server with or without PIPELINING, the messages it sends, and the failure check (its
//! class, and a reason free of the recipient and of the server's text).

use std::path::Path;

use rapport::{
    channels::{self, DeliveryClass, DeliveryError, EmailChannel, OutboundEmail},
    config::Config,
    domain::{ContactId, EmailAddress, TouchId},
    render::RenderedEmail,
};

use crate::support::smtp::{SmtpOptions, SmtpServer};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The `from` of config/rapport.toml.
pub(crate) const FROM: &str = "hello@rapport.example";
/// Put into every refusal the server sends: must never reach an error reason.
pub(crate) const SERVER_TEXT: &str = "SERVERTEXT";
pub(crate) const MODES: [Mode; 2] = [Mode::Pipelined, Mode::OneByOne];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Pipelined,
    OneByOne,
}

pub(crate) async fn server(mode: Mode, opts: SmtpOptions) -> SmtpServer {
    SmtpServer::start(SmtpOptions {
        no_pipelining: mode == Mode::OneByOne,
        ..opts
    })
    .await
}

pub(crate) fn channel(server: &SmtpServer) -> Box<dyn EmailChannel> {
    channel_at(server.url())
}

/// The SMTP channel as the app builds it: config/rapport.toml plus env overrides.
pub(crate) fn channel_at(url: String) -> Box<dyn EmailChannel> {
    let env = [
        ("RAPPORT__CHANNELS__EMAIL__TRANSPORT", "smtp".to_owned()),
        ("RAPPORT__CHANNELS__EMAIL__URL", url),
        ("RAPPORT__CHANNELS__EMAIL__TLS", "none".to_owned()),
        ("RAPPORT__CHANNELS__EMAIL__TIMEOUT", "1s".to_owned()),
        // Whatever the machine's environment holds, no AUTH against the test server.
        (
            "RAPPORT__CHANNELS__EMAIL__USERNAME_ENV",
            "RAPPORT_SMTP_CLIENT_TEST_UNSET_USER".to_owned(),
        ),
        (
            "RAPPORT__CHANNELS__EMAIL__PASSWORD_ENV",
            "RAPPORT_SMTP_CLIENT_TEST_UNSET_PASSWORD".to_owned(),
        ),
        ("RAPPORT__TEMPLATES__DIR", format!("{REPO}/templates")),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let cfg = Config::load_with(Path::new(&format!("{REPO}/config/rapport.toml")), None, env)
        .expect("config loads");
    let ch = channels::email_channel(&cfg.email).expect("smtp channel");
    assert_eq!(ch.kind(), "smtp");
    ch
}

pub(crate) fn email(contact: &str, to: &str, subject: &str, text: &str) -> OutboundEmail {
    OutboundEmail {
        touch: TouchId::derive("birthday", &ContactId::parse(contact).unwrap(), "2026"),
        to: EmailAddress::parse(to).unwrap(),
        to_name: Some("Ada Lovelace".into()),
        content: RenderedEmail {
            subject: subject.into(),
            text: text.into(),
            html: None,
        },
        unsubscribe: None,
    }
}

pub(crate) fn simple(contact: &str, to: &str) -> OutboundEmail {
    email(contact, to, "Hello", "Hi there,\r\nsee you soon.\r\n")
}

/// The failure, with its class checked and its reason free of the recipient, of any
/// address, and of the server's text.
pub(crate) fn failure(
    mode: Mode,
    result: Result<(), DeliveryError>,
    class: DeliveryClass,
    to: &str,
) -> DeliveryError {
    let err = match result {
        Err(e) => e,
        Ok(()) => panic!("{mode:?}: expected a {class:?} failure, the send succeeded"),
    };
    assert_eq!(err.class, class, "{mode:?}: {err}");
    let local = to.split('@').next().unwrap();
    for shown in [err.reason.clone(), err.to_string(), format!("{err:?}")] {
        for leak in [to, local, "@", SERVER_TEXT, "5.1.1", "4.2.0", "mailbox"] {
            assert!(
                !shown.contains(leak),
                "{mode:?}: {leak:?} leaked into {shown:?}"
            );
        }
    }
    err
}
