//! Everything the daemon needs to serve the WBEM door, built from a few settings: the repository
//! compiled from the schema directory (plus the test classes when asked), the provider registry
//! with the interop provider (and the test provider), the profile registry, and the dispatcher.

use std::path::PathBuf;
use std::sync::Arc;

use httpd::auth::Authenticator;
use httpd::Handler;

use crate::interop::{InteropProvider, ProfileRegistry, ServerIdentity};
use crate::mof::Repository;
use crate::ops::{Cimom, CimomConfig};
use crate::provider::ProviderRegistry;
use crate::testclass::{add_test_classes, TestProvider};

#[derive(Debug, Clone)]
pub struct WbemSettings {
    /// The schema directory (its `namespaces.mof` includes the rest).
    pub schema_dir: PathBuf,
    /// Instances of the test fixture class `Xen_TestElement`; 0 leaves the test classes out.
    pub test_instances: u32,
    /// The host name, for the keys of the interop instances.
    pub system_name: String,
    pub product_version: String,
    /// Bounds on pull enumerations (open contexts in all and per user, timeouts, batch size).
    pub pull: crate::ops::PullLimits,
}

/// The pieces of the WBEM door. Providers (the virtualization profiles) register into
/// `providers` and `profiles`, at start or later.
pub struct WbemService {
    pub cimom: Cimom,
    pub providers: Arc<ProviderRegistry>,
    pub profiles: Arc<ProfileRegistry>,
}

impl WbemService {
    pub fn build(settings: &WbemSettings) -> anyhow::Result<WbemService> {
        let mut repo = Repository::load(&settings.schema_dir)
            .map_err(|e| anyhow::anyhow!("loading the CIM schema from {}: {e}", settings.schema_dir.display()))?;
        if settings.test_instances > 0 {
            add_test_classes(&mut repo).map_err(|e| anyhow::anyhow!("compiling the test classes: {e}"))?;
        }
        WbemService::with_repository(Arc::new(repo), settings)
    }

    /// Over an already compiled repository (tests).
    pub fn with_repository(repo: Arc<Repository>, settings: &WbemSettings) -> anyhow::Result<WbemService> {
        let config = CimomConfig { pull: settings.pull.clone(), ..CimomConfig::default() };
        let providers = Arc::new(ProviderRegistry::new());
        let profiles = Arc::new(ProfileRegistry::new());
        let identity = ServerIdentity {
            system_name: settings.system_name.clone(),
            product: "xencim".into(),
            version: settings.product_version.clone(),
            namespaces: config.namespaces.clone(),
        };
        providers.register(Arc::new(InteropProvider::new(identity, repo.clone(), profiles.clone()))).map_err(anyhow::Error::msg)?;
        if settings.test_instances > 0 && repo.get_class(crate::testclass::TEST_NAMESPACE, crate::testclass::ELEMENT_CLASS).is_some() {
            providers.register(Arc::new(TestProvider::new(settings.test_instances))).map_err(anyhow::Error::msg)?;
        }
        let cimom = Cimom::new(repo, providers.clone(), config);
        Ok(WbemService { cimom, providers, profiles })
    }

    /// The HTTP handler for both WBEM listeners.
    pub fn handler(&self, auth: Arc<dyn Authenticator>) -> Arc<dyn Handler> {
        crate::server::handler(self.cimom.clone(), auth)
    }

    /// [`handler`](Self::handler), recording changing operations and method calls in `audit`.
    pub fn handler_with_audit(&self, auth: Arc<dyn Authenticator>, audit: Option<Arc<dyn httpd::AuditSink>>) -> Arc<dyn Handler> {
        crate::server::handler_with_audit(self.cimom.clone(), auth, audit)
    }

    /// [`handler_with_audit`](Self::handler_with_audit), holding request documents to `limits`.
    pub fn handler_with_limits(
        &self,
        auth: Arc<dyn Authenticator>,
        audit: Option<Arc<dyn httpd::AuditSink>>,
        limits: crate::cimxml::ParseLimits,
    ) -> Arc<dyn Handler> {
        crate::server::handler_with_limits(self.cimom.clone(), auth, audit, limits)
    }
}
