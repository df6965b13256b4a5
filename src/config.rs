//! The daemon's settings: command-line flags over a TOML config file over built-in defaults.

use clap::{Args, ValueEnum};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HypervisorKind {
    Sim,
    Qemu,
}

/// QEMU accelerator of the qemu backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccelKind {
    /// KVM when a probe guest runs under it, TCG otherwise.
    Auto,
    Kvm,
    Tcg,
}

/// How NICs of the qemu backend reach the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QemuNetwork {
    User,
    Bridge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    Local,
    Pam,
}

/// Which field of a client certificate is the user name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertUserField {
    /// The subject's commonName.
    Cn,
    /// The subjectAltName's e-mail address (or the subject's emailAddress).
    Email,
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// State directory (store, disk images, certificates) [default: $XENCIM_STATE_DIR or ./xencim-state]
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Hypervisor backend [default: sim]
    #[arg(long, value_enum)]
    pub hypervisor: Option<HypervisorKind>,
    /// Accelerator of the qemu backend [default: auto]
    #[arg(long, value_enum)]
    pub accel: Option<AccelKind>,
    /// CIM-XML over HTTP [default: 127.0.0.1:5988]
    #[arg(long)]
    pub cim_http: Option<SocketAddr>,
    /// CIM-XML over HTTPS [default: 127.0.0.1:5989]
    #[arg(long)]
    pub cim_https: Option<SocketAddr>,
    /// Xen-API (XML-RPC and JSON-RPC) over HTTP [default: 127.0.0.1:9363]
    #[arg(long)]
    pub xenapi: Option<SocketAddr>,
    /// Xen-API over HTTPS [default: 127.0.0.1:9364]
    #[arg(long)]
    pub xenapi_tls: Option<SocketAddr>,
    /// How logins are checked [default: local]
    #[arg(long, value_enum)]
    pub auth: Option<AuthKind>,
    /// PAM service name for --auth pam [default: xencim]
    #[arg(long)]
    pub pam_service: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
    /// Serve TLS only: no plain-HTTP listener on either door.
    #[arg(long)]
    pub no_plaintext: bool,
}

