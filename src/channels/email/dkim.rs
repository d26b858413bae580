//! The DKIM signing key, loaded once when the email channel is built.
//!
//! lettre only takes RSA keys as PKCS#1 PEM and Ed25519 keys as a base64 seed, while
//! `openssl genrsa` (3.x) and `openssl genpkey` write PKCS#8: this unwraps PKCS#8 so
//! either works, and checks what verifiers would reject anyway (RSA under 1024 bits,
//! RFC 8301) at startup rather than in every receiver's spam score.

use crate::channels::SetupError;
use std::fmt;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use lettre::{
    Message,
    message::{
        dkim::{
            DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
            DkimSigningKey,
        },
        header::HeaderName,
    },
};
use secrecy::zeroize::Zeroizing;

use crate::config::{DkimAlgorithm, DkimKey};

/// The headers the signature covers. lettre's default covers only From, Subject, To and
/// Date; RFC 8058 requires the list headers to be signed, and Message-ID is what
/// receivers deduplicate retries on. A header absent from a message (the list headers
/// on a transactional email) is signed as absent, so nobody can add one later.
/// Content-Type and the other MIME part headers must not be listed: lettre writes them
/// with the part, out of its sight, and would sign them as absent.
const SIGNED: [&str; 8] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// A loaded DKIM key with its selector and domain.
pub struct Dkim {
    config: DkimConfig,
    selector: String,
    domain: String,
}

/// Never prints the key.
impl fmt::Debug for Dkim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dkim(s={}; d={})", self.selector, self.domain)
    }
}

impl Dkim {
    /// Reads and checks `key.key_file`. Errors name the file and what is wrong with it,
    /// never its content.
    pub fn load(key: &DkimKey) -> Result<Dkim, SetupError> {
        let path = key.key_file.display();
        for (what, name) in [("selector", &key.selector), ("domain", &key.domain)] {
            if !is_dns_name(name) {
                return Err(format!("DKIM {what} {name:?} is not a DNS name").into());
            }
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(&key.key_file)
                .map_err(|e| format!("cannot read the DKIM key {path}: {e}"))?,
        );
        let (lettre_key, algorithm) = match key.algorithm {
            DkimAlgorithm::Rsa => (rsa_pkcs1_pem(&text), DkimSigningAlgorithm::Rsa),
            DkimAlgorithm::Ed25519 => (ed25519_seed(&text), DkimSigningAlgorithm::Ed25519),
        };
        let lettre_key = lettre_key.map_err(|what| format!("DKIM key {path}: {what}"))?;
        let signing = DkimSigningKey::new(&lettre_key, algorithm)
            .map_err(|e| format!("DKIM key {path}: not a usable key ({e})"))?;
        let headers = SIGNED.iter().map(|h| HeaderName::new_from_ascii_str(h));
        // Relaxed headers survive a relay's refolding and case changes; relaxed body
        // survives trailing-whitespace trimming.
        let canonicalization = DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        };
        Ok(Dkim {
            config: DkimConfig::new(
                key.selector.clone(),
                key.domain.clone(),
                signing,
                headers.collect(),
                canonicalization,
            ),
            selector: key.selector.clone(),
            domain: key.domain.clone(),
        })
    }

    /// Adds the `DKIM-Signature` header. Last step: any header changed afterwards
    /// breaks the signature.
    pub(super) fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The RSA key as lettre wants it (PKCS#1 PEM), from PKCS#1 or PKCS#8 PEM.
fn rsa_pkcs1_pem(text: &str) -> Result<Zeroizing<String>, String> {
    let (label, der) = pem(text)?;
    let pkcs1 = match label.as_str() {
        "RSA PRIVATE KEY" => der.to_vec(),
        "PRIVATE KEY" => match pkcs8(&der) {
            Some((OID_RSA, inner)) => inner.to_vec(),
            Some((OID_ED25519, _)) => {
                return Err("holds an Ed25519 key, but the algorithm is set to rsa".into());
            }
            _ => return Err("is not an RSA private key".into()),
        },
        other => return Err(format!("holds a {other:?}, not an RSA private key")),
    };
    let pkcs1 = Zeroizing::new(pkcs1);
    let bits = rsa_modulus_bits(&pkcs1).ok_or("is not a valid PKCS#1 RSA private key")?;
    if bits < 1024 {
        return Err(format!(
            "the RSA key has {bits} bits; DKIM verifiers reject keys under 1024 bits \
             (RFC 8301), use 2048"
        ));
    }
    let b64 = Zeroizing::new(STANDARD.encode(&*pkcs1));
    let mut out = Zeroizing::new(String::from("-----BEGIN RSA PRIVATE KEY-----\n"));
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END RSA PRIVATE KEY-----\n");
    Ok(out)
}

/// The Ed25519 seed as lettre wants it (base64), from base64 or PKCS#8 PEM.
fn ed25519_seed(text: &str) -> Result<Zeroizing<String>, String> {
    let seed = if text.contains("-----BEGIN") {
        let (label, der) = pem(text)?;
        match (label.as_str(), pkcs8(&der)) {
            ("PRIVATE KEY", Some((OID_ED25519, inner))) => match der_element(inner) {
                Some((0x04, seed, [])) => Zeroizing::new(seed.to_vec()),
                _ => return Err("is not a valid Ed25519 private key".into()),
            },
            ("RSA PRIVATE KEY", _) | ("PRIVATE KEY", Some((OID_RSA, _))) => {
                return Err("holds an RSA key, but the algorithm is set to ed25519".into());
            }
            _ => return Err("is not an Ed25519 private key".into()),
        }
    } else {
        Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| "is neither PEM nor a base64 Ed25519 key")?,
        )
    };
    if seed.len() != 32 {
        return Err(format!(
            "an Ed25519 key is 32 bytes, this one has {}",
            seed.len()
        ));
    }
    Ok(Zeroizing::new(STANDARD.encode(&*seed)))
}

