//! Resource pools (DSP1041): the host's processors (`ProcessorPool/0`) and memory
//! (`MemoryPool/0`), a disk pool per SR (`DiskPool/<sr-uuid>`) and a network pool per network
//! (`NetworkPool/<network-uuid>`); per pool its allocation capabilities (DSP1043, same InstanceID)
//! and four template settings, Default, Minimum, Maximum and Increment, that say what
//! DefineSystem and AddResourceSettings accept from the pool.

use wbem::cim::Instance;
use xenapi::datamodel::{class, network, sr, vdi, vif};
use xenapi::db::{Data, Row};
use xenapi::lifecycle::PowerState;

use crate::host::HostFacts;
use crate::names::{self, PoolId, Res, Template, ALLOC_CAPS};
use crate::settings::{DISK_UNITS, MEMORY_UNITS, MIB};
use crate::Ctx;

/// Every pool, in a stable order.
pub fn all(data: &Data) -> Vec<PoolId> {
    let mut pools = vec![PoolId::Proc, PoolId::Mem];
    pools.extend(data.rows(class::SR).map(|(_, r)| PoolId::Disk(r.str(sr::UUID).to_owned())));
    pools.extend(data.rows(class::network).map(|(_, r)| PoolId::Net(r.str(network::UUID).to_owned())));
    pools
}

pub fn exists(data: &Data, pool: &PoolId) -> bool {
    match pool {
        PoolId::Proc | PoolId::Mem => true,
        PoolId::Disk(u) => data.by_uuid(class::SR, u).is_some(),
        PoolId::Net(u) => data.by_uuid(class::network, u).is_some(),
    }
}

fn sr_row<'a>(data: &'a Data, uuid: &str) -> Option<(&'a String, &'a Row)> {
    let r = data.by_uuid(class::SR, uuid)?;
    Some((r, data.row(class::SR, r)?))
}

/// Bytes of disk the VDIs of an SR may grow to.
fn sr_allocated(data: &Data, sr_ref: &str) -> u64 {
    data.rows(class::VDI).filter(|(_, v)| v.str(vdi::SR) == sr_ref).map(|(_, v)| v.int(vdi::VIRTUAL_SIZE).max(0) as u64).sum()
}

/// The largest new disk an SR can take.
pub fn sr_free(data: &Data, uuid: &str) -> u64 {
    sr_row(data, uuid).map(|(r, row)| (row.int(sr::PHYSICAL_SIZE).max(0) as u64).saturating_sub(sr_allocated(data, r))).unwrap_or(0)
}

fn running_vcpus(data: &Data) -> u64 {
    data.rows(class::VM)
        .filter(|(_, r)| matches!(PowerState::of(r), PowerState::Running | PowerState::Paused))
        .map(|(_, r)| crate::settings::vcpus_now(data, r).max(0) as u64)
        .sum()
}

pub fn pool_instance(ctx: &Ctx, data: &Data, f: &HostFacts, pool: &PoolId) -> Option<Instance> {
    let res = pool.res();
    let id = pool.id();
    let mut i = Instance::new(res.pool_class())
        .with("InstanceID", id.as_str())
        .with("PoolID", id.as_str())
        .with("Primordial", true)
        .with("ResourceType", res.resource_type())
        .with("HealthState", 5u16)
        .with("OperationalStatus", vec![2u16]);
    match pool {
        PoolId::Proc => {
            i.set("ElementName", format!("Processors of {}", f.name));
            i.set("AllocationUnits", "count");
            i.set("Capacity", f.cpus);
            i.set("Reserved", running_vcpus(data));
        }
        PoolId::Mem => {
            i.set("ElementName", format!("Memory of {}", f.name));
            i.set("AllocationUnits", MEMORY_UNITS);
            i.set("Capacity", f.memory_total / MIB as u64);
            i.set("Reserved", f.memory_total.saturating_sub(f.memory_free) / MIB as u64);
        }
        PoolId::Disk(u) => {
            let (sr_ref, row) = sr_row(data, u)?;
            i.set("ElementName", row.str(sr::NAME_LABEL));
            i.set("Description", row.str(sr::NAME_DESCRIPTION));
            i.set("AllocationUnits", DISK_UNITS);
            i.set("Capacity", row.int(sr::PHYSICAL_SIZE).max(0) as u64);
            i.set("Reserved", sr_allocated(data, sr_ref));
            i.set("Type", row.str(sr::TYPE));
            if row.str(sr::TYPE) == "file" {
                i.set("Path", ctx.model.config.sr_dir(u).display().to_string());
            }
        }
        PoolId::Net(u) => {
            let net_ref = data.by_uuid(class::network, u)?;
            let row = data.row(class::network, net_ref)?;
            i.set("ElementName", row.str(network::NAME_LABEL));
            i.set("Description", row.str(network::NAME_DESCRIPTION));
            i.set("Bridge", row.str(network::BRIDGE));
            i.set("AllocationUnits", "count");
            i.set("Reserved", data.rows(class::VIF).filter(|(_, v)| v.str(vif::NETWORK) == net_ref.as_str()).count() as u64);
        }
    }
    Some(i.with_path(names::pool_path(pool)))
}

