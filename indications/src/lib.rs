//! CIM indications (DSP1054) over the model's event stream.
//!
//! - [`subscriptions`]: the filter, listener destination and subscription instances of
//!   root/interop (a WBEM provider), persisted in `<state-dir>/indications.db` ([`store`]), and the
//!   CIM_IndicationService with its capabilities.
//! - [`engine`]: commits of the model → Created / Deleted / Modified indications of VMs, their
//!   resource settings and jobs, with SourceInstance as the providers serve it ([`ModelView`]).
//! - [`filter`]: each subscription's query evaluated on the indication, with its projection.
//! - [`delivery`]: per-destination ordered, bounded queues and CIM-XML ExportIndication over
//!   HTTP or HTTPS, with retries and the fatal-error policy.
//!
//! The `wbem` crate stays model-agnostic; the binary wires this crate to the model and the
//! providers with [`install`].

pub mod delivery;
pub mod engine;
pub mod filter;
pub mod store;
pub mod subscriptions;

use std::path::Path;
use std::sync::Arc;

pub use engine::{ModelView, SystemView};
pub use subscriptions::{SubscriptionProvider, Subscriptions};

use wbem::service::WbemService;
use xenapi::model::Model;

/// The InstanceID of the Indications profile in `mof/xen/Xen_RegisteredProfiles.mof`.
pub const INDICATIONS_PROFILE_ID: &str = "CIM:DSP1054-Indications-1.1.0";

#[derive(Debug, Clone)]
pub struct IndicationSettings {
    /// The host name (keys of the interop instances).
    pub system_name: String,
    /// Indications waiting per listener destination before new ones are dropped.
    pub queue_limit: usize,
    /// Verify HTTPS listeners' certificates (off: self-signed listeners are accepted).
    pub tls_verify: bool,
}

pub const DEFAULT_QUEUE_LIMIT: usize = 10_000;

/// The subscriptions' file in the state directory.
pub const STORE_FILE: &str = "indications.db";

/// Opens `<state_dir>/indications.db`, refusing a file that is not one (not SQLite, another
/// program's or the model's, a newer schema) with the file and the reason, and leaving it as it
/// was. The daemon opens it before anything else in the state directory is written.
pub fn open_store(state_dir: &Path) -> anyhow::Result<store::Store> {
    store::Store::open(&state_dir.join(STORE_FILE))
}

/// Registers the subscription provider and the Indications profile's conformance in the WBEM
/// service, and starts generating indications from the model's commits. `store` comes from
/// [`open_store`].
pub fn install(
    service: &WbemService,
    model: Arc<Model>,
    view: Arc<dyn ModelView>,
    store: store::Store,
    settings: &IndicationSettings,
) -> anyhow::Result<Arc<Subscriptions>> {
    let repo = service.cimom.repository().clone();
    let subs = Subscriptions::open(repo, store, &settings.system_name, settings.queue_limit, settings.tls_verify);
    service.providers.register(Arc::new(SubscriptionProvider(subs.clone()))).map_err(anyhow::Error::msg)?;
    let service_path = subs.service_object_path();
    service.profiles.add_conformance(INDICATIONS_PROFILE_ID, move || vec![service_path.clone()]);
    let cimom = service.cimom.clone();
    let shaper: engine::Shaper = Arc::new(move |i| {
        let fallback = i.clone();
        cimom.shape_instance(filter::SOURCE_NAMESPACE, i).unwrap_or(fallback)
    });
    engine::start(model, view, subs.clone(), shaper)?;
    Ok(subs)
}
