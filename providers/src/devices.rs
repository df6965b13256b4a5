//! Logical devices of a VM: one Xen_Processor per vCPU (`<uuid>/0`, `<uuid>/1`, ...), one
//! Xen_Memory (`<uuid>/mem`), a Xen_LogicalDisk per VBD (`<uuid>/<device>`) and a
//! Xen_NetworkPort per VIF (`<uuid>/<MAC>`). A device of a VM without a domain exists (the VM is
//! defined) but is Disabled; a device that is not plugged into a running VM is Disabled too.

use wbem::cim::Instance;
use xenapi::datamodel::{class, vbd, vdi, vif, vm, vm_metrics};
use xenapi::db::{Data, Row};
use xenapi::lifecycle::PowerState;

use crate::names::{self, Dev, CS};
use crate::settings::{self, MIB};

/// The devices of a VM in a stable order.
pub fn device_devs(data: &Data, row: &Row) -> Vec<Dev> {
    let mut devs: Vec<Dev> = (0..settings::vcpus_now(data, row).max(0) as u32).map(|n| Dev::Proc(Some(n))).collect();
    devs.push(Dev::Mem);
    devs.extend(settings::vbds(data, row).into_iter().map(|(d, _)| Dev::Disk(d)));
    devs.extend(settings::vifs(data, row).into_iter().map(|v| Dev::Net(v.str(vif::MAC).to_ascii_lowercase())));
    devs
}

/// EnabledState of a device from its VM's state and, for disks and ports, whether it is plugged.
fn device_state(row: &Row, plugged: bool) -> u16 {
    match PowerState::of(row) {
        PowerState::Running if plugged => 2,
        PowerState::Paused if plugged => 9,
        PowerState::Suspended => 6,
        _ => 3,
    }
}

pub fn device_instance(data: &Data, row: &Row, dev: &Dev) -> Option<Instance> {
    let uuid = row.str(vm::UUID);
    let class = dev.res().device_class();
    let mut i = Instance::new(class)
        .with("CreationClassName", class)
        .with("DeviceID", names::rasd_id(uuid, dev))
        .with("SystemCreationClassName", CS)
        .with("SystemName", uuid)
        .with("RequestedState", 12u16)
        .with("HealthState", 5u16)
        .with("OperationalStatus", vec![2u16]);
    let state = match dev {
        Dev::Proc(n) => {
            let n = (*n)?;
            if i64::from(n) >= settings::vcpus_now(data, row) {
                return None;
            }
            let state = device_state(row, true);
            i.set("ElementName", format!("vCPU {n}"));
            i.set("Name", format!("vCPU {n}"));
            i.set("Role", "Central Processor");
            i.set("CPUStatus", if state == 2 { 1u16 } else { 0u16 });
            state
        }
        Dev::Mem => {
            let live = matches!(PowerState::of(row), PowerState::Running | PowerState::Paused);
            let actual = data.row(class::VM_metrics, row.str(vm::METRICS)).map(|m| m.int(vm_metrics::MEMORY_ACTUAL)).unwrap_or(0);
            let bytes = if live && actual > 0 { actual } else { row.int(vm::MEMORY_DYNAMIC_MAX) };
            let blocks = (bytes.max(0) / MIB) as u64;
            i.set("ElementName", "Memory");
            i.set("Name", "Memory");
            i.set("BlockSize", MIB as u64);
            i.set("NumberOfBlocks", blocks);
            i.set("ConsumableBlocks", blocks);
            i.set("Volatile", true);
            i.set("Access", 3u16);
            device_state(row, true)
        }
        Dev::Disk(device) => {
            let b = settings::find_vbd(data, row, device)?;
            let size = data.row(class::VDI, b.str(vbd::VDI)).map(|v| v.int(vdi::VIRTUAL_SIZE)).unwrap_or(0).max(0) as u64;
            i.set("ElementName", device.as_str());
            i.set("Name", device.as_str());
            i.set("BlockSize", 512u64);
            i.set("NumberOfBlocks", size / 512);
            i.set("ConsumableBlocks", size / 512);
            i.set("Access", if b.str(vbd::MODE) == "RO" { 1u16 } else { 3u16 });
            device_state(row, b.bool(vbd::CURRENTLY_ATTACHED))
        }
        Dev::Net(mac) => {
            let v = settings::find_vif(data, row, mac)?;
            let name = format!("vif{}", v.str(vif::DEVICE));
            i.set("ElementName", name.as_str());
            i.set("Name", name.as_str());
            i.set("PermanentAddress", v.str(vif::MAC).replace(':', "").to_ascii_uppercase());
            i.set("NetworkAddresses", vec![v.str(vif::MAC)]);
            i.set("LinkTechnology", 2u16);
            i.set("PortNumber", v.str(vif::DEVICE).parse::<u16>().unwrap_or(0));
            i.set("ActiveMaximumTransmissionUnit", v.int(vif::MTU).max(0) as u64);
            device_state(row, v.bool(vif::CURRENTLY_ATTACHED))
        }
    };
    i.set("EnabledState", state);
    i.path = Some(names::device_path(uuid, dev));
    Some(i)
}