/// The file form of the settings; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub state_dir: Option<PathBuf>,
    pub hypervisor: Option<HypervisorKind>,
    pub cim_http: Option<SocketAddr>,
    pub cim_https: Option<SocketAddr>,
    pub xenapi: Option<SocketAddr>,
    pub xenapi_tls: Option<SocketAddr>,
    pub auth: Option<AuthKind>,
    pub pam_service: Option<String>,
    /// Role of a PAM user without an entry in the user table; absent: such users are refused.
    pub pam_default_role: Option<String>,
    /// The audit log (JSON lines); default `<state_dir>/audit.log`.
    pub audit_log: Option<PathBuf>,
    /// Failed logins for one user name before the backoff starts.
    pub login_failures_per_user: Option<u32>,
    /// Failed logins from one address before the backoff starts.
    pub login_failures_per_address: Option<u32>,
    /// The longest lockout after failed logins, in seconds.
    pub login_backoff_max_secs: Option<u64>,
    /// Serve TLS only (as `--no-plaintext`).
    pub no_plaintext: Option<bool>,
    /// PEM certificate and key for both TLS listeners; a self-signed pair is made when absent.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// PEM bundle of the CAs that sign client certificates; when set, both TLS listeners ask
    /// for one, and a verified certificate authenticates the user it names (docs/tls.md).
    pub tls_client_ca: Option<PathBuf>,
    /// With `tls_client_ca`: a TLS client without a certificate fails the handshake.
    pub tls_client_cert_required: Option<bool>,
    /// With `tls_client_ca`: the certificate field that is the user name, `cn` (default) or `email`.
    pub tls_client_cert_user_field: Option<CertUserField>,
    pub session_idle_timeout_secs: Option<u64>,
    pub task_retention_secs: Option<u64>,
    pub clean_shutdown_timeout_secs: Option<u64>,
    /// Events a session registered with event.register may have waiting before EVENTS_LOST.
    pub event_queue_limit: Option<usize>,
    /// Live Xen-API sessions one user may hold; more logins fail with TOO_MANY_SESSIONS.
    pub max_sessions_per_user: Option<usize>,
    /// CIM pull enumeration contexts open at once, across all users.
    pub max_enumeration_contexts: Option<usize>,
    /// CIM pull enumeration contexts one user may have open at once (CIM-XML has no sessions:
    /// the authenticated user stands for one).
    pub max_enumeration_contexts_per_user: Option<usize>,
    /// Indications waiting per listener destination before new ones are dropped.
    pub indication_queue_limit: Option<usize>,
    /// Verify HTTPS indication listeners' certificates.
    pub indication_tls_verify: Option<bool>,
    pub max_body_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    /// Seconds a client has to send a whole request head (and the TLS handshake): slowloris.
    pub header_timeout_secs: Option<u64>,
    /// Seconds a kept-alive connection may idle, and the longest pause inside a request body.
    pub idle_timeout_secs: Option<u64>,
    /// Deepest element nesting of a CIM-XML or XML-RPC request (at most 300).
    pub xml_max_depth: Option<usize>,
    /// Most elements in one CIM-XML or XML-RPC request.
    pub xml_max_elements: Option<usize>,
    /// Most attributes on one element of a CIM-XML or XML-RPC request.
    pub xml_max_attributes: Option<usize>,
    /// Deepest nesting of arrays and objects in a JSON-RPC request, the request object being
    /// level 1 (at most 126).
    pub json_max_depth: Option<usize>,
    /// Longest string in a request on either door (text of an element, attribute value, JSON
    /// string or member name), in bytes once unescaped.
    pub max_string_bytes: Option<usize>,
    /// Most items of one array in a request on either door (CIM VALUE.ARRAY/VALUE.REFARRAY,
    /// XML-RPC and JSON arrays), and members of one Xen-API struct.
    pub max_array_items: Option<usize>,
    /// Host memory the sim hypervisor offers, in MiB.
    pub sim_memory_mib: Option<u64>,
    pub sim_cpus: Option<u32>,
    /// Accelerator of the qemu backend: auto, kvm or tcg.
    pub accel: Option<AccelKind>,
    pub qemu_binary: Option<PathBuf>,
    /// `user` (every NIC on QEMU's user-mode network) or `bridge` (a tap on the network's
    /// bridge when the host has it).
    pub qemu_network: Option<QemuNetwork>,
    /// Host memory never promised to guests, in MiB.
    pub qemu_host_reserve_mib: Option<u64>,
    /// The CIM schema directory (its namespaces.mof includes the rest).
    pub mof_dir: Option<PathBuf>,
    /// Instances of the WBEM test fixture class Xen_TestElement (0 leaves the test classes out).
    pub cim_test_instances: Option<u32>,
}

#[derive(Debug)]
pub struct Settings {
    pub state_dir: PathBuf,
    pub hypervisor: HypervisorKind,
    pub cim_http: SocketAddr,
    pub cim_https: SocketAddr,
    pub xenapi: SocketAddr,
    pub xenapi_tls: SocketAddr,
    pub auth: AuthKind,
    pub pam_service: String,
    pub pam_default_role: Option<httpd::Role>,
    pub audit_log: Option<PathBuf>,
    pub login_limits: httpd::LoginLimits,
    pub no_plaintext: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Client-certificate authentication on the TLS listeners, when `tls_client_ca` is set.
    pub tls_client_certs: Option<httpd::ClientCertConfig>,
    pub session_idle_timeout_secs: u64,
    pub task_retention_secs: u64,
    pub clean_shutdown_timeout_secs: u64,
    pub event_queue_limit: usize,
    pub max_sessions_per_user: usize,
    pub max_enumeration_contexts: usize,
    pub max_enumeration_contexts_per_user: usize,
    pub indication_queue_limit: usize,
    pub indication_tls_verify: bool,
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub header_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    /// Bounds on CIM-XML request documents.
    pub cim_limits: wbem::cimxml::ParseLimits,
    /// Bounds on Xen-API requests, XML-RPC and JSON-RPC.
    pub xenapi_limits: xenapi::rpc::Limits,
    pub sim_memory_mib: u64,
    pub sim_cpus: u32,
    pub accel: AccelKind,
    pub qemu_binary: Option<PathBuf>,
    pub qemu_network: QemuNetwork,
    pub qemu_host_reserve_mib: Option<u64>,
    pub log_json: bool,
    pub mof_dir: PathBuf,
    pub cim_test_instances: u32,
}