/// The label and decoded content of the first PEM block.
fn pem(text: &str) -> Result<(String, Zeroizing<Vec<u8>>), String> {
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or("is not a PEM file (no -----BEGIN line)")?;
    if label.contains("ENCRYPTED") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(
            "is encrypted; rapport needs it unencrypted, guarded by file permissions".into(),
        );
    }
    let end = format!("-----END {label}-----");
    let mut b64 = Zeroizing::new(String::new());
    for line in lines.by_ref() {
        if line == end {
            let der = STANDARD
                .decode(b64.as_bytes())
                .map_err(|_| format!("the {label} block is not valid base64"))?;
            return Ok((label.to_owned(), Zeroizing::new(der)));
        }
        b64.push_str(line);
    }
    Err(format!("the {label} block has no END line"))
}

/// One DER element: tag, content and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A PKCS#8 `PrivateKeyInfo`: the algorithm's OID and the private key octets.
fn pkcs8(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (0x30, info, _) = der_element(der)? else {
        return None;
    };
    let (0x02, _version, rest) = der_element(info)? else {
        return None;
    };
    let (0x30, algorithm, rest) = der_element(rest)? else {
        return None;
    };
    let (0x06, oid, _) = der_element(algorithm)? else {
        return None;
    };
    let (0x04, key, _) = der_element(rest)? else {
        return None;
    };
    Some((oid, key))
}

/// The modulus size of a PKCS#1 `RSAPrivateKey`.
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    let (0x30, key, _) = der_element(der)? else {
        return None;
    };
    let (0x02, _version, rest) = der_element(key)? else {
        return None;
    };
    let (0x02, modulus, _) = der_element(rest)? else {
        return None;
    };
    let first = modulus.iter().position(|&b| b != 0)?;
    let top = modulus[first];
    Some((modulus.len() - first - 1) * 8 + (8 - top.leading_zeros() as usize))
}

#[cfg(test)]
mod tests {
    use std::{path::Path, process::Command};

    use super::*;

    fn key(dir: &Path, file: &str, text: &str, algorithm: DkimAlgorithm) -> DkimKey {
        let key_file = dir.join(file);
        std::fs::write(&key_file, text).unwrap();
        DkimKey {
            selector: "s2026".into(),
            domain: "rapport.example".into(),
            key_file,
            algorithm,
        }
    }

