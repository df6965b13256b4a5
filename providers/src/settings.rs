//! Settings (DSP1057, DSP1041 and the resource profiles): a VM's Xen_VirtualSystemSettingData and
//! its resource allocation settings, one per resource: processors (`<uuid>/proc`), memory
//! (`<uuid>/mem`), each disk (`<uuid>/<VBD device>`) and each network port (`<uuid>/<VIF MAC>`),
//! with DMTF programmatic units. The VM record is the one configuration there is: the settings
//! that define the VM are also the ones in effect, so SettingsDefineState and ElementSettingData
//! lead to the same instances.

use wbem::cim::Instance;
use xenapi::datamodel::{class, console, network, sr, vbd, vdi, vif, vm, vm_metrics, NULL_REF};
use xenapi::db::{Data, Row};
use xenapi::lifecycle::{device_name, PowerState};

use crate::names::{self, Dev, PoolId, Res};
use crate::util;

pub const MIB: i64 = 1 << 20;
/// Units of memory quantities.
pub const MEMORY_UNITS: &str = "byte*2^20";
/// Units of disk quantities: bytes, since disk sizes need not be whole mebibytes.
pub const DISK_UNITS: &str = "byte";
/// VirtualSystemType of paravirtualized and fully virtualized VMs.
pub const TYPE_PV: &str = "DMTF:Xen:PV";
pub const TYPE_HVM: &str = "DMTF:Xen:HVM";

/// HVM boot order letters (`HVM_boot_params:order`) and their BootDevices names.
pub const BOOT_DEVICES: [(char, &str); 4] = [('c', "hd"), ('d', "cdrom"), ('n', "network"), ('a', "floppy")];

pub fn is_hvm(row: &Row) -> bool {
    row.str(vm::DOMAIN_TYPE) == "hvm" || !row.str(vm::HVM_BOOT_POLICY).is_empty()
}

fn platform_flag(row: &Row, key: &str) -> Option<bool> {
    row.map_get(vm::PLATFORM, key).map(|v| matches!(v, "true" | "1"))
}

pub fn vssd_instance(data: &Data, row: &Row) -> Instance {
    let uuid = row.str(vm::UUID);
    let hvm = is_hvm(row);
    let mut i = Instance::new(names::VSSD)
        .with("InstanceID", names::vssd_id(uuid))
        .with("ElementName", row.str(vm::NAME_LABEL))
        .with("Description", row.str(vm::NAME_DESCRIPTION))
        .with("VirtualSystemIdentifier", uuid)
        .with("UUID", uuid)
        .with("VirtualSystemType", if hvm { TYPE_HVM } else { TYPE_PV })
        .with("IsFullVirt", hvm)
        .with("IsTemplate", row.bool(vm::IS_A_TEMPLATE))
        .with("ChangeableType", 2u16)
        .with("Bootloader", row.str(vm::PV_BOOTLOADER))
        .with("BootloaderArgs", row.str(vm::PV_BOOTLOADER_ARGS))
        .with("Kernel", row.str(vm::PV_KERNEL))
        .with("Ramdisk", row.str(vm::PV_RAMDISK))
        .with("CommandLine", row.str(vm::PV_ARGS))
        .with("ActionAfterShutdown", row.str(vm::ACTIONS_AFTER_SHUTDOWN))
        .with("ActionAfterReboot", row.str(vm::ACTIONS_AFTER_REBOOT))
        .with("ActionAfterCrash", row.str(vm::ACTIONS_AFTER_CRASH))
        .with("AutomaticRecoveryAction", if row.str(vm::ACTIONS_AFTER_CRASH).contains("restart") { 3u16 } else { 2u16 });
    if hvm {
        let order = row.map_get(vm::HVM_BOOT_PARAMS, "order").unwrap_or("");
        let devices: Vec<String> =
            order.chars().filter_map(|c| BOOT_DEVICES.iter().find(|(l, _)| *l == c).map(|(_, n)| (*n).to_owned())).collect();
        i.set("BootDevices", devices);
    }
    for (prop, key) in [("EnableACPI", "acpi"), ("EnableAPIC", "apic"), ("EnablePAE", "pae")] {
        if let Some(b) = platform_flag(row, key) {
            i.set(prop, b);
        }
    }
    if let Some(local) = platform_flag(row, "localtime") {
        i.set("ClockOffset", u16::from(local));
    }
    if let Some(dm) = row.map_get(vm::PLATFORM, "device_model") {
        i.set("Emulator", dm);
    }
    if let Some(t) = data.row(class::VM_metrics, row.str(vm::METRICS)).and_then(|m| util::timestamp(m.str(vm_metrics::INSTALL_TIME))) {
        i.set("CreationTime", t);
    }
    i.with_path(names::vssd_path(uuid))
}