impl Settings {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Settings> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let addr = |s: &str| -> SocketAddr { s.parse().expect("built-in address") };
        let (cim_limits, xenapi_limits) = request_limits(&file)?;
        Ok(Settings {
            state_dir: args.state_dir.or(file.state_dir).unwrap_or_else(crate::default_state_dir),
            hypervisor: args.hypervisor.or(file.hypervisor).unwrap_or(HypervisorKind::Sim),
            cim_http: args.cim_http.or(file.cim_http).unwrap_or_else(|| addr("127.0.0.1:5988")),
            cim_https: args.cim_https.or(file.cim_https).unwrap_or_else(|| addr("127.0.0.1:5989")),
            xenapi: args.xenapi.or(file.xenapi).unwrap_or_else(|| addr("127.0.0.1:9363")),
            xenapi_tls: args.xenapi_tls.or(file.xenapi_tls).unwrap_or_else(|| addr("127.0.0.1:9364")),
            auth: args.auth.or(file.auth).unwrap_or(AuthKind::Local),
            pam_service: args.pam_service.or(file.pam_service).unwrap_or_else(|| "xencim".into()),
            pam_default_role: match &file.pam_default_role {
                None => None,
                Some(r) if r.is_empty() || r == "none" => None,
                Some(r) => Some(r.parse().map_err(|e| anyhow::anyhow!("pam_default_role: {e}"))?),
            },
            audit_log: file.audit_log,
            login_limits: {
                let d = httpd::LoginLimits::default();
                httpd::LoginLimits {
                    user_failures: file.login_failures_per_user.unwrap_or(d.user_failures),
                    address_failures: file.login_failures_per_address.unwrap_or(d.address_failures),
                    max_backoff: file.login_backoff_max_secs.map_or(d.max_backoff, std::time::Duration::from_secs),
                    ..d
                }
            },
            no_plaintext: args.no_plaintext || file.no_plaintext.unwrap_or(false),
            tls_cert: file.tls_cert,
            tls_key: file.tls_key,
            tls_client_certs: match file.tls_client_ca {
                Some(ca_file) => Some(httpd::ClientCertConfig {
                    ca_file,
                    required: file.tls_client_cert_required.unwrap_or(false),
                    user_field: match file.tls_client_cert_user_field.unwrap_or(CertUserField::Cn) {
                        CertUserField::Cn => httpd::CertUserField::Cn,
                        CertUserField::Email => httpd::CertUserField::Email,
                    },
                }),
                None if file.tls_client_cert_required == Some(true) => {
                    anyhow::bail!("tls_client_cert_required needs tls_client_ca (the CAs that sign client certificates)")
                }
                None => None,
            },
            session_idle_timeout_secs: file.session_idle_timeout_secs.unwrap_or(24 * 3600),
            task_retention_secs: file.task_retention_secs.unwrap_or(3600),
            clean_shutdown_timeout_secs: file.clean_shutdown_timeout_secs.unwrap_or(60),
            event_queue_limit: file.event_queue_limit.unwrap_or(10_000),
            // xapi's own per-user-name (and per-originator) bound: real tooling stays far below it.
            max_sessions_per_user: file.max_sessions_per_user.unwrap_or(500).max(1),
            max_enumeration_contexts: file.max_enumeration_contexts.unwrap_or(256).max(1),
            max_enumeration_contexts_per_user: file.max_enumeration_contexts_per_user.unwrap_or(32).max(1),
            indication_queue_limit: file.indication_queue_limit.unwrap_or(10_000).max(1),
            indication_tls_verify: file.indication_tls_verify.unwrap_or(false),
            max_body_bytes: file.max_body_bytes.unwrap_or(16 * 1024 * 1024),
            max_connections: file.max_connections.unwrap_or(1024),
            max_connections_per_ip: file.max_connections_per_ip.unwrap_or(256),
            header_timeout_secs: file.header_timeout_secs.unwrap_or(10).max(1),
            idle_timeout_secs: file.idle_timeout_secs.unwrap_or(120).max(1),
            cim_limits,
            xenapi_limits,
            sim_memory_mib: file.sim_memory_mib.unwrap_or(16 * 1024),
            sim_cpus: file.sim_cpus.unwrap_or(8),
            accel: args.accel.or(file.accel).unwrap_or(AccelKind::Auto),
            qemu_binary: file.qemu_binary,
            qemu_network: file.qemu_network.unwrap_or(QemuNetwork::User),
            qemu_host_reserve_mib: file.qemu_host_reserve_mib,
            log_json: args.log_json,
            mof_dir: file.mof_dir.unwrap_or_else(default_mof_dir),
            cim_test_instances: file.cim_test_instances.unwrap_or(0),
        })
    }
}

