//! TLS material: the emulator's own certificate authority (generated once into the data dir and
//! reused, so users trust it once) and the leaf certificate the HTTPS listener presents, or the
//! user's own certificate and key. Files and rustls config only; no sockets.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// File names inside the data dir.
const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";

/// What the HTTPS listener serves and what users must trust.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    /// PEM certificate chain presented by the server (leaf first).
    pub cert_chain_pem: String,
    /// PEM private key of the leaf.
    pub key_pem: String,
    /// PEM of the certificate users should trust: the emulator CA, or the user's own chain.
    pub trust_pem: String,
    /// Where `trust_pem` lives on disk, for the printed `REQUESTS_CA_BUNDLE=…` lines.
    pub trust_path: PathBuf,
}

/// Loads the user's certificate and key when both are given; otherwise loads (or creates) the
/// emulator CA in `data_dir` and issues a fresh leaf for `localhost`, `127.0.0.1`, `::1` and
/// every extra host name.
pub fn load_or_generate(
    data_dir: &Path,
    hostnames: &[String],
    user_cert: Option<&Path>,
    user_key: Option<&Path>,
) -> anyhow::Result<TlsMaterial> {
    if let (Some(cert), Some(key)) = (user_cert, user_key) {
        let cert_chain_pem = std::fs::read_to_string(cert)
            .with_context(|| format!("reading --tls-cert {}", cert.display()))?;
        let key_pem = std::fs::read_to_string(key)
            .with_context(|| format!("reading --tls-key {}", key.display()))?;
        return Ok(TlsMaterial {
            trust_pem: cert_chain_pem.clone(),
            cert_chain_pem,
            key_pem,
            trust_path: cert.to_path_buf(),
        });
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let ca_cert_path = data_dir.join(CA_CERT_FILE);
    let ca_key_path = data_dir.join(CA_KEY_FILE);
    let (ca_pem, ca_key) = if ca_cert_path.exists() && ca_key_path.exists() {
        let key_pem = std::fs::read_to_string(&ca_key_path)
            .with_context(|| format!("reading {}", ca_key_path.display()))?;
        let key = KeyPair::from_pem(&key_pem).context("parsing the emulator CA key")?;
        let pem = std::fs::read_to_string(&ca_cert_path)
            .with_context(|| format!("reading {}", ca_cert_path.display()))?;
        (pem, key)
    } else {
        let key = KeyPair::generate().context("generating the CA key")?;
        let cert = ca_params()
            .self_signed(&key)
            .context("self-signing the CA")?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        std::fs::write(&ca_cert_path, cert.pem())
            .with_context(|| format!("writing {}", ca_cert_path.display()))?;
        (cert.pem(), key)
    };
    // The issuer needs only the CA's name and key: rebuilding the same parameters with the stored
    // key signs leaves that chain to the CA certificate already on disk (and in users' trust stores).
    let issuer = Issuer::new(ca_params(), ca_key);
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    for name in hostnames {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let mut leaf = CertificateParams::new(names).context("building the leaf certificate")?;
    leaf.distinguished_name = name("acs-chat-emulator");
    let now = OffsetDateTime::now_utc();
    leaf.not_before = now - Duration::days(1);
    leaf.not_after = now + Duration::days(365);
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().context("generating the leaf key")?;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .context("signing the leaf")?;
    Ok(TlsMaterial {
        cert_chain_pem: format!("{}{}", leaf_cert.pem(), ca_pem),
        key_pem: leaf_key.serialize_pem(),
        trust_pem: ca_pem,
        trust_path: std::path::absolute(&ca_cert_path).unwrap_or(ca_cert_path),
    })
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name("acs-chat-emulator local CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2049, 12, 31);
    params
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "acs-chat-emulator");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_created_once_and_reused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let first = load_or_generate(dir.path(), &["chat-emulator".to_owned()], None, None)?;
        let second = load_or_generate(dir.path(), &[], None, None)?;
        assert_eq!(
            first.trust_pem, second.trust_pem,
            "the CA must survive a restart"
        );
        assert_ne!(
            first.key_pem, second.key_pem,
            "each start issues a fresh leaf"
        );
        assert!(first.cert_chain_pem.ends_with(&first.trust_pem));
        Ok(())
    }
}
