//! The DMTF virtualization profiles over the Xen-API model: System Virtualization (DSP1042),
//! Virtual System (DSP1057), Resource Allocation (DSP1041), Allocation Capabilities (DSP1043)
//! and the processor, memory, storage and Ethernet port resource profiles (DSP1044, 1045,
//! 1047, 1050), as one WBEM provider of the `Xen_` classes in root/virt.
//!
//! The providers keep no state of their own. Every instance is computed from the model when
//! asked; every change goes through the model's operations (`xenapi::lifecycle`, `vm_ops`,
//! `devices`, `tasks`), so the state machine, persistence, tasks and events are the same as for
//! the Xen-API door. A CIM job is a model task; what the CIM view of a task needs beyond the task
//! record is kept in the task's `other_config`.
//!
//! Modules, one per concern: [`names`] (classes, keys, paths), [`host`] (host, management
//! service, its capabilities), [`system`] (virtual systems, their states, RequestStateChange),
//! [`settings`] (VSSD and RASDs), [`devices`] (logical devices), [`pools`] (pools, allocation
//! capabilities, templates), [`jobs`] (Xen_ConcreteJob over tasks), [`assoc`] (associations),
//! [`input`] and [`vsms`] (the management service's methods), [`profiles`] (conformance to the
//! registered profiles), [`roles`] (the role each method needs), [`provider`] (the glue to
//! `wbem::provider::Provider`), [`reference`] (the generated class reference).

use std::sync::Arc;

use wbem::interop::ProfileRegistry;
use wbem::provider::ProviderRegistry;
use xenapi::model::Model;

pub mod assoc;
pub mod devices;
pub mod host;
pub mod input;
pub mod jobs;
pub mod names;
pub mod pools;
pub mod profiles;
pub mod provider;
pub mod reference;
pub mod roles;
pub mod settings;
pub mod system;
pub mod util;
pub mod vsms;

#[cfg(test)]
mod tests;

/// What every part of the providers reads: the model.
pub struct Ctx {
    pub model: Arc<Model>,
}

/// Registers the provider of every class of the profiles and the elements that conform to
/// each registered profile.
pub fn register_all(registry: &ProviderRegistry, profiles: &ProfileRegistry, model: Arc<Model>) -> Result<(), String> {
    let ctx = Arc::new(Ctx { model });
    registry.register(Arc::new(provider::XenProvider::new(ctx.clone())))?;
    profiles::register(profiles, ctx);
    Ok(())
}
