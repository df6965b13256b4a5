//! The QEMU command line of a domain, built from its record.
//!
//! Devices are given as JSON (`-blockdev`, `-device`, `-netdev` accept it), so that paths and
//! names need no escaping; only `-name` and `-chardev` take QEMU's key=value syntax, where a
//! comma in a value is written twice. Every PCI device sits at an address the record fixes,
//! so that hot-plug, adoption and resume from a suspend image all see the same machine.

use super::config::Accel;
use super::state::{DiskKindRec, DiskRec, DomainRecord, NetBackend, NicRec};
use serde_json::{json, Value};
use std::path::Path;

const MIB: u64 = 1 << 20;

/// PCI slot of the balloon device; disks and NICs take slots from [`FIRST_DEVICE_SLOT`] on.
pub const BALLOON_SLOT: u8 = 3;
pub const FIRST_DEVICE_SLOT: u8 = 4;
pub const LAST_DEVICE_SLOT: u8 = 31;

/// Where a domain's runtime files are, as QEMU must be told.
#[derive(Clone, Debug)]
pub struct Paths<'a> {
    /// Relative to the domain's directory, which is QEMU's working directory at start: unix
    /// socket paths are limited to 107 bytes, and state directories can be deep.
    pub qmp_socket: &'a str,
    pub pidfile: &'a Path,
    pub console_log: &'a Path,
}

#[derive(Clone, Debug)]
pub struct Launch<'a> {
    pub record: &'a DomainRecord,
    pub paths: Paths<'a>,
    pub tcg_tb_size_mib: u64,
    /// Start waiting for an incoming migration (`-incoming defer`) instead of booting.
    pub incoming: bool,
}

/// QEMU's key=value option syntax doubles commas inside values.
pub fn escape(value: &str) -> String {
    value.replace(',', ",,")
}

fn json_arg(v: Value) -> String {
    v.to_string()
}

pub fn memory_mib(bytes: u64) -> u64 {
    bytes.div_ceil(MIB)
}

fn pci_addr(slot: u8) -> String {
    format!("{slot:#x}")
}

/// `-blockdev` arguments (protocol node, then format node) of a disk with an image.
pub fn blockdevs(disk: &DiskRec) -> Vec<Value> {
    let Some(path) = &disk.path else { return Vec::new() };
    // A CD or floppy is read-only whatever the VBD says; QEMU refuses a writable CD.
    let read_only = disk.read_only || disk.kind != DiskKindRec::Disk;
    let mut file = json!({
        "driver": "file",
        "node-name": disk.file_node(),
        "filename": path.to_string_lossy(),
        "read-only": read_only,
    });
    if !read_only {
        file["discard"] = json!("unmap");
    }
    let format = json!({
        "driver": disk.format(),
        "node-name": disk.format_node(),
        "file": disk.file_node(),
        "read-only": read_only,
    });
    vec![file, format]
}

/// The `-device`/`device_add` arguments of a disk; `bootindex` for bootable disks at start.
pub fn disk_device(disk: &DiskRec, bootindex: Option<u32>) -> Value {
    let mut dev = match disk.kind {
        DiskKindRec::Disk => json!({
            "driver": "virtio-blk-pci",
            "id": disk.id(),
            "bus": "pci.0",
            "addr": pci_addr(disk.slot),
        }),
        DiskKindRec::Cdrom => json!({
            "driver": "ide-cd",
            "id": disk.id(),
            "bus": format!("ide.{}", disk.slot / 2),
            "unit": disk.slot % 2,
        }),
        DiskKindRec::Floppy => json!({
            "driver": "floppy",
            "id": disk.id(),
            "unit": disk.slot,
        }),
    };
    if disk.path.is_some() {
        dev["drive"] = json!(disk.format_node());
    }
    if let Some(index) = bootindex {
        dev["bootindex"] = json!(index);
    }
    dev
}

pub fn netdev(nic: &NicRec) -> Value {
    match &nic.backend {
        NetBackend::User => json!({"type": "user", "id": nic.netdev()}),
        NetBackend::Bridge { bridge } => json!({"type": "bridge", "id": nic.netdev(), "br": bridge}),
    }
}

pub fn nic_device(nic: &NicRec) -> Value {
    let mut dev = json!({
        "driver": "virtio-net-pci",
        "id": nic.id(),
        "netdev": nic.netdev(),
        "bus": "pci.0",
        "addr": pci_addr(nic.slot),
    });
    if !nic.mac.is_empty() {
        dev["mac"] = json!(nic.mac);
    }
    if nic.mtu != 1500 {
        dev["host_mtu"] = json!(nic.mtu);
    }
    dev
}