/// The VBDs of a VM with their device names.
pub fn vbds<'a>(data: &'a Data, row: &Row) -> Vec<(String, &'a Row)> {
    row.strs(vm::VBDS).iter().filter_map(|r| data.row(class::VBD, r)).map(|b| (device_name(b), b)).collect()
}

pub fn vifs<'a>(data: &'a Data, row: &Row) -> Vec<&'a Row> {
    let mut v: Vec<&Row> = row.strs(vm::VIFS).iter().filter_map(|r| data.row(class::VIF, r)).collect();
    v.sort_by_key(|r| r.str(vif::DEVICE).parse::<u32>().unwrap_or(u32::MAX));
    v
}

pub fn find_vbd<'a>(data: &'a Data, row: &Row, device: &str) -> Option<&'a Row> {
    vbds(data, row).into_iter().find(|(d, _)| d == device).map(|(_, b)| b)
}

pub fn find_vif<'a>(data: &'a Data, row: &Row, mac: &str) -> Option<&'a Row> {
    vifs(data, row).into_iter().find(|v| v.str(vif::MAC).eq_ignore_ascii_case(mac))
}

/// The settings of a VM, in a stable order: processors, memory, disks, network ports.
pub fn rasd_devs(data: &Data, row: &Row) -> Vec<Dev> {
    let mut devs = vec![Dev::Proc(None), Dev::Mem];
    devs.extend(vbds(data, row).into_iter().map(|(d, _)| Dev::Disk(d)));
    devs.extend(vifs(data, row).into_iter().map(|v| Dev::Net(v.str(vif::MAC).to_ascii_lowercase())));
    devs
}

/// The number of vCPUs a VM has now: the live count while it has a domain, the boot count
/// otherwise.
pub fn vcpus_now(data: &Data, row: &Row) -> i64 {
    let live = matches!(PowerState::of(row), PowerState::Running | PowerState::Paused);
    let metric = data.row(class::VM_metrics, row.str(vm::METRICS)).map(|m| m.int(vm_metrics::VCPUS_NUMBER)).unwrap_or(0);
    if live && metric > 0 {
        metric
    } else {
        row.int(vm::VCPUS_AT_STARTUP)
    }
}

/// The pool a VBD's disk is drawn from: its VDI's SR.
pub fn disk_pool(data: &Data, vbd_row: &Row) -> Option<PoolId> {
    let vdi_row = data.row(class::VDI, vbd_row.str(vbd::VDI))?;
    data.row(class::SR, vdi_row.str(vdi::SR)).map(|s| PoolId::Disk(s.str(sr::UUID).to_owned()))
}

pub fn net_pool(data: &Data, vif_row: &Row) -> Option<PoolId> {
    data.row(class::network, vif_row.str(vif::NETWORK)).map(|n| PoolId::Net(n.str(network::UUID).to_owned()))
}

/// The pool a VM's device is allocated from.
pub fn pool_of(data: &Data, row: &Row, dev: &Dev) -> Option<PoolId> {
    match dev {
        Dev::Proc(_) => Some(PoolId::Proc),
        Dev::Mem => Some(PoolId::Mem),
        Dev::Disk(d) => disk_pool(data, find_vbd(data, row, d)?),
        Dev::Net(mac) => net_pool(data, find_vif(data, row, mac)?),
    }
}

fn base(res: Res, id: String, element_name: String) -> Instance {
    Instance::new(res.rasd_class())
        .with("InstanceID", id)
        .with("ElementName", element_name)
        .with("ResourceType", res.resource_type())
        .with("ConsumerVisibility", 3u16)
        .with("AutomaticAllocation", true)
        .with("AutomaticDeallocation", true)
        .with("ChangeableType", 2u16)
}

