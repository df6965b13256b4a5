//! The settings clients send to the management service, read and checked before anything
//! changes: an embedded VSSD becomes a [`SystemPatch`], an embedded RASD a [`ResIn`]. Every problem
//! is CIM_ERR_INVALID_PARAMETER naming the parameter, the instance and the property.

use wbem::cim::{CimError, CimValue, Instance};
use xenapi::datamodel::{class, network, pool, sr, vdi};
use xenapi::db::Data;

use crate::host::HostFacts;
use crate::names::{PoolId, Res, NS};
use crate::pools;
use crate::settings::{BOOT_DEVICES, DISK_UNITS, MEMORY_UNITS, MIB};
use crate::util::{self, boolean, has, invalid, text, texts, uint};
use wbem::mof::Repository;

/// The embedded instance of a parameter value. The dispatcher decodes CIM-XML and MOF text that
/// starts as such; text it left alone (MOF after a comment or with instance qualifiers, CIM-XML
/// after an XML declaration) is decoded here. Anything else is not an embedded instance.
pub fn embedded(repo: &Repository, value: &CimValue, what: &str) -> Result<Instance, CimError> {
    match value {
        CimValue::Instance(i) => Ok((**i).clone()),
        CimValue::String(s) => {
            let lower = s.to_ascii_lowercase();
            if lower.contains("<instance") {
                return match wbem::cimxml::decode_embedded_object(s.trim_start()) {
                    Ok(wbem::cimxml::CimObject::Instance(i)) => Ok(i),
                    Ok(_) => Err(CimError::invalid_parameter(format!("{what} is a class, not an instance"))),
                    Err(e) => Err(CimError::invalid_parameter(format!("{what}: embedded CIM-XML instance: {}", e.description))),
                };
            }
            if lower.contains("instance of") {
                let mut list =
                    repo.parse_instances(NS, s).map_err(|e| CimError::invalid_parameter(format!("{what}: embedded MOF instance: {e}")))?;
                return match list.len() {
                    1 => Ok(list.remove(0)),
                    n => Err(CimError::invalid_parameter(format!("{what}: an embedded MOF text must declare one instance, not {n}"))),
                };
            }
            Err(CimError::invalid_parameter(format!(
                "{what} is not an embedded instance (CIM-XML INSTANCE or MOF 'instance of' text): '{}'",
                s.chars().take(60).collect::<String>()
            )))
        }
        other => Err(CimError::invalid_parameter(format!("{what} is not an embedded instance but a {}", other.cim_type()))),
    }
}

/// The instances of an array parameter of embedded instances.
pub fn embedded_list(repo: &Repository, value: Option<&CimValue>, param: &str) -> Result<Vec<Instance>, CimError> {
    match value {
        None => Ok(Vec::new()),
        Some(CimValue::Array(a)) => a
            .elements()
            .iter()
            .enumerate()
            .map(|(n, e)| match e {
                Some(v) => embedded(repo, v, &format!("{param}[{n}]")),
                None => Err(CimError::invalid_parameter(format!("{param}[{n}] is NULL"))),
            })
            .collect(),
        Some(v) => Ok(vec![embedded(repo, v, param)?]),
    }
}

/// Changes to a VM's settings from an embedded VSSD: `None` leaves a setting as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub uuid: Option<String>,
    pub hvm: Option<bool>,
    pub kernel: Option<String>,
    pub ramdisk: Option<String>,
    pub cmdline: Option<String>,
    pub bootloader: Option<String>,
    pub bootloader_args: Option<String>,
    /// HVM boot order letters.
    pub boot_order: Option<String>,
    /// Platform flags: (key, value).
    pub platform: Vec<(&'static str, String)>,
    pub on_shutdown: Option<String>,
    pub on_reboot: Option<String>,
    pub on_crash: Option<String>,
}

fn one_of(value: String, allowed: &[&str], context: &str, property: &str) -> Result<String, CimError> {
    if allowed.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(invalid(context, property, format!("'{value}' is not one of {}", allowed.join(", "))))
    }
}