    /// A throwaway key from the openssl command line tool, as operators make them.
    fn openssl(args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "these tests need the openssl command line tool (apt-get install openssl): {e}"
                )
            });
        assert!(out.status.success(), "openssl {args:?} failed");
        String::from_utf8(out.stdout).unwrap()
    }

    fn body_of(pem: &str) -> &str {
        pem.lines().nth(2).unwrap()
    }

    #[test]
    fn rsa_keys_load_from_pkcs1_and_pkcs8() {
        let dir = tempfile::tempdir().unwrap();
        let pkcs8 = openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ]);
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
        let pkcs1 = openssl(&["genrsa", "-traditional", "2048"]);
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        for (file, text) in [("p8.pem", &pkcs8), ("p1.pem", &pkcs1)] {
            let k = key(dir.path(), file, text, DkimAlgorithm::Rsa);
            let dkim = Dkim::load(&k).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(format!("{dkim:?}"), "Dkim(s=s2026; d=rapport.example)");
        }
    }

    #[test]
    fn ed25519_keys_load_from_pkcs8_and_base64() {
        let dir = tempfile::tempdir().unwrap();
        let pkcs8 = openssl(&["genpkey", "-algorithm", "ed25519"]);
        let k = key(dir.path(), "ed.pem", &pkcs8, DkimAlgorithm::Ed25519);
        Dkim::load(&k).unwrap();
        let k = key(
            dir.path(),
            "ed.b64",
            &format!("{}\n", STANDARD.encode([7u8; 32])),
            DkimAlgorithm::Ed25519,
        );
        Dkim::load(&k).unwrap();
    }

    #[test]
    fn a_bad_key_is_refused_naming_the_file_and_the_problem_never_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let rsa = openssl(&["genrsa", "2048"]);
        let small = openssl(&["genrsa", "-traditional", "512"]);
        let ed = openssl(&["genpkey", "-algorithm", "ed25519"]);
        let cut = rsa.lines().take(5).collect::<Vec<_>>().join("\n");
        let cases: [(&str, &str, DkimAlgorithm, &str); 8] = [
            (
                "ed-as-rsa.pem",
                &ed,
                DkimAlgorithm::Rsa,
                "holds an Ed25519 key",
            ),
            (
                "rsa-as-ed.pem",
                &rsa,
                DkimAlgorithm::Ed25519,
                "holds an RSA key",
            ),
            ("small.pem", &small, DkimAlgorithm::Rsa, "512 bits"),
            ("text.pem", "hello\n", DkimAlgorithm::Rsa, "not a PEM file"),
            (
                "short.b64",
                "AAAA\n",
                DkimAlgorithm::Ed25519,
                "32 bytes, this one has 3",
            ),
            ("cut.pem", &cut, DkimAlgorithm::Rsa, "no END line"),
            (
                "cert.pem",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                DkimAlgorithm::Rsa,
                "holds a \"CERTIFICATE\"",
            ),
            (
                "enc.pem",
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                DkimAlgorithm::Rsa,
                "is encrypted",
            ),
        ];
        for (file, text, algorithm, problem) in cases {
            let k = key(dir.path(), file, text, algorithm);
            let err = Dkim::load(&k).unwrap_err().to_string();
            assert!(
                err.contains(&k.key_file.display().to_string()),
                "{file}: {err}"
            );
            assert!(err.contains(problem), "{file}: {err}");
            if text.lines().count() > 4 {
                assert!(
                    !err.contains(body_of(text)),
                    "{file}: key material in {err}"
                );
            }
        }
    }

    #[test]
    fn a_missing_file_or_a_bad_selector_is_refused() {
        let missing = DkimKey {
            selector: "s1".into(),
            domain: "rapport.example".into(),
            key_file: "/nonexistent/dkim.pem".into(),
            algorithm: DkimAlgorithm::Rsa,
        };
        let err = Dkim::load(&missing).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/dkim.pem"), "{err}");
        let bad = DkimKey {
            selector: "s1\r\nBcc: x".into(),
            ..missing
        };
        let err = Dkim::load(&bad).unwrap_err().to_string();
        assert!(err.contains("selector"), "{err}");
    }

    #[test]
    fn der_lengths_are_read_in_short_and_long_form() {
        assert_eq!(
            der_element(&[0x04, 2, 9, 9, 1]),
            Some((0x04, &[9, 9][..], &[1][..]))
        );
        let mut long = vec![0x04, 0x81, 200];
        long.extend([5; 200]);
        assert_eq!(der_element(&long).map(|(_, c, _)| c.len()), Some(200));
        assert_eq!(der_element(&[0x04, 5, 1]), None);
        assert_eq!(der_element(&[0x04, 0x80]), None);
    }
}