pub fn alloc_caps_instance(data: &Data, pool: &PoolId) -> Option<Instance> {
    if !exists(data, pool) {
        return None;
    }
    let res = pool.res();
    let hot_plug: Vec<u16> = if matches!(res, Res::Disk | Res::Net) { vec![2, 3] } else { vec![] };
    Some(
        Instance::new(ALLOC_CAPS)
            .with("InstanceID", pool.id())
            .with("ElementName", format!("Allocation capabilities of {}", pool.id()))
            .with("ResourceType", res.resource_type())
            .with("RequestTypesSupported", 3u16)
            .with("SharingMode", if matches!(res, Res::Proc | Res::Net) { 3u16 } else { 2u16 })
            .with("SupportedAddStates", hot_plug.clone())
            .with("SupportedRemoveStates", hot_plug)
            .with_path(names::alloc_caps_path(pool)),
    )
}

/// The smallest memory DefineSystem accepts, in MiB.
pub const MEMORY_MIN_MIB: u64 = 16;
pub const MEMORY_DEFAULT_MIB: u64 = 256;
pub const DISK_MIN: u64 = 1 << 20;
pub const DISK_DEFAULT: u64 = 8 << 30;

/// (Minimum, Maximum, Default, Increment) of a pool's VirtualQuantity, in the pool's units.
pub fn limits(data: &Data, f: &HostFacts, pool: &PoolId) -> (u64, u64, u64, u64) {
    match pool {
        PoolId::Proc => (1, f.cpus.max(1), 1, 1),
        PoolId::Mem => (MEMORY_MIN_MIB, (f.memory_total / MIB as u64).max(MEMORY_MIN_MIB), MEMORY_DEFAULT_MIB, 1),
        PoolId::Disk(u) => {
            let free = sr_free(data, u);
            (DISK_MIN, free.max(DISK_MIN), DISK_DEFAULT.min(free.max(DISK_MIN)), 1)
        }
        PoolId::Net(_) => (1, 1, 1, 1),
    }
}

pub fn template_instance(data: &Data, f: &HostFacts, pool: &PoolId, t: Template) -> Option<Instance> {
    if !exists(data, pool) {
        return None;
    }
    let (min, max, default, inc) = limits(data, f, pool);
    let quantity = match t {
        Template::Default => default,
        Template::Minimum => min,
        Template::Maximum => max,
        Template::Increment => inc,
    };
    let res = pool.res();
    let units = match res {
        Res::Mem => MEMORY_UNITS,
        Res::Disk => DISK_UNITS,
        _ => "count",
    };
    let mut i = Instance::new(res.rasd_class())
        .with("InstanceID", names::template_id(pool, t))
        .with("ElementName", format!("{} {} setting", pool.id(), t.name()))
        .with("ResourceType", res.resource_type())
        .with("PoolID", pool.id())
        .with("VirtualQuantity", quantity)
        .with("VirtualQuantityUnits", units)
        .with("AllocationUnits", if res == Res::Proc { "percent" } else { units });
    match res {
        Res::Mem => {
            i.set("Reservation", quantity);
            i.set("Limit", quantity);
        }
        Res::Proc => i.set("MaxVirtualQuantity", quantity),
        Res::Disk => i.set("EmulatedType", 0u16),
        Res::Net => {}
    }
    Some(i.with_path(names::template_path(pool, t)))
}
