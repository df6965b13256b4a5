//! Profile registration (DSP1033): the profiles are static instances in
//! `mof/xen/Xen_RegisteredProfiles.mof` (with their CIM_ReferencedProfile links); here each
//! gets its conformant elements, computed from the model when asked, so that both discovery
//! methodologies work: central class (every profile leads to its central instances) and scoping
//! class (a component profile leads to System Virtualization, which leads to the host).

use std::sync::Arc;

use wbem::cim::ObjectPath;
use wbem::interop::ProfileRegistry;
use xenapi::datamodel::{class, vm};

use crate::names::{self, PoolId, Res};
use crate::system::is_system;
use crate::{host, pools, Ctx};

pub const SYSTEM_VIRTUALIZATION: &str = "CIM:DSP1042-SystemVirtualization-1.0.0";
pub const VIRTUAL_SYSTEM: &str = "CIM:DSP1057-VirtualSystem-1.0.0";
pub const RESOURCE_ALLOCATION: &str = "CIM:DSP1041-ResourceAllocation-1.1.0";
pub const ALLOCATION_CAPABILITIES: &str = "CIM:DSP1043-AllocationCapabilities-1.0.0";
pub const PROCESSOR: &str = "CIM:DSP1044-ProcessorResourceVirtualization-1.0.0";
pub const MEMORY: &str = "CIM:DSP1045-MemoryResourceVirtualization-1.0.0";
pub const STORAGE: &str = "CIM:DSP1047-StorageResourceVirtualization-1.0.0";
pub const ETHERNET: &str = "CIM:DSP1050-EthernetPortResourceVirtualization-1.0.0";

/// The profiles and what conforms to each (its central class).
pub const PROFILES: [(&str, &str); 8] = [
    (SYSTEM_VIRTUALIZATION, "the host (Xen_HostSystem)"),
    (VIRTUAL_SYSTEM, "every virtual system (Xen_ComputerSystem)"),
    (RESOURCE_ALLOCATION, "every resource pool"),
    (ALLOCATION_CAPABILITIES, "every Xen_AllocationCapabilities"),
    (PROCESSOR, "Xen_ProcessorPool"),
    (MEMORY, "Xen_MemoryPool"),
    (STORAGE, "every Xen_DiskPool"),
    (ETHERNET, "every Xen_NetworkPool"),
];

fn pools_where(ctx: &Ctx, keep: impl Fn(&PoolId) -> bool, path: fn(&PoolId) -> ObjectPath) -> Vec<ObjectPath> {
    pools::all(&ctx.model.db.read()).iter().filter(|p| keep(p)).map(path).collect()
}

pub fn register(profiles: &ProfileRegistry, ctx: Arc<Ctx>) {
    let c = ctx.clone();
    profiles.add_conformance(SYSTEM_VIRTUALIZATION, move || vec![names::host_path(&host::facts(&c, &c.model.db.read()).name)]);
    let c = ctx.clone();
    profiles.add_conformance(VIRTUAL_SYSTEM, move || {
        let data = c.model.db.read();
        data.rows(class::VM).filter(|(_, r)| is_system(r)).map(|(_, r)| names::vm_path(r.str(vm::UUID))).collect()
    });
    let c = ctx.clone();
    profiles.add_conformance(RESOURCE_ALLOCATION, move || pools_where(&c, |_| true, names::pool_path));
    let c = ctx.clone();
    profiles.add_conformance(ALLOCATION_CAPABILITIES, move || pools_where(&c, |_| true, names::alloc_caps_path));
    for (id, res) in [(PROCESSOR, Res::Proc), (MEMORY, Res::Mem), (STORAGE, Res::Disk), (ETHERNET, Res::Net)] {
        let c = ctx.clone();
        profiles.add_conformance(id, move || pools_where(&c, |p| p.res() == res, names::pool_path));
    }
}