pub fn system_patch(i: &Instance, context: &str) -> Result<SystemPatch, CimError> {
    let mut p = SystemPatch { name: text(i, "ElementName"), description: text(i, "Description"), ..SystemPatch::default() };
    for prop in ["UUID", "VirtualSystemIdentifier"] {
        if let Some(u) = text(i, prop) {
            match uuid::Uuid::parse_str(&u) {
                Ok(u) => p.uuid = Some(u.to_string()),
                Err(_) if prop == "UUID" => return Err(invalid(context, prop, format!("'{u}' is not a uuid"))),
                // Other implementations put the VM's name here; only a uuid means something to us.
                Err(_) => {}
            }
        }
    }
    if let Some(t) = text(i, "VirtualSystemType") {
        let lower = t.to_ascii_lowercase();
        p.hvm = Some(if lower.ends_with("hvm") {
            true
        } else if lower.ends_with("pv") || lower == "xen" {
            false
        } else {
            return Err(invalid(context, "VirtualSystemType", format!("'{t}' is not supported; use DMTF:Xen:PV or DMTF:Xen:HVM")));
        });
    }
    if let Some(full) = boolean(i, "IsFullVirt", context)? {
        if p.hvm.is_some_and(|h| h != full) {
            return Err(invalid(context, "IsFullVirt", "contradicts VirtualSystemType"));
        }
        p.hvm = Some(full);
    }
    p.kernel = text(i, "Kernel");
    p.ramdisk = text(i, "Ramdisk");
    p.cmdline = text(i, "CommandLine");
    p.bootloader = text(i, "Bootloader");
    p.bootloader_args = text(i, "BootloaderArgs");
    if has(i, "BootDevices") {
        let mut order = String::new();
        for d in texts(i, "BootDevices") {
            let Some((letter, _)) = BOOT_DEVICES.iter().find(|(_, n)| n.eq_ignore_ascii_case(&d)) else {
                let names: Vec<&str> = BOOT_DEVICES.iter().map(|(_, n)| *n).collect();
                return Err(invalid(context, "BootDevices", format!("'{d}' is not one of {}", names.join(", "))));
            };
            order.push(*letter);
        }
        p.boot_order = Some(order);
    }
    for (prop, key) in [("EnableACPI", "acpi"), ("EnableAPIC", "apic"), ("EnablePAE", "pae")] {
        if let Some(b) = boolean(i, prop, context)? {
            p.platform.push((key, b.to_string()));
        }
    }
    match uint(i, "ClockOffset", context)? {
        None => {}
        Some(n @ (0 | 1)) => p.platform.push(("localtime", (n == 1).to_string())),
        Some(n) => return Err(invalid(context, "ClockOffset", format!("{n} is neither 0 (UTC) nor 1 (local time)"))),
    }
    if let Some(e) = text(i, "Emulator") {
        p.platform.push(("device_model", e));
    }
    let normal = xenapi::datamodel::enum_values("on_normal_exit").unwrap_or(&["destroy", "restart"]);
    let crash = xenapi::datamodel::enum_values("on_crash_behaviour").unwrap_or(&["destroy", "restart"]);
    p.on_shutdown = text(i, "ActionAfterShutdown").map(|v| one_of(v, normal, context, "ActionAfterShutdown")).transpose()?;
    p.on_reboot = text(i, "ActionAfterReboot").map(|v| one_of(v, normal, context, "ActionAfterReboot")).transpose()?;
    p.on_crash = text(i, "ActionAfterCrash").map(|v| one_of(v, crash, context, "ActionAfterCrash")).transpose()?;
    if p.on_crash.is_none() {
        p.on_crash = match uint(i, "AutomaticRecoveryAction", context)? {
            None => None,
            Some(2) => Some("destroy".into()),
            Some(3) => Some("restart".into()),
            Some(n) => return Err(invalid(context, "AutomaticRecoveryAction", format!("{n} is not supported (2 None, 3 Restart)"))),
        };
    }
    Ok(p)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskKind {
    Disk,
    Cd,
    Floppy,
}

impl DiskKind {
    /// VBD.type.
    pub fn vbd_type(self) -> &'static str {
        match self {
            DiskKind::Disk => "Disk",
            DiskKind::Cd => "CD",
            DiskKind::Floppy => "Floppy",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum DiskSource {
    /// A new disk image of `size` bytes in the SR.
    New { sr_ref: String, size: u64, name: String },
    /// A disk image the model knows.
    Existing(String),
    /// A drive without media.
    Empty,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcIn {
    pub vcpus: Option<u64>,
    pub max: Option<u64>,
    pub weight: Option<u32>,
    pub cap: Option<u64>,
}

/// Memory quantities in bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemIn {
    pub quantity: Option<u64>,
    pub reservation: Option<u64>,
    pub limit: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DiskIn {
    pub kind: DiskKind,
    pub source: DiskSource,
    /// The device name (`xvdb`) and the slot it means.
    pub device: Option<(String, u32)>,
    pub read_only: bool,
    pub bootable: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NetIn {
    pub network_ref: String,
    pub mac: Option<String>,
    pub device: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ResIn {
    Proc(ProcIn),
    Mem(MemIn),
    Disk(DiskIn),
    Net(NetIn),
}

/// The resource a RASD is about: from ResourceType, or from the Xen_ class when the client left
/// ResourceType out; the two must agree.
pub fn resource_of(i: &Instance, context: &str) -> Result<(Res, DiskKind), CimError> {
    let by_class = Res::from_rasd_class(&i.class_name);
    let by_type = match uint(i, "ResourceType", context)? {
        None => None,
        Some(3) => Some((Res::Proc, DiskKind::Disk)),
        Some(4) => Some((Res::Mem, DiskKind::Disk)),
        Some(17 | 19 | 31) => Some((Res::Disk, DiskKind::Disk)),
        Some(15 | 16) => Some((Res::Disk, DiskKind::Cd)),
        Some(14) => Some((Res::Disk, DiskKind::Floppy)),
        Some(10 | 33) => Some((Res::Net, DiskKind::Disk)),
        Some(n) => {
            return Err(invalid(
                context,
                "ResourceType",
                format!("{n} is not supported (3 processor, 4 memory, 17/31 disk, 15/16 CD/DVD, 14 floppy, 10 Ethernet)"),
            ))
        }
    };
    let (res, mut kind) = match (by_type, by_class) {
        (Some(t), Some(c)) if t.0 != c => {
            return Err(invalid(context, "ResourceType", format!("does not fit the class {}", i.class_name)));
        }
        (Some(t), _) => t,
        (None, Some(c)) => (c, DiskKind::Disk),
        (None, None) => return Err(invalid(context, "ResourceType", "is required")),
    };
    if res == Res::Disk && kind == DiskKind::Disk {
        kind = match uint(i, "EmulatedType", context)? {
            None | Some(0) => DiskKind::Disk,
            Some(1) => DiskKind::Cd,
            Some(2) => DiskKind::Floppy,
            Some(n) => return Err(invalid(context, "EmulatedType", format!("{n} is not 0 (disk), 1 (CD-ROM) or 2 (floppy)"))),
        };
    }
    Ok((res, kind))
}

/// Byte multiplier of a units property, `default` when absent.
fn units(i: &Instance, property: &str, default: &str, context: &str) -> Result<u64, CimError> {
    let u = text(i, property).filter(|u| !u.eq_ignore_ascii_case("count")).unwrap_or_else(|| default.to_owned());
    util::byte_units(&u).ok_or_else(|| invalid(context, property, format!("'{u}' is not a unit of bytes (such as byte*2^20)")))
}

fn scaled(i: &Instance, property: &str, multiplier: u64, context: &str) -> Result<Option<u64>, CimError> {
    match uint(i, property, context)? {
        None => Ok(None),
        Some(n) => n.checked_mul(multiplier).map(Some).ok_or_else(|| invalid(context, property, "is too large")),
    }
}

/// The VirtualQuantity of a byte resource, in bytes: in VirtualQuantityUnits, or AllocationUnits
/// for clients of schemas before VirtualQuantityUnits, or the default units.
fn byte_quantity(i: &Instance, default: &str, context: &str) -> Result<Option<u64>, CimError> {
    let vq_units = if text(i, "VirtualQuantityUnits").is_some_and(|u| !u.eq_ignore_ascii_case("count")) {
        units(i, "VirtualQuantityUnits", default, context)?
    } else {
        units(i, "AllocationUnits", default, context)?
    };
    scaled(i, "VirtualQuantity", vq_units, context)
}

fn proc_in(i: &Instance, context: &str) -> Result<ProcIn, CimError> {
    if let Some(u) = text(i, "VirtualQuantityUnits").filter(|u| !u.eq_ignore_ascii_case("count")) {
        return Err(invalid(context, "VirtualQuantityUnits", format!("'{u}' is not 'count' (processors are counted)")));
    }
    let p = ProcIn {
        vcpus: uint(i, "VirtualQuantity", context)?,
        max: uint(i, "MaxVirtualQuantity", context)?,
        weight: uint(i, "Weight", context)?
            .map(|w| u32::try_from(w).map_err(|_| invalid(context, "Weight", "is too large")))
            .transpose()?,
        cap: uint(i, "Limit", context)?,
    };
    if p.vcpus == Some(0) {
        return Err(invalid(context, "VirtualQuantity", "must be at least 1"));
    }
    Ok(p)
}

fn mem_in(i: &Instance, context: &str) -> Result<MemIn, CimError> {
    let alloc = units(i, "AllocationUnits", MEMORY_UNITS, context)?;
    let m = MemIn {
        quantity: byte_quantity(i, MEMORY_UNITS, context)?,
        reservation: scaled(i, "Reservation", alloc, context)?,
        limit: scaled(i, "Limit", alloc, context)?,
    };
    if m.quantity == Some(0) {
        return Err(invalid(context, "VirtualQuantity", "must not be 0"));
    }
    Ok(m)
}

/// `xvdb`, `hdc`, `sda` or a slot number: the device name and its slot.
pub fn parse_device(d: &str) -> Option<(String, u32)> {
    if let Ok(n) = d.parse::<u32>() {
        return (n < 16).then(|| (format!("xvd{}", char::from(b'a' + n as u8)), n));
    }
    let letter = ["xvd", "hd", "sd"].iter().find_map(|p| d.strip_prefix(p))?;
    let mut chars = letter.chars();
    match (chars.next(), chars.next()) {
        (Some(c @ 'a'..='p'), None) => Some((d.to_owned(), c as u32 - 'a' as u32)),
        _ => None,
    }
}

/// The VDI a path, uuid or VDI uuid names.
fn find_vdi(data: &Data, name: &str) -> Option<String> {
    if let Some(r) = data.by_uuid(class::VDI, name) {
        return Some(r.clone());
    }
    data.rows(class::VDI).find(|(_, v)| v.str(vdi::LOCATION) == name).map(|(r, _)| r.clone())
}

fn default_sr(data: &Data) -> Option<String> {
    data.rows(class::pool).next().map(|(_, p)| p.str(pool::DEFAULT_SR).to_owned()).filter(|r| data.row(class::SR, r).is_some())
}

fn disk_in(data: &Data, f: &HostFacts, i: &Instance, kind: DiskKind, context: &str) -> Result<DiskIn, CimError> {
    let device = match text(i, "VirtualDevice").or_else(|| text(i, "AddressOnParent")) {
        None => None,
        Some(d) => Some(
            parse_device(&d)
                .ok_or_else(|| invalid(context, "VirtualDevice", format!("'{d}' is not a device such as xvdb, hdc or a slot 0-15")))?,
        ),
    };
    let read_only = boolean(i, "ReadOnly", context)?.unwrap_or(false) || uint(i, "Access", context)? == Some(1) || kind == DiskKind::Cd;
    let mut source = None;
    if let Some(u) = text(i, "HostExtentName") {
        source = Some(DiskSource::Existing(
            find_vdi(data, &u).ok_or_else(|| invalid(context, "HostExtentName", format!("'{u}' is no disk image of this host")))?,
        ));
    }
    for prop in ["HostResource", "Address"] {
        if source.is_some() {
            break;
        }
        if let Some(name) = texts(i, prop).into_iter().next().filter(|s| !s.is_empty()) {
            let found = find_vdi(data, &name).ok_or_else(|| {
                invalid(
                    context,
                    prop,
                    format!("'{name}' is no disk image of this host (a pool-admin can register a file with VDI.introduce)"),
                )
            })?;
            source = Some(DiskSource::Existing(found));
        }
    }
    let source = match source {
        Some(s) => s,
        None => match byte_quantity(i, DISK_UNITS, context)? {
            None | Some(0) if kind != DiskKind::Disk => DiskSource::Empty,
            None => return Err(invalid(context, "VirtualQuantity", "is required for a new disk (or name an image in HostResource)")),
            Some(size) => {
                let sr_ref = match text(i, "PoolID") {
                    Some(id) => match PoolId::parse(&id) {
                        Some(PoolId::Disk(u)) => data.by_uuid(class::SR, &u).cloned(),
                        _ => None,
                    }
                    .ok_or_else(|| invalid(context, "PoolID", format!("'{id}' is no disk pool of this host")))?,
                    None => default_sr(data).ok_or_else(|| invalid(context, "PoolID", "is required: the host has no default disk pool"))?,
                };
                let sr_uuid = data.row(class::SR, &sr_ref).map(|s| s.str(sr::UUID).to_owned()).unwrap_or_default();
                let (min, max, _, _) = pools::limits(data, f, &PoolId::Disk(sr_uuid.clone()));
                if size < min || size > max {
                    return Err(invalid(
                        context,
                        "VirtualQuantity",
                        format!("{size} bytes is outside what DiskPool/{sr_uuid} can allocate ({min} to {max} bytes)"),
                    ));
                }
                let name = text(i, "ElementName").unwrap_or_default();
                DiskSource::New { sr_ref, size, name }
            }
        },
    };
    Ok(DiskIn { kind, source, device, read_only, bootable: boolean(i, "Bootable", context)? })
}

fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn net_in(data: &Data, i: &Instance, context: &str) -> Result<NetIn, CimError> {
    let by_name = |name: &str| {
        data.rows(class::network)
            .find(|(_, n)| n.str(network::NAME_LABEL) == name || n.str(network::BRIDGE) == name || n.str(network::UUID) == name)
            .map(|(r, _)| r.clone())
    };
    let network_ref = if let Some(id) = text(i, "PoolID") {
        match PoolId::parse(&id) {
            Some(PoolId::Net(u)) => data.by_uuid(class::network, &u).cloned(),
            _ => None,
        }
        .ok_or_else(|| invalid(context, "PoolID", format!("'{id}' is no network pool of this host")))?
    } else if let Some(name) = text(i, "NetworkName") {
        by_name(&name).ok_or_else(|| invalid(context, "NetworkName", format!("'{name}' is no network of this host")))?
    } else if let Some(name) = texts(i, "Connection").into_iter().next() {
        by_name(&name).ok_or_else(|| invalid(context, "Connection", format!("'{name}' is no network of this host")))?
    } else {
        data.rows(class::network)
            .find(|(_, n)| n.map_get(network::OTHER_CONFIG, "xencim_default") == Some("true"))
            .or_else(|| data.rows(class::network).next())
            .map(|(r, _)| r.clone())
            .ok_or_else(|| invalid(context, "PoolID", "is required: the host has no network"))?
    };
    let mac = match text(i, "Address").filter(|a| !a.is_empty()) {
        Some(a) if valid_mac(&a) => Some(a.to_ascii_lowercase()),
        Some(a) => return Err(invalid(context, "Address", format!("'{a}' is not a MAC address such as 00:16:3e:12:34:56"))),
        None => None,
    };
    let device = match text(i, "VirtualDevice").or_else(|| text(i, "AddressOnParent")) {
        None => None,
        Some(d) => {
            let n = d.trim_start_matches("vif").trim_start_matches("eth");
            match n.parse::<u32>() {
                Ok(n) if n < 7 => Some(n.to_string()),
                _ => return Err(invalid(context, "VirtualDevice", format!("'{d}' is not a port such as vif1 (0 to 6)"))),
            }
        }
    };
    Ok(NetIn { network_ref, mac, device })
}

/// Reads a RASD a client sent.
pub fn resource(data: &Data, f: &HostFacts, i: &Instance, context: &str) -> Result<ResIn, CimError> {
    let (res, kind) = resource_of(i, context)?;
    Ok(match res {
        Res::Proc => ResIn::Proc(proc_in(i, context)?),
        Res::Mem => ResIn::Mem(mem_in(i, context)?),
        Res::Disk => ResIn::Disk(disk_in(data, f, i, kind, context)?),
        Res::Net => ResIn::Net(net_in(data, i, context)?),
    })
}

/// The context of the n-th instance of a parameter, for error messages.
pub fn context(param: &str, n: Option<usize>, i: &Instance) -> String {
    match n {
        Some(n) => format!("{param}[{n}] ({})", i.class_name),
        None => format!("{param} ({})", i.class_name),
    }
}

/// The memory of a new VM in bytes: (static_min, dynamic_min, dynamic_max, static_max), checked
/// against the memory pool's limits.
pub fn new_memory(f: &HostFacts, m: &MemIn, context: &str) -> Result<[i64; 4], CimError> {
    let quantity = m.quantity.unwrap_or(pools::MEMORY_DEFAULT_MIB * MIB as u64);
    let (min, max) = (pools::MEMORY_MIN_MIB * MIB as u64, f.memory_total.max(pools::MEMORY_MIN_MIB * MIB as u64));
    if quantity < min || quantity > max {
        return Err(invalid(
            context,
            "VirtualQuantity",
            format!(
                "{} MiB is outside what MemoryPool/0 can allocate ({} to {} MiB)",
                quantity / MIB as u64,
                min / MIB as u64,
                max / MIB as u64
            ),
        ));
    }
    let reservation = m.reservation.unwrap_or(quantity);
    if reservation > quantity {
        return Err(invalid(context, "Reservation", format!("{} MiB is above VirtualQuantity", reservation / MIB as u64)));
    }
    let limit = m.limit.unwrap_or(quantity);
    if limit < quantity || limit > max {
        return Err(invalid(context, "Limit", format!("{} MiB is not between VirtualQuantity and the host's memory", limit / MIB as u64)));
    }
    let static_min = reservation.min(min);
    Ok([static_min as i64, reservation as i64, quantity as i64, limit as i64])
}
