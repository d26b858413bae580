//! TLS for a session, implicit or after STARTTLS: rustls with the webpki roots.

use std::sync::Arc;

use super::{SmtpError, Stream};

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            Arc::new(
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default TLS versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

pub(super) async fn wrap_tls(
    tcp: Box<dyn Stream>,
    host: &str,
) -> Result<Box<dyn Stream>, SmtpError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| SmtpError::Before("tls"))?;
    let tls = tokio_rustls::TlsConnector::from(tls_config())
        .connect(name, tcp)
        .await
        .map_err(|_| SmtpError::Before("tls"))?;
    Ok(Box::new(tls))
}