/// The request-parsing limits of both doors from the keys they share. Each key must be at
/// least 1; the depths are capped because the Xen-API decoders recurse per level.
fn request_limits(file: &FileConfig) -> anyhow::Result<(wbem::cimxml::ParseLimits, xenapi::rpc::Limits)> {
    let cim = wbem::cimxml::ParseLimits::default();
    let rpc = xenapi::rpc::Limits::default();
    let key = |name: &str, value: Option<usize>, default: usize, ceiling: usize| -> anyhow::Result<usize> {
        match value.unwrap_or(default) {
            v if v == 0 || v > ceiling => anyhow::bail!("{name} must be between 1 and {ceiling}, not {v}"),
            v => Ok(v),
        }
    };
    let depth = key("xml_max_depth", file.xml_max_depth, cim.max_depth, xenapi::rpc::Limits::XML_DEPTH_CEILING)?;
    let elements = key("xml_max_elements", file.xml_max_elements, cim.max_elements, usize::MAX)?;
    let attributes = key("xml_max_attributes", file.xml_max_attributes, cim.max_attributes, usize::MAX)?;
    let json_depth = key("json_max_depth", file.json_max_depth, rpc.json_max_depth, xenapi::rpc::Limits::JSON_DEPTH_CEILING)?;
    let strings = key("max_string_bytes", file.max_string_bytes, cim.max_string_bytes, usize::MAX)?;
    let arrays = key("max_array_items", file.max_array_items, cim.max_array_items, usize::MAX)?;
    Ok((
        wbem::cimxml::ParseLimits {
            max_depth: depth,
            max_elements: elements,
            max_attributes: attributes,
            max_string_bytes: strings,
            max_array_items: arrays,
            ..cim
        },
        xenapi::rpc::Limits {
            xml_max_depth: depth,
            xml_max_elements: elements,
            xml_max_attributes: attributes,
            json_max_depth: json_depth,
            max_string_bytes: strings,
            max_array_items: arrays,
        },
    ))
}

/// Where the CIM schema is when the config does not say: `$XENCIM_MOF_DIR`, `./mof`, the source
/// tree the binary was built in (`target/<profile>/xencim` → `mof/`), then the packaged place.
pub fn default_mof_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XENCIM_MOF_DIR") {
        return PathBuf::from(dir);
    }
    let mut candidates = vec![PathBuf::from("mof")];
    if let Ok(exe) = std::env::current_exe() {
        if let Some(root) = exe.parent().and_then(|p| p.parent()).and_then(|p| p.parent()) {
            candidates.push(root.join("mof"));
        }
    }
    candidates.push(PathBuf::from("/usr/share/xencim/mof"));
    candidates.iter().find(|d| d.join("namespaces.mof").is_file()).cloned().unwrap_or_else(|| candidates.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(toml_text: &str) -> anyhow::Result<(wbem::cimxml::ParseLimits, xenapi::rpc::Limits)> {
        request_limits(&toml::from_str(toml_text)?)
    }

    #[test]
    fn both_doors_share_the_default_limits() {
        let (cim, rpc) = limits("").unwrap();
        assert_eq!(cim, wbem::cimxml::ParseLimits::default());
        assert_eq!(rpc, xenapi::rpc::Limits::default());
    }

    #[test]
    fn request_limits_from_the_file() {
        let text = "xml_max_depth = 20\nxml_max_elements = 300\nxml_max_attributes = 4\njson_max_depth = 6\n\
                    max_string_bytes = 1000\nmax_array_items = 10\n";
        let (cim, rpc) = limits(text).unwrap();
        assert_eq!(
            (cim.max_depth, cim.max_elements, cim.max_attributes, cim.max_string_bytes, cim.max_array_items),
            (20, 300, 4, 1000, 10)
        );
        assert_eq!(cim.max_embedding, wbem::cimxml::ParseLimits::default().max_embedding);
        assert_eq!(
            rpc,
            xenapi::rpc::Limits {
                xml_max_depth: 20,
                xml_max_elements: 300,
                xml_max_attributes: 4,
                json_max_depth: 6,
                max_string_bytes: 1000,
                max_array_items: 10
            }
        );
        for (bad, says) in [
            ("xml_max_depth = 301", "xml_max_depth must be between 1 and 300, not 301"),
            ("json_max_depth = 127", "json_max_depth must be between 1 and 126"),
            ("max_string_bytes = 0", "max_string_bytes must be between 1"),
            ("max_array_items = 0", "max_array_items must be between 1"),
        ] {
            assert!(limits(bad).unwrap_err().to_string().contains(says), "{bad}");
        }
    }
}
