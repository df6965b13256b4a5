//! `xencim serve`: builds the hypervisor, the model and the front doors from the settings,
//! and runs them until SIGTERM or SIGINT, letting in-flight calls finish.

use crate::config::{AuthKind, HypervisorKind, ServeArgs, Settings};
use hypervisor::sim::{SimConfig, SimHypervisor};
use hypervisor::Hypervisor;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use xenapi::model::{Model, ModelConfig};
use xenapi::sessions::{LocalAuthenticator, PamAuthenticator, UserAdmin};

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("XENCIM_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// On the first start there is no user: make `admin` (pool-admin) with a random password,
/// written where only the daemon's user can read it.
fn ensure_initial_admin(state_dir: &Path) -> anyhow::Result<()> {
    use rand::distributions::{Alphanumeric, DistString};
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let admin = UserAdmin::open(state_dir)?;
    if !admin.is_empty()? {
        return Ok(());
    }
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
    let path = state_dir.join("initial-admin-password");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
    writeln!(file, "{password}")?;
    admin.add("admin", &password, httpd::Role::PoolAdmin)?;
    tracing::info!(path = %path.display(), "created user admin (pool-admin); its password is in this file");
    Ok(())
}

fn hypervisor(settings: &Settings) -> anyhow::Result<Arc<dyn Hypervisor>> {
    match settings.hypervisor {
        HypervisorKind::Sim => {
            let config = SimConfig {
                state_dir: settings.state_dir.join("sim"),
                memory_total: settings.sim_memory_mib << 20,
                cpu_count: settings.sim_cpus,
                ..SimConfig::default()
            };
            Ok(Arc::new(SimHypervisor::new(config)))
        }
        HypervisorKind::Qemu => Ok(Arc::new(qemu_hypervisor(settings)?)),
    }
}

fn qemu_hypervisor(settings: &Settings) -> anyhow::Result<hypervisor::qemu::QemuHypervisor> {
    use crate::config::{AccelKind, QemuNetwork};
    use hypervisor::qemu::{AccelChoice, NetworkMode, QemuConfig, QemuHypervisor};
    let defaults = QemuConfig::default();
    let config = QemuConfig {
        state_dir: settings.state_dir.join("qemu"),
        accel: match settings.accel {
            AccelKind::Auto => AccelChoice::Auto,
            AccelKind::Kvm => AccelChoice::Kvm,
            AccelKind::Tcg => AccelChoice::Tcg,
        },
        qemu_binary: settings.qemu_binary.clone().unwrap_or_else(|| defaults.qemu_binary.clone()),
        network: match settings.qemu_network {
            QemuNetwork::User => NetworkMode::User,
            QemuNetwork::Bridge => NetworkMode::Bridge,
        },
        host_reserve: settings.qemu_host_reserve_mib.map_or(defaults.host_reserve, |m| m << 20),
        ..defaults
    };
    QemuHypervisor::new(config).map_err(|e| anyhow::anyhow!("the qemu backend: {e}"))
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(args)?;
    init_logging(settings.log_json);
    std::fs::create_dir_all(&settings.state_dir)?;
    let state_dir = settings.state_dir.canonicalize()?;
    // The stores' identities are checked first (indications.db here, xencim.db by
    // ensure_initial_admin): a file that is not theirs stops the start before anything else is
    // written, and is left as it was.
    let indication_store = indications::open_store(&state_dir)?;
    ensure_initial_admin(&state_dir)?;

    let hv = hypervisor(&settings)?;
    let mut model_config = ModelConfig::new(state_dir.clone());
    model_config.session_idle_timeout = Duration::from_secs(settings.session_idle_timeout_secs);
    model_config.task_retention = Duration::from_secs(settings.task_retention_secs);
    model_config.clean_shutdown_timeout = Duration::from_secs(settings.clean_shutdown_timeout_secs);
    model_config.event_queue_limit = settings.event_queue_limit;
    model_config.max_sessions_per_user = settings.max_sessions_per_user;
    let checker: Arc<dyn httpd::Authenticator> = match settings.auth {
        AuthKind::Local => Arc::new(LocalAuthenticator::new(model_config.store_path())),
        AuthKind::Pam => {
            tracing::info!(service = %settings.pam_service, default_role = ?settings.pam_default_role.map(|r| r.name()), "logins through PAM");
            Arc::new(PamAuthenticator::new(settings.pam_service.clone(), settings.pam_default_role, model_config.store_path()))
        }
    };
    let audit_path = settings.audit_log.clone().unwrap_or_else(|| state_dir.join("audit.log"));
    let audit: Arc<dyn httpd::AuditSink> =
        Arc::new(httpd::AuditLog::open(&audit_path).map_err(|e| anyhow::anyhow!("the audit log {}: {e}", audit_path.display()))?);
    // One limiter for both doors: guesses through one door count against the other too.
    let limiter = Arc::new(httpd::LoginLimiter::new(settings.login_limits.clone()));
    let guarded = |door: &'static str| -> Arc<dyn httpd::Authenticator> {
        Arc::new(httpd::Guarded::new(checker.clone(), limiter.clone(), Some(audit.clone()), door))
    };
    let auth = guarded("wbem");
    let model = Model::open(model_config, hv, guarded("xenapi"))?;

    let (cert, key) = match (&settings.tls_cert, &settings.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => httpd::ensure_self_signed(&state_dir.join("tls"), &hostname())?,
        _ => anyhow::bail!("tls_cert and tls_key go together"),
    };
    if let Some(clients) = &settings.tls_client_certs {
        tracing::info!(
            ca = %clients.ca_file.display(),
            required = clients.required,
            user_field = ?clients.user_field,
            "TLS client certificates authenticate users"
        );
    }
    let tls = httpd::TlsAcceptor::with_client_certs(&cert, &key, settings.tls_client_certs.as_ref())?;
    let limits = httpd::Limits {
        max_body_bytes: settings.max_body_bytes,
        max_connections: settings.max_connections,
        max_connections_per_ip: settings.max_connections_per_ip,
        header_read_timeout: Duration::from_secs(settings.header_timeout_secs),
        idle_timeout: Duration::from_secs(settings.idle_timeout_secs),
        ..httpd::Limits::default()
    };

    let wbem_service = wbem::service::WbemService::build(&wbem::service::WbemSettings {
        schema_dir: settings.mof_dir.clone(),
        test_instances: settings.cim_test_instances,
        system_name: hostname(),
        product_version: env!("CARGO_PKG_VERSION").into(),
        pull: wbem::ops::PullLimits {
            max_open_contexts: settings.max_enumeration_contexts,
            max_open_contexts_per_user: settings.max_enumeration_contexts_per_user,
            ..wbem::ops::PullLimits::default()
        },
    })?;
    providers::register_all(&wbem_service.providers, &wbem_service.profiles, model.clone()).map_err(anyhow::Error::msg)?;
    indications::install(
        &wbem_service,
        model.clone(),
        Arc::new(crate::indication_view::ProvidersView { task_retention: model.config.task_retention }),
        indication_store,
        &indications::IndicationSettings {
            system_name: hostname(),
            queue_limit: settings.indication_queue_limit,
            tls_verify: settings.indication_tls_verify,
        },
    )?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("xencim-io").build()?;
    runtime.block_on(async move {
        let shutdown = httpd::Shutdown::new();
        let xenapi_handler = xenapi::rpc::handler_with_limits(
            Arc::new(xenapi::dispatch::Api { model: model.clone(), audit: Some(audit.clone()) }),
            settings.xenapi_limits,
        );
        let mut servers = tokio::task::JoinSet::new();
        let mut bound = Vec::new();
        for (addr, tls, key) in [(settings.xenapi, None, "xenapi"), (settings.xenapi_tls, Some(tls.clone()), "xenapi_tls")] {
            if settings.no_plaintext && tls.is_none() {
                continue;
            }
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("{key} on {addr}: {e}"))?;
            let local = listener.local_addr()?;
            tracing::info!(address = %local, "{key} listening");
            bound.push(format!("{key:?}: \"{local}\""));
            servers.spawn(httpd::serve(listener, tls, xenapi_handler.clone(), limits.clone(), shutdown.clone()));
        }
        let wbem_handler = wbem_service.handler_with_limits(auth.clone(), Some(audit.clone()), settings.cim_limits);
        for (addr, tls, key) in [(settings.cim_http, None, "cim_http"), (settings.cim_https, Some(tls.clone()), "cim_https")] {
            if settings.no_plaintext && tls.is_none() {
                continue;
            }
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("{key} on {addr}: {e}"))?;
            let local = listener.local_addr()?;
            tracing::info!(address = %local, "{key} listening");
            bound.push(format!("{key:?}: \"{local}\""));
            servers.spawn(httpd::serve(listener, tls, wbem_handler.clone(), limits.clone(), shutdown.clone()));
        }
        // Scripts and tests that asked for port 0 learn the real ports here.
        std::fs::write(state_dir.join("listeners.json"), format!("{{{}}}\n", bound.join(", ")))?;
        tracing::info!(state_dir = %state_dir.display(), hypervisor = ?settings.hypervisor, "xencim is up");
        wait_for_signal().await;
        tracing::info!("stopping: letting in-flight calls finish");
        shutdown.trigger();
        while servers.join_next().await.is_some() {}
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
