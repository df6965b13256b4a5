//! The host (DSP1042's central and scoping instance) and its management service with the
//! service's capabilities.

use wbem::cim::Instance;
use xenapi::datamodel::{class, host, host_metrics};
use xenapi::db::Data;

use crate::names::{self, HOST, VSMC, VSMS, VSMS_NAME};
use crate::settings::{TYPE_HVM, TYPE_PV};
use crate::Ctx;

/// What the model knows of the physical host.
pub struct HostFacts {
    pub name: String,
    pub uuid: String,
    pub label: String,
    pub cpus: u64,
    pub memory_total: u64,
    pub memory_free: u64,
}

pub fn facts(ctx: &Ctx, data: &Data) -> HostFacts {
    let h = data.row(class::host, &ctx.model.known.host);
    let m = h.and_then(|h| data.row(class::host_metrics, h.str(host::METRICS)));
    let name = h.map(|h| h.str(host::HOSTNAME).to_owned()).filter(|n| !n.is_empty()).unwrap_or_else(|| "localhost".into());
    HostFacts {
        label: h.map(|h| h.str(host::NAME_LABEL).to_owned()).filter(|l| !l.is_empty()).unwrap_or_else(|| name.clone()),
        name,
        uuid: h.map(|h| h.str(host::UUID).to_owned()).unwrap_or_default(),
        cpus: data.rows(class::host_cpu).count() as u64,
        memory_total: m.map(|m| m.int(host_metrics::MEMORY_TOTAL).max(0) as u64).unwrap_or(0),
        memory_free: m.map(|m| m.int(host_metrics::MEMORY_FREE).max(0) as u64).unwrap_or(0),
    }
}

pub fn host_instance(f: &HostFacts) -> Instance {
    Instance::new(HOST)
        .with("CreationClassName", HOST)
        .with("Name", f.name.as_str())
        .with("ElementName", f.label.as_str())
        .with("Caption", f.label.as_str())
        .with("Description", "The virtualization host")
        .with("NameFormat", "IP")
        .with("EnabledState", 2u16)
        .with("RequestedState", 12u16)
        .with("EnabledDefault", 2u16)
        .with("HealthState", 5u16)
        .with("OperationalStatus", vec![2u16])
        .with("Dedicated", vec![0u16])
        .with("OtherIdentifyingInfo", vec![f.uuid.as_str()])
        .with("IdentifyingDescriptions", vec!["Xen-API host uuid"])
        .with_path(names::host_path(&f.name))
}

pub fn vsms_instance(f: &HostFacts) -> Instance {
    Instance::new(VSMS)
        .with("CreationClassName", VSMS)
        .with("Name", VSMS_NAME)
        .with("SystemCreationClassName", HOST)
        .with("SystemName", f.name.as_str())
        .with("ElementName", "Virtual System Management Service")
        .with("Description", "Defines, changes and destroys the virtual machines of the host")
        .with("Release", env!("CARGO_PKG_VERSION"))
        .with("EnabledState", 2u16)
        .with("RequestedState", 12u16)
        .with("EnabledDefault", 2u16)
        .with("HealthState", 5u16)
        .with("OperationalStatus", vec![2u16])
        .with("Started", true)
        .with_path(names::vsms_path(&f.name))
}

/// DefineSystem is synchronous unless it has disks to create or copy (then it may also be
/// asynchronous); the other methods are synchronous. Values of CIM schema 2.22 and later.
pub const SYNCHRONOUS_METHODS: [u16; 6] = [2, 3, 5, 6, 7, 10];
pub const ASYNCHRONOUS_METHODS: [u16; 1] = [2];

pub fn vsmc_instance() -> Instance {
    Instance::new(VSMC)
        .with("InstanceID", names::VSMC_ID)
        .with("ElementName", "Virtual System Management Capabilities")
        .with("VirtualSystemTypesSupported", vec![TYPE_PV, TYPE_HVM])
        .with("SynchronousMethodsSupported", SYNCHRONOUS_METHODS.to_vec())
        .with("AsynchronousMethodsSupported", ASYNCHRONOUS_METHODS.to_vec())
        .with("IndicationsSupported", Vec::<u16>::new())
        .with("RequestedStatesSupported", Vec::<u16>::new())
        .with("ElementNameEditSupported", false)
        .with_path(names::vsmc_path())
}
