//! TLS for the HTTPS listeners (OpenSSL, TLS 1.2 and up) and the self-signed certificate a
//! fresh install serves until an operator configures a real one.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod, SslRef, SslVerifyMode, SslVersion};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509NameBuilder, X509Ref, X509StoreContextRef, X509VerifyResult, X509};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_openssl::SslStream;

/// Server-side TLS settings shared by all connections of a listener. Cheap to clone.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: SslAcceptor,
    /// Set when client certificates are asked for: which field of one names the user.
    client_user_field: Option<CertUserField>,
}

/// Which field of a verified client certificate is the user name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CertUserField {
    /// The subject's commonName (exactly one).
    #[default]
    Cn,
    /// The e-mail address: the subjectAltName's rfc822Name, or when it has none the subject's
    /// emailAddress (exactly one either way).
    Email,
}

/// Client-certificate authentication on the TLS listeners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertConfig {
    /// PEM bundle of the CAs that sign client certificates (the trust anchors, roots included).
    pub ca_file: PathBuf,
    /// Refuse the handshake of a client that sends no certificate; otherwise such a client
    /// connects and authenticates with a password.
    pub required: bool,
    pub user_field: CertUserField,
}

/// The longest user name taken from a certificate.
const MAX_CERT_USER: usize = 256;

/// The user name `field` of `cert` holds, or why there is none.
pub fn cert_user(cert: &X509Ref, field: CertUserField) -> Result<String, String> {
    let text = |d: &[u8]| String::from_utf8(d.to_vec()).map_err(|_| "is not UTF-8".to_owned());
    let values: Vec<Result<String, String>> = match field {
        CertUserField::Cn => cert.subject_name().entries_by_nid(Nid::COMMONNAME).map(|e| text(e.data().as_slice())).collect(),
        CertUserField::Email => {
            let sans: Vec<_> = cert
                .subject_alt_names()
                .map(|names| names.iter().filter_map(|n| n.email().map(|e| Ok(e.to_owned()))).collect())
                .unwrap_or_default();
            if sans.is_empty() {
                cert.subject_name().entries_by_nid(Nid::PKCS9_EMAILADDRESS).map(|e| text(e.data().as_slice())).collect()
            } else {
                sans
            }
        }
    };
    let what = match field {
        CertUserField::Cn => "commonName",
        CertUserField::Email => "e-mail address",
    };
    match values.as_slice() {
        [] => Err(format!("the certificate has no {what}")),
        [Err(e)] => Err(format!("the certificate's {what} {e}")),
        [Ok(name)] if name.is_empty() || name.len() > MAX_CERT_USER || name.chars().any(char::is_control) => {
            Err(format!("the certificate's {what} is not a user name"))
        }
        [Ok(name)] => Ok(name.clone()),
        _ => Err(format!("the certificate has more than one {what}")),
    }
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAcceptor")
    }
}

impl TlsAcceptor {
    /// Loads a PEM certificate chain (server certificate first) and its PEM private key.
    /// Mozilla's "intermediate" profile: TLS 1.2 and 1.3 with forward-secret AEAD ciphers.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
        TlsAcceptor::with_client_certs(cert, key, None)
    }

    /// [`from_pem_files`](Self::from_pem_files), and with `clients` asks each client for a
    /// certificate and verifies one that is sent against `clients.ca_file`. An untrusted,
    /// expired or otherwise invalid certificate, or one that names no user, fails the
    /// handshake; so does sending none when `clients.required`. The user a certificate names
    /// reaches handlers as [`ConnInfo::cert_user`](crate::ConnInfo::cert_user).
    pub fn with_client_certs(cert: &Path, key: &Path, clients: Option<&ClientCertConfig>) -> Result<TlsAcceptor> {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
        b.set_private_key_file(key, SslFiletype::PEM).with_context(|| format!("loading TLS private key {}", key.display()))?;
        b.set_certificate_chain_file(cert).with_context(|| format!("loading TLS certificate {}", cert.display()))?;
        b.check_private_key().with_context(|| format!("{} does not match {}", key.display(), cert.display()))?;
        if let Some(clients) = clients {
            let ca = &clients.ca_file;
            b.set_ca_file(ca).with_context(|| format!("loading the client CA bundle {}", ca.display()))?;
            // The CAs' names go in the certificate request, so clients holding several
            // certificates can pick the right one.
            let names =
                openssl::x509::X509Name::load_client_ca_file(ca).with_context(|| format!("reading the CA names of {}", ca.display()))?;
            b.set_client_ca_list(names);
            // Resumed sessions keep their verified peer; OpenSSL refuses to resume without a
            // context naming whose sessions they are.
            b.set_session_id_context(b"xencim")?;
            let mut mode = SslVerifyMode::PEER;
            if clients.required {
                mode |= SslVerifyMode::FAIL_IF_NO_PEER_CERT;
            }
            let field = clients.user_field;
            b.set_verify_callback(mode, move |ok, ctx| verify_client(ok, ctx, field));
        }
        Ok(TlsAcceptor { inner: b.build(), client_user_field: clients.map(|c| c.user_field) })
    }

    /// Wraps an acceptor configured by the caller (other ciphers, ...). Client certificates
    /// it verifies are not mapped to users; use [`with_client_certs`](Self::with_client_certs).
    pub fn from_openssl(acceptor: SslAcceptor) -> TlsAcceptor {
        TlsAcceptor { inner: acceptor, client_user_field: None }
    }

    /// After the handshake: the user the client's verified certificate names, if it sent one.
    pub(crate) fn peer_user(&self, ssl: &SslRef) -> Option<String> {
        let field = self.client_user_field?;
        let cert = ssl.peer_certificate()?;
        if ssl.verify_result() != X509VerifyResult::OK {
            return None;
        }
        cert_user(&cert, field).ok()
    }

    /// A server-side stream over `io`, before the handshake.
    pub(crate) fn stream<S: AsyncRead + AsyncWrite>(&self, io: S) -> Result<SslStream<S>> {
        let ssl = Ssl::new(self.inner.context())?;
        Ok(SslStream::new(ssl, io)?)
    }
}

