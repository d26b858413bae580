//! SMTP through lettre's pooled async transport.

use futures::future::BoxFuture;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    transport::smtp::{PoolConfig, authentication::Credentials},
};

use super::{DeliveryError, EmailChannel, OutboundEmail};
use crate::config::{EmailConfig, EmailTransport, TlsMode};

pub(super) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    cfg: EmailConfig,
}

impl Smtp {
    pub(super) fn new(cfg: &EmailConfig) -> Result<Self, String> {
        let EmailTransport::Smtp {
            host,
            port,
            tls,
            username_env,
            password_env,
            pool_size,
            timeout,
        } = &cfg.transport
        else {
            return Err("not an SMTP transport".into());
        };
        let builder = match tls {
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str()),
            TlsMode::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| format!("SMTP TLS setup for {host}: {e}"))?,
            TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| format!("SMTP TLS setup for {host}: {e}"))?,
        };
        let mut builder = builder
            .port(*port)
            .timeout(Some(*timeout))
            .pool_config(PoolConfig::new().max_size(*pool_size));
        // Credentials come from the environment variables the config names; the values
        // never pass through the config file or the logs.
        let read = |name: &Option<String>| {
            name.as_ref()
                .and_then(|n| std::env::var(n).ok())
                .filter(|v| !v.is_empty())
        };
        match (read(username_env), read(password_env)) {
            (Some(user), Some(pass)) => builder = builder.credentials(Credentials::new(user, pass)),
            (Some(_), None) => {
                return Err(format!(
                    "SMTP username is set but the password variable {} is empty",
                    password_env.as_deref().unwrap_or("(password_env unset)")
                ));
            }
            _ => {}
        }
        Ok(Self {
            transport: builder.build(),
            cfg: cfg.clone(),
        })
    }
}

/// 4xx and anything that is not an answer (connection refused, reset, timeout, TLS) is
/// transient; 5xx is permanent. A timeout after DATA is ambiguous (the server may have
/// accepted): it is retried, with the same Message-ID, so a receiver can deduplicate.
fn classify(e: &lettre::transport::smtp::Error) -> DeliveryError {
    match e.status() {
        Some(code) if e.is_permanent() => DeliveryError::permanent(format!("smtp {code}")),
        Some(code) => DeliveryError::transient(format!("smtp {code}")),
        None if e.is_timeout() => DeliveryError::transient("smtp timeout"),
        None if e.is_tls() => DeliveryError::transient("smtp tls error"),
        None => DeliveryError::transient("smtp connection error"),
    }
}

impl EmailChannel for Smtp {
    fn send<'a>(&'a self, email: &'a OutboundEmail) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let message = super::build_message(&self.cfg, email)?;
            self.transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| classify(&e))
        })
    }

    fn kind(&self) -> &'static str {
        "smtp"
    }
}