/// The arguments after the binary's name.
pub fn build(launch: &Launch) -> Vec<String> {
    let r = launch.record;
    let mut args: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
    push(&["-name", &format!("guest={},debug-threads=on", escape(&r.name))]);
    push(&["-uuid", &r.uuid.to_string()]);
    push(&["-machine", &escape(&r.machine)]);
    match r.accel {
        Accel::Tcg => push(&["-accel", &format!("tcg,tb-size={}", launch.tcg_tb_size_mib)]),
        Accel::Kvm => push(&["-accel", "kvm"]),
    }
    match (&r.cpu_model, r.accel) {
        (Some(model), _) => push(&["-cpu", &escape(model)]),
        (None, Accel::Kvm) => push(&["-cpu", "host"]),
        (None, Accel::Tcg) => {}
    }
    push(&["-m", &format!("{}M", memory_mib(r.memory_static_max))]);
    // One socket per vCPU: hot-plug then adds whole sockets, which every guest understands.
    push(&["-smp", &format!("cpus={},maxcpus={},sockets={},cores=1,threads=1", r.boot_vcpus, r.vcpus_max, r.vcpus_max)]);
    push(&["-nodefaults", "-no-user-config", "-display", "none"]);
    // A guest reboot ends the process, as a poweroff does, so that the model sees it and applies
    // actions_after_reboot; a kernel panic ends it too (pvpanic tells QEMU).
    push(&["-action", "reboot=shutdown,panic=shutdown"]);
    push(&["-msg", "timestamp=on"]);
    push(&["-chardev", &format!("file,id=console0,path={},append=on", escape(&launch.paths.console_log.to_string_lossy()))]);
    push(&["-serial", "chardev:console0"]);
    push(&["-qmp", &format!("unix:{},server=on,wait=off", escape(launch.paths.qmp_socket))]);
    push(&["-pidfile", &launch.paths.pidfile.to_string_lossy()]);
    push(&[
        "-device",
        &json_arg(json!({"driver": "virtio-balloon-pci", "id": "balloon0", "bus": "pci.0", "addr": pci_addr(BALLOON_SLOT)})),
    ]);
    push(&["-device", "pvpanic"]);
    if let Some(kernel) = &r.kernel {
        push(&["-kernel", &kernel.to_string_lossy()]);
        if let Some(ramdisk) = &r.ramdisk {
            push(&["-initrd", &ramdisk.to_string_lossy()]);
        }
        if !r.cmdline.is_empty() {
            push(&["-append", &r.cmdline]);
        }
    }
    let mut bootindex = 0;
    for disk in &r.disks {
        for node in blockdevs(disk) {
            push(&["-blockdev", &json_arg(node)]);
        }
        let index = (disk.bootable && r.kernel.is_none()).then(|| {
            bootindex += 1;
            bootindex - 1
        });
        push(&["-device", &json_arg(disk_device(disk, index))]);
    }
    for nic in &r.nics {
        push(&["-netdev", &json_arg(netdev(nic))]);
        push(&["-device", &json_arg(nic_device(nic))]);
    }
    for cpu in &r.hotplugged_cpus {
        push(&[
            "-device",
            &json_arg(json!({
                "driver": cpu.driver,
                "id": cpu.id,
                "socket-id": cpu.socket_id,
                "core-id": cpu.core_id,
                "thread-id": cpu.thread_id,
            })),
        ]);
    }
    // Always created stopped: the backend sets the balloon and learns the vCPU threads before
    // the guest runs, then continues it unless a paused start was asked for.
    push(&["-S"]);
    if launch.incoming {
        push(&["-incoming", "defer"]);
    }
    args
}

/// The first free PCI slot for a hot-plugged or newly added device.
pub fn free_pci_slot(record: &DomainRecord) -> Option<u8> {
    (FIRST_DEVICE_SLOT..=LAST_DEVICE_SLOT).find(|slot| {
        !record.disks.iter().any(|d| d.kind == DiskKindRec::Disk && d.slot == *slot) && !record.nics.iter().any(|n| n.slot == *slot)
    })
}

/// The IDE position (bus * 2 + unit) a CD drive named `device` asks for: `hda`..`hdd` name
/// their positions, anything else takes the first free one.
pub fn ide_position(record: &DomainRecord, device: &str) -> Option<u8> {
    let taken = |pos: u8| record.disks.iter().any(|d| d.kind == DiskKindRec::Cdrom && d.slot == pos);
    if let Some(letter) = device.strip_prefix("hd").filter(|l| l.len() == 1).and_then(|l| l.bytes().next()) {
        if (b'a'..=b'd').contains(&letter) && !taken(letter - b'a') {
            return Some(letter - b'a');
        }
    }
    (0..4).find(|pos| !taken(*pos))
}

pub fn floppy_unit(record: &DomainRecord) -> Option<u8> {
    (0..2).find(|unit| !record.disks.iter().any(|d| d.kind == DiskKindRec::Floppy && d.slot == *unit))
}