/// OpenSSL's verdict on each certificate of the client's chain, plus: the client's own
/// certificate must name a user. Failures are logged (the client only sees an alert).
fn verify_client(preverified: bool, ctx: &mut X509StoreContextRef, field: CertUserField) -> bool {
    let subject = || {
        ctx.current_cert()
            .map(|c| {
                c.subject_name()
                    .entries()
                    .filter_map(|e| Some(format!("{}={}", e.object().nid().short_name().ok()?, e.data().to_string().ok()?)))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    if !preverified {
        tracing::info!(subject = %subject(), depth = ctx.error_depth(), error = %ctx.error(), "TLS: client certificate refused");
        return false;
    }
    if ctx.error_depth() != 0 {
        return true;
    }
    let Some(cert) = ctx.current_cert() else { return false };
    match cert_user(cert, field) {
        Ok(_) => true,
        Err(why) => {
            tracing::info!(subject = %subject(), reason = %why, "TLS: client certificate refused");
            ctx.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
            false
        }
    }
}

/// Returns `dir/server.pem` and `dir/server.key`, first generating a self-signed RSA-2048
/// certificate for `hostname`, `localhost` and `127.0.0.1` (valid ten years) unless both files
/// already exist. The key is written with mode 0600.
pub fn ensure_self_signed(dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf)> {
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server.key");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (cert, key) = self_signed(hostname)?;
    // Key first: a crash in between leaves no certificate, so the next start regenerates both
    // instead of pairing a certificate with a key that is not its own.
    write_atomically(&key_path, &key, 0o600)?;
    write_atomically(&cert_path, &cert, 0o644)?;
    tracing::info!(cert = %cert_path.display(), hostname, "generated a self-signed TLS certificate");
    Ok((cert_path, key_path))
}

fn write_atomically(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f =
        fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    // The umask may have narrowed or (for 0644) kept the mode; make it exact.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// PEM certificate and PEM (PKCS#8) key.
fn self_signed(hostname: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    let key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", hostname)?;
    name.append_entry_by_text("O", "xencim self-signed")?;
    let name = name.build();

    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    // Back-date a little so a client whose clock runs slightly behind still accepts it.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let not_before = Asn1Time::from_unix(now - 3600)?;
    let not_after = Asn1Time::days_from_now(3650)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;

    // The certificate is its own trust anchor (`wbemcli -cacert server.pem`, Python's cafile),
    // so it is marked as a CA the way `openssl req -x509` does; strict verifiers (Python 3.13's
    // VERIFY_X509_STRICT) want the CA constraint critical and the key identifiers present.
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().key_encipherment().key_cert_sign().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    let aki = AuthorityKeyIdentifier::new().keyid(true).build(&b.x509v3_context(None, None))?;
    b.append_extension(aki)?;
    let mut san = SubjectAlternativeName::new();
    let mut seen = Vec::new();
    for n in [hostname, "localhost", "127.0.0.1"] {
        if n.is_empty() || seen.contains(&n) {
            continue;
        }
        seen.push(n);
        if n.parse::<IpAddr>().is_ok() {
            san.ip(n);
        } else {
            san.dns(n);
        }
    }
    let san = san.build(&b.x509v3_context(None, None))?;
    b.append_extension(san)?;
    b.sign(&key, MessageDigest::sha256())?;
    let cert = b.build();
    Ok((cert.to_pem()?, key.private_key_to_pem_pkcs8()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("state");
        let (cert, key) = ensure_self_signed(&sub, "host.example").unwrap();
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let pem = fs::read(&cert).unwrap();
        let x = X509::from_pem(&pem).unwrap();
        let sans: Vec<String> = x
            .subject_alt_names()
            .unwrap()
            .iter()
            .map(|n| match (n.dnsname(), n.ipaddress()) {
                (Some(d), _) => d.to_string(),
                (None, Some(ip)) => format!("{ip:?}"),
                _ => String::new(),
            })
            .collect();
        assert_eq!(sans, ["host.example", "localhost", "[127, 0, 0, 1]"]);
        let ten_years = Asn1Time::days_from_now(3640).unwrap();
        assert!(x.not_after() > ten_years);
        assert!(x.public_key().unwrap().rsa().unwrap().size() == 256);
        TlsAcceptor::from_pem_files(&cert, &key).unwrap();

        // Second call: same files, untouched.
        let (cert2, _) = ensure_self_signed(&sub, "host.example").unwrap();
        assert_eq!(fs::read(&cert2).unwrap(), pem);

        // A lone certificate (key lost) is replaced together with a new key.
        fs::remove_file(&key).unwrap();
        ensure_self_signed(&sub, "host.example").unwrap();
        assert_ne!(fs::read(&cert).unwrap(), pem);
        TlsAcceptor::from_pem_files(&cert, &key).unwrap();
    }

    #[test]
    fn ip_hostname_goes_in_as_ip() {
        let (pem, _) = self_signed("192.0.2.7").unwrap();
        let x = X509::from_pem(&pem).unwrap();
        let ips: Vec<Vec<u8>> = x.subject_alt_names().unwrap().iter().filter_map(|n| n.ipaddress().map(<[u8]>::to_vec)).collect();
        assert_eq!(ips, [vec![192, 0, 2, 7], vec![127, 0, 0, 1]]);
    }

    /// A certificate with these subject entries and subjectAltName e-mail addresses.
    fn cert_with(entries: &[(Nid, &str)], emails: &[&str]) -> X509 {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        for (nid, v) in entries {
            name.append_entry_by_nid(*nid, v).unwrap();
        }
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
        if !emails.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for e in emails {
                san.email(e);
            }
            let san = san.build(&b.x509v3_context(None, None)).unwrap();
            b.append_extension(san).unwrap();
        }
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    #[test]
    fn the_user_of_a_certificate() {
        use CertUserField::{Cn, Email};
        let c = cert_with(&[(Nid::ORGANIZATIONNAME, "Example"), (Nid::COMMONNAME, "alice")], &["alice@example.com"]);
        assert_eq!(cert_user(&c, Cn).unwrap(), "alice");
        assert_eq!(cert_user(&c, Email).unwrap(), "alice@example.com");
        // The subject's emailAddress when the subjectAltName has no e-mail address.
        let c = cert_with(&[(Nid::COMMONNAME, "bob"), (Nid::PKCS9_EMAILADDRESS, "bob@example.com")], &[]);
        assert_eq!(cert_user(&c, Email).unwrap(), "bob@example.com");
        // None, two, or something that cannot be a user name: no user.
        let c = cert_with(&[(Nid::ORGANIZATIONNAME, "Example")], &[]);
        assert!(cert_user(&c, Cn).unwrap_err().contains("no commonName"));
        assert!(cert_user(&c, Email).unwrap_err().contains("no e-mail"));
        let c = cert_with(&[(Nid::COMMONNAME, "a"), (Nid::COMMONNAME, "b")], &["a@x", "b@x"]);
        assert!(cert_user(&c, Cn).unwrap_err().contains("more than one"));
        assert!(cert_user(&c, Email).unwrap_err().contains("more than one"));
        let c = cert_with(&[(Nid::COMMONNAME, "evil\nuser")], &[]);
        assert!(cert_user(&c, Cn).is_err());
    }

    #[test]
    fn a_missing_client_ca_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = ensure_self_signed(dir.path(), "a").unwrap();
        let clients = ClientCertConfig { ca_file: dir.path().join("nope.pem"), required: false, user_field: CertUserField::Cn };
        let err = TlsAcceptor::with_client_certs(&cert, &key, Some(&clients)).err().unwrap();
        assert!(format!("{err:#}").contains("nope.pem"), "{err:#}");
        // The server's own certificate serves as a CA bundle.
        let clients = ClientCertConfig { ca_file: cert.clone(), ..clients };
        TlsAcceptor::with_client_certs(&cert, &key, Some(&clients)).unwrap();
    }

    #[test]
    fn mismatched_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = ensure_self_signed(&dir.path().join("a"), "a").unwrap();
        let (_, key) = ensure_self_signed(&dir.path().join("b"), "b").unwrap();
        assert!(TlsAcceptor::from_pem_files(&cert, &key).is_err());
    }
}