/// A VM's RASD; `None` when the device does not exist.
pub fn rasd_instance(data: &Data, row: &Row, dev: &Dev) -> Option<Instance> {
    let uuid = row.str(vm::UUID);
    let id = names::rasd_id(uuid, dev);
    let mut i = match dev {
        Dev::Proc(_) => {
            let mut i = base(Res::Proc, id, "Virtual processors".into())
                .with("PoolID", PoolId::Proc.id())
                .with("VirtualQuantity", row.int(vm::VCPUS_AT_STARTUP).max(0) as u64)
                .with("VirtualQuantityUnits", "count")
                .with("MaxVirtualQuantity", row.int(vm::VCPUS_MAX).max(0) as u64)
                .with("AllocationUnits", "percent");
            if let Some(w) = row.map_get(vm::VCPUS_PARAMS, "weight").and_then(|w| w.parse::<u32>().ok()) {
                i.set("Weight", w);
            }
            if let Some(cap) = row.map_get(vm::VCPUS_PARAMS, "cap").and_then(|c| c.parse::<u64>().ok()).filter(|c| *c > 0) {
                i.set("Limit", cap);
            }
            i
        }
        Dev::Mem => base(Res::Mem, id, "Memory".into())
            .with("PoolID", PoolId::Mem.id())
            .with("AllocationUnits", MEMORY_UNITS)
            .with("VirtualQuantityUnits", MEMORY_UNITS)
            .with("VirtualQuantity", (row.int(vm::MEMORY_DYNAMIC_MAX).max(0) / MIB) as u64)
            .with("Reservation", (row.int(vm::MEMORY_DYNAMIC_MIN).max(0) / MIB) as u64)
            .with("Limit", (row.int(vm::MEMORY_STATIC_MAX).max(0) / MIB) as u64),
        Dev::Disk(device) => {
            let b = find_vbd(data, row, device)?;
            let kind = b.str(vbd::TYPE);
            let (rt, emulated) = match kind {
                "CD" => (15u16, 1u16),
                "Floppy" => (14, 2),
                _ => (17, 0),
            };
            let ro = b.str(vbd::MODE) == "RO";
            let bus = if device.starts_with("hd") {
                "ide"
            } else if device.starts_with("sd") {
                "scsi"
            } else {
                "xen"
            };
            let mut i = base(Res::Disk, id, device.clone())
                .with("ResourceType", rt)
                .with("VirtualDevice", device.as_str())
                .with("AddressOnParent", b.str(vbd::USERDEVICE))
                .with("EmulatedType", emulated)
                .with("BusType", bus)
                .with("ReadOnly", ro)
                .with("Access", if ro { 1u16 } else { 3u16 })
                .with("Bootable", b.bool(vbd::BOOTABLE))
                .with("AllocationUnits", DISK_UNITS)
                .with("VirtualQuantityUnits", DISK_UNITS);
            if let Some(v) = data.row(class::VDI, b.str(vbd::VDI)).filter(|_| b.str(vbd::VDI) != NULL_REF) {
                let location = v.str(vdi::LOCATION);
                i.set("VirtualQuantity", v.int(vdi::VIRTUAL_SIZE).max(0) as u64);
                i.set("HostExtentName", v.str(vdi::UUID));
                i.set("HostResource", vec![location]);
                i.set("Address", location);
                if !v.str(vdi::NAME_LABEL).is_empty() {
                    i.set("ElementName", v.str(vdi::NAME_LABEL));
                }
            }
            if let Some(p) = disk_pool(data, b) {
                i.set("PoolID", p.id());
            }
            i
        }
        Dev::Net(mac) => {
            let v = find_vif(data, row, mac)?;
            let device = v.str(vif::DEVICE);
            let mut i = base(Res::Net, id, format!("vif{device}"))
                .with("Address", v.str(vif::MAC))
                .with("VirtualDevice", format!("vif{device}"))
                .with("AddressOnParent", device)
                .with("NetworkType", "bridge")
                .with("MTU", v.int(vif::MTU).max(0) as u32)
                .with("VirtualQuantity", 1u64)
                .with("VirtualQuantityUnits", "count");
            if let Some(n) = data.row(class::network, v.str(vif::NETWORK)) {
                i.set("PoolID", PoolId::Net(n.str(network::UUID).to_owned()).id());
                i.set("NetworkName", n.str(network::NAME_LABEL));
                i.set("Connection", vec![n.str(network::NAME_LABEL)]);
            }
            i
        }
    };
    i.path = Some(names::rasd_path(uuid, dev));
    Some(i)
}

/// A VM's text console, as the model has it while the VM has a domain: a read-only setting
/// (ResourceType 1, Other), part of the VM's settings but not drawn from a pool.
pub fn console_instance(data: &Data, row: &Row) -> Option<Instance> {
    let c = row.strs(vm::CONSOLES).iter().find_map(|r| data.row(class::console, r))?;
    let uuid = row.str(vm::UUID);
    Some(
        Instance::new(names::CONSOLE_RASD)
            .with("InstanceID", format!("{uuid}/console"))
            .with("ElementName", "Console")
            .with("ResourceType", 1u16)
            .with("OtherResourceType", "console")
            .with("Protocol", c.str(console::PROTOCOL))
            .with("Location", c.str(console::LOCATION))
            .with("ConsumerVisibility", 3u16)
            .with("ChangeableType", 3u16)
            .with_path(names::console_rasd_path(uuid)),
    )
}
