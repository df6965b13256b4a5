//! The xm verbs over the Xen-API: each resolves its VM, makes the calls xm made in Xen-API
//! mode (or their modern equivalents), and prints what happened.

use super::connection::{text, Connection};
use super::devspec::{self, DiskSpec, VifSpec};
use super::domcfg::{self, DomainConfig};
use super::errors::{Failure, Result};
use super::lookup::{all_records, all_vms, resolve, Vm};
use super::output::{self, int, string, Row};
use std::path::Path;
use xenapi::value::Value;

const NULL: &str = "OpaqueRef:NULL";
/// Where a disk created for a config file's missing path remembers that path, so that the
/// same config finds the same disk next time.
const PATH_KEY: &str = "xencim_path";

fn s(v: impl Into<String>) -> Value {
    Value::Str(v.into())
}

fn record(members: Vec<(&str, Value)>) -> Value {
    Value::Struct(members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn empty_map() -> Value {
    Value::Struct(Vec::new())
}

fn warn(lines: &[String]) {
    for w in lines {
        eprintln!("warning: {w}");
    }
}

/// Objects made so far by a command that makes several; removed again if a later step fails,
/// so a failed `new` or `create` leaves nothing behind.
struct Undo<'a> {
    c: &'a Connection,
    vm: Option<String>,
    vdis: Vec<String>,
    vbds: Vec<String>,
}

impl<'a> Undo<'a> {
    fn new(c: &'a Connection) -> Self {
        Undo { c, vm: None, vdis: Vec::new(), vbds: Vec::new() }
    }

    fn rollback(self) {
        if let Some(vm) = &self.vm {
            let _ = self.c.call("VM.hard_shutdown", &[s(vm.clone())]);
            let _ = self.c.call("VM.destroy", &[s(vm.clone())]);
        }
        for vbd in &self.vbds {
            let _ = self.c.call("VBD.destroy", &[s(vbd.clone())]);
        }
        // Introduced VDIs are unmanaged: destroying them forgets the file and keeps it.
        for vdi in &self.vdis {
            let _ = self.c.call("VDI.destroy", &[s(vdi.clone())]);
        }
    }
}

fn default_sr(c: &Connection) -> Result<String> {
    let pools = c.call("pool.get_all", &[])?;
    let Some(pool) = (match &pools {
        Value::Array(p) => p.first().map(text),
        _ => None,
    }) else {
        return Err(Failure::Failed("the server has no pool".into()));
    };
    let sr = text(&c.call("pool.get_default_SR", &[s(pool)])?);
    if sr.is_empty() || sr == NULL {
        return Err(Failure::Failed("the pool has no default storage repository for new disks".into()));
    }
    Ok(sr)
}

/// The network a vif spec names by bridge, or the default one.
fn network_for(networks: &[(String, Value)], vif: &VifSpec) -> Result<(String, String)> {
    let bridge_of = |r: &Value| string(r.member("bridge"));
    if let Some(bridge) = &vif.bridge {
        return networks
            .iter()
            .find(|(_, r)| bridge_of(r) == *bridge || string(r.member("name_label")) == *bridge)
            .map(|(n, r)| (n.clone(), bridge_of(r)))
            .ok_or_else(|| {
                let known: Vec<String> = networks.iter().map(|(_, r)| bridge_of(r)).collect();
                Failure::Failed(format!("no network has the bridge '{bridge}' (the server has: {})", known.join(", ")))
            });
    }
    let is_default = |r: &Value| matches!(r.member("other_config").and_then(|o| o.member("xencim_default")), Some(v) if text(v) == "true");
    networks
        .iter()
        .find(|(_, r)| is_default(r))
        .or_else(|| networks.iter().find(|(_, r)| bridge_of(r) == "xenbr0"))
        .or_else(|| networks.first())
        .map(|(n, r)| (n.clone(), bridge_of(r)))
        .ok_or_else(|| Failure::Failed("the server has no network for a vif".into()))
}

fn basename(path: &str) -> String {
    Path::new(path).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| path.to_owned())
}

/// The VDI behind a disk spec: one the server already knows for that path, the existing file
/// registered with `VDI.introduce`, or (for a missing path with `size=`) a new disk.
fn disk_vdi(c: &Connection, spec: &DiskSpec, sr: &str, undo: &mut Undo) -> Result<Option<String>> {
    let Some(target) = &spec.target else { return Ok(None) };
    for (r, rec) in all_records(c, "VDI")? {
        let remembered = rec.member("other_config").and_then(|o| o.member(PATH_KEY)).map(text);
        if string(rec.member("location")) == *target || remembered.as_deref() == Some(target) {
            return Ok(Some(r));
        }
    }
    let introduce = [
        s(""),
        s(basename(target)),
        s(format!("{target}, registered by xencim")),
        s(sr),
        s("user"),
        Value::Bool(false),
        Value::Bool(spec.read_only),
        empty_map(),
        s(target.clone()),
    ];
    match c.call("VDI.introduce", &introduce) {
        Ok(r) => {
            let r = text(&r);
            undo.vdis.push(r.clone());
            Ok(Some(r))
        }
        // Only a pool-admin may name files of the host, and the server does not say to others
        // whether the path exists; with size= they get a new disk, as for a missing path.
        Err(Failure::Api { code, .. }) if code == "VDI_LOCATION_MISSING" || (code == "RBAC_PERMISSION_DENIED" && spec.size.is_some()) => {
            if code == "RBAC_PERMISSION_DENIED" {
                warn(&[format!("disk {}: only a pool-admin may use {target} as it is; making a new disk of that size instead", spec.vdev)]);
            }
            let Some(size) = spec.size else {
                return Err(Failure::Failed(format!(
                    "disk {}: {target} does not exist on the server's host; add size= (for example size=10G) to the disk spec to create it",
                    spec.vdev
                )));
            };
            let rec = record(vec![
                ("name_label", s(basename(target))),
                ("name_description", s(format!("made by xencim for {target}"))),
                ("SR", s(sr)),
                ("virtual_size", Value::Int(size as i64)),
                ("type", s("user")),
                ("sharable", Value::Bool(false)),
                ("read_only", Value::Bool(false)),
                ("other_config", record(vec![(PATH_KEY, s(target.clone()))])),
            ]);
            let label = format!("Creating disk {} ({} MiB)", spec.vdev, size >> 20);
            let r = text(&c.run_task("VDI.create", &[rec], &label)?);
            undo.vdis.push(r.clone());
            Ok(Some(r))
        }
        Err(e) => Err(e),
    }
}

fn vbd_record(vm: &str, vdi: Option<&str>, spec: &DiskSpec, bootable: bool) -> Value {
    record(vec![
        ("VM", s(vm)),
        ("VDI", s(vdi.unwrap_or(NULL))),
        ("userdevice", s(spec.index.to_string())),
        ("device", s(spec.vdev.clone())),
        ("bootable", Value::Bool(bootable)),
        ("mode", s(if spec.read_only { "RO" } else { "RW" })),
        ("type", s(if spec.cdrom { "CD" } else { "Disk" })),
        ("empty", Value::Bool(vdi.is_none())),
        ("unpluggable", Value::Bool(true)),
        ("other_config", empty_map()),
        ("qos_algorithm_type", s("")),
        ("qos_algorithm_params", empty_map()),
    ])
}

fn vif_record(vm: &str, network: &str, device: &str, vif: &VifSpec) -> Value {
    let mut members = vec![
        ("VM", s(vm)),
        ("network", s(network)),
        ("device", s(device)),
        ("MAC", s(vif.mac.clone().unwrap_or_default())),
        ("other_config", empty_map()),
        ("qos_algorithm_type", s("")),
        ("qos_algorithm_params", empty_map()),
    ];
    if let Some(mtu) = vif.mtu {
        members.push(("MTU", Value::Int(mtu.into())));
    }
    record(members)
}

fn vm_record(cfg: &DomainConfig) -> Value {
    let mib = |m: i64| Value::Int(m << 20);
    let hvm = cfg.domain_type == "hvm";
    let mut members = vec![
        ("name_label", s(cfg.name.clone())),
        ("name_description", s(cfg.description.clone())),
        ("user_version", Value::Int(1)),
        ("is_a_template", Value::Bool(false)),
        ("memory_static_max", mib(cfg.maxmem_mib)),
        ("memory_dynamic_max", mib(cfg.memory_mib)),
        ("memory_dynamic_min", mib(cfg.memory_mib)),
        // Low enough that `mem-set` can balloon a running guest down.
        ("memory_static_min", mib(cfg.memory_mib.min(16))),
        ("VCPUs_max", Value::Int(cfg.maxvcpus)),
        ("VCPUs_at_startup", Value::Int(cfg.vcpus)),
        ("VCPUs_params", empty_map()),
        ("actions_after_shutdown", s(cfg.on_poweroff.clone())),
        ("actions_after_reboot", s(cfg.on_reboot.clone())),
        ("actions_after_crash", s(cfg.on_crash.clone())),
        ("PV_bootloader", s(cfg.bootloader.clone())),
        ("PV_kernel", s(cfg.kernel.clone())),
        ("PV_ramdisk", s(cfg.ramdisk.clone())),
        ("PV_args", s(cfg.cmdline.clone())),
        ("PV_bootloader_args", s("")),
        ("PV_legacy_args", s("")),
        ("HVM_boot_policy", s(if hvm { "BIOS order" } else { "" })),
        ("HVM_boot_params", if hvm { record(vec![("order", s(cfg.boot.clone()))]) } else { empty_map() }),
        ("platform", empty_map()),
        ("PCI_bus", s("")),
        ("other_config", empty_map()),
        ("recommendations", s("")),
        ("domain_type", s(cfg.domain_type.clone())),
    ];
    if let Some(u) = &cfg.uuid {
        members.push(("uuid", s(u.clone())));
    }
    record(members)
}

/// Reads and checks a config file; its warnings go to stderr.
fn load_config(path: &Path) -> Result<DomainConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::Failed(format!("cannot read {}: {e}", path.display())))?;
    let loaded = domcfg::load(&path.display().to_string(), &text).map_err(|e| Failure::Failed(e.to_string()))?;
    warn(&loaded.warnings);
    Ok(loaded.config)
}

/// `new`: the VM with its disks and interfaces, halted. On failure nothing stays behind.
fn define<'a>(c: &'a Connection, cfg: &DomainConfig) -> Result<(Vm, Undo<'a>)> {
    let vms = all_vms(c)?;
    if let Some(existing) = vms.iter().find(|v| v.name() == cfg.name) {
        return Err(Failure::Failed(format!(
            "a VM named '{}' already exists (UUID {}); choose another name or `xencim delete {}` it first",
            cfg.name,
            existing.uuid(),
            cfg.name
        )));
    }
    if let Some(u) = &cfg.uuid {
        if let Some(existing) = vms.iter().find(|v| v.uuid() == *u) {
            return Err(Failure::Failed(format!("the UUID {u} is already used by VM '{}'", existing.name())));
        }
    }
    let networks = all_records(c, "network")?;
    let nets: Vec<(String, String)> = cfg.vifs.iter().map(|(v, _)| network_for(&networks, v)).collect::<Result<_>>()?;
    let sr = if cfg.disks.iter().any(|(d, _)| d.target.is_some()) { default_sr(c)? } else { String::new() };

    let mut undo = Undo::new(c);
    let outcome = (|| {
        let vm_ref = text(&c.call("VM.create", &[vm_record(cfg)])?);
        c.remember(&vm_ref, &cfg.name);
        undo.vm = Some(vm_ref.clone());
        for (i, (disk, _)) in cfg.disks.iter().enumerate() {
            let vdi = disk_vdi(c, disk, &sr, &mut undo)?;
            c.call("VBD.create", &[vbd_record(&vm_ref, vdi.as_deref(), disk, i == 0)])?;
        }
        for (i, ((vif, _), (net, _))) in cfg.vifs.iter().zip(&nets).enumerate() {
            c.call("VIF.create", &[vif_record(&vm_ref, net, &i.to_string(), vif)])?;
        }
        let record = c.call("VM.get_record", &[s(vm_ref.clone())])?;
        Ok(Vm { reference: vm_ref, record })
    })();
    match outcome {
        Ok(vm) => Ok((vm, undo)),
        Err(e) => {
            undo.rollback();
            Err(e)
        }
    }
}

pub fn new(c: &Connection, path: &Path) -> Result<()> {
    let cfg = load_config(path)?;
    let (vm, _) = define(c, &cfg)?;
    println!("Defined {} ({}), halted; `xencim start {}` boots it", vm.name(), vm.uuid(), vm.name());
    Ok(())
}

fn domid_text(c: &Connection, vm: &Vm) -> String {
    c.call("VM.get_domid", &[s(vm.reference.clone())]).map(|d| text(&d)).unwrap_or_default()
}

pub fn create(c: &Connection, path: &Path, paused: bool) -> Result<()> {
    let cfg = load_config(path)?;
    let (vm, undo) = define(c, &cfg)?;
    // `create` is one act, as in xm: a VM that cannot start is not left defined.
    if let Err(e) =
        c.run_task("VM.start", &[s(vm.reference.clone()), Value::Bool(paused), Value::Bool(false)], &format!("Starting {}", vm.name()))
    {
        undo.rollback();
        return Err(e);
    }
    let state = if paused { "paused" } else { "running" };
    println!("Started {} ({}), domain {}, {state}", vm.name(), vm.uuid(), domid_text(c, &vm));
    Ok(())
}

pub fn delete(c: &Connection, arg: &str) -> Result<()> {
    let vm = resolve(c, arg)?;
    c.call("VM.destroy", &[s(vm.reference.clone())])?;
    println!("Deleted {} ({}); its disks are kept", vm.name(), vm.uuid());
    Ok(())
}

pub fn start(c: &Connection, arg: &str, paused: bool) -> Result<()> {
    let vm = resolve(c, arg)?;
    c.run_task("VM.start", &[s(vm.reference.clone()), Value::Bool(paused), Value::Bool(false)], &format!("Starting {}", vm.name()))?;
    println!("Started {}, domain {}{}", vm.name(), domid_text(c, &vm), if paused { ", paused" } else { "" });
    Ok(())
}

pub fn shutdown(c: &Connection, arg: &str, force: bool, wait: bool) -> Result<()> {
    let vm = resolve(c, arg)?;
    // --force: a clean shutdown that falls back to a hard one (xl's -F).
    let (method, op) = if force { ("VM.shutdown", "shutdown") } else { ("VM.clean_shutdown", "clean_shutdown") };
    let args = [s(vm.reference.clone())];
    if wait {
        c.run_task(method, &args, &format!("Shutting down {}", vm.name()))?;
        println!("{} is halted", vm.name());
        return Ok(());
    }
    // Without --wait the task goes on after we leave, so its errors would go unseen: an
    // operation the VM does not allow now is called directly, to report the server's error.
    let allowed = vm.refs("allowed_operations");
    if !allowed.iter().any(|o| o == op) {
        c.call(method, &args)?;
    } else {
        c.start_task(method, &args)?;
    }
    println!("Shutting down {} (`--wait` waits until it is halted)", vm.name());
    Ok(())
}

pub fn destroy(c: &Connection, arg: &str) -> Result<()> {
    let vm = resolve(c, arg)?;
    c.call("VM.hard_shutdown", &[s(vm.reference.clone())])?;
    println!("Destroyed the domain of {} (powered off; the VM stays defined)", vm.name());
    Ok(())
}

pub fn reboot(c: &Connection, arg: &str, force: bool) -> Result<()> {
    let vm = resolve(c, arg)?;
    let method = if force { "VM.hard_reboot" } else { "VM.clean_reboot" };
    c.run_task(method, &[s(vm.reference.clone())], &format!("Rebooting {}", vm.name()))?;
    println!("Rebooted {}, domain {}", vm.name(), domid_text(c, &vm));
    Ok(())
}

pub fn simple(c: &Connection, arg: &str, method: &str, done: &str) -> Result<()> {
    let vm = resolve(c, arg)?;
    c.call(method, &[s(vm.reference.clone())])?;
    println!("{} {done}", vm.name());
    Ok(())
}

pub fn suspend(c: &Connection, arg: &str) -> Result<()> {
    let vm = resolve(c, arg)?;
    c.run_task("VM.suspend", &[s(vm.reference.clone())], &format!("Suspending {}", vm.name()))?;
    println!("Suspended {} ({})", vm.name(), vm.uuid());
    Ok(())
}

pub fn resume(c: &Connection, arg: &str, paused: bool) -> Result<()> {
    let vm = resolve(c, arg)?;
    c.run_task("VM.resume", &[s(vm.reference.clone()), Value::Bool(paused), Value::Bool(false)], &format!("Resuming {}", vm.name()))?;
    println!("Resumed {} ({}), domain {}{}", vm.name(), vm.uuid(), domid_text(c, &vm), if paused { ", paused" } else { "" });
    Ok(())
}

pub fn mem_set(c: &Connection, arg: &str, amount: &str) -> Result<()> {
    let bytes = devspec::parse_size(amount).map_err(Failure::Failed)? as i64;
    let vm = resolve(c, arg)?;
    let r = s(vm.reference.clone());
    if vm.power_state() == "Halted" {
        // A halted VM's configuration changes whole: the maximum grows if needed.
        let static_min = int(vm.field("memory_static_min")).unwrap_or(0).min(bytes);
        let static_max = int(vm.field("memory_static_max")).unwrap_or(0).max(bytes);
        c.call("VM.set_memory_limits", &[r, Value::Int(static_min), Value::Int(static_max), Value::Int(bytes), Value::Int(bytes)])?;
    } else {
        c.call("VM.set_memory_dynamic_range", &[r, Value::Int(bytes), Value::Int(bytes)])?;
    }
    println!("{} now has {} MiB", vm.name(), bytes >> 20);
    Ok(())
}

pub fn vcpu_set(c: &Connection, arg: &str, n: i64) -> Result<()> {
    let vm = resolve(c, arg)?;
    let r = s(vm.reference.clone());
    if vm.power_state() == "Halted" {
        if n > int(vm.field("VCPUs_max")).unwrap_or(0) {
            c.call("VM.set_VCPUs_max", &[r.clone(), Value::Int(n)])?;
            c.call("VM.set_VCPUs_at_startup", &[r, Value::Int(n)])?;
        } else {
            c.call("VM.set_VCPUs_at_startup", &[r.clone(), Value::Int(n)])?;
        }
    } else {
        c.call("VM.set_VCPUs_number_live", &[r, Value::Int(n)])?;
    }
    println!("{} now has {n} vCPUs", vm.name());
    Ok(())
}

/// The spec words of `block-attach`/`network-attach` joined as one spec, so that both
/// `file:/img,xvdb,w` and xm's `file:/img xvdb w` work.
fn joined(words: &[String]) -> String {
    words.iter().map(|w| w.trim_matches(',')).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(",")
}

pub fn block_attach(c: &Connection, arg: &str, words: &[String]) -> Result<()> {
    let spec_text = joined(words);
    let (spec, notes) = devspec::parse_disk(&spec_text).map_err(|e| Failure::Failed(format!("disk '{spec_text}': {e}")))?;
    warn(&notes);
    let vm = resolve(c, arg)?;
    let sr = if spec.target.is_some() { default_sr(c)? } else { String::new() };
    let mut undo = Undo::new(c);
    let outcome = (|| {
        let vdi = disk_vdi(c, &spec, &sr, &mut undo)?;
        let vbd = text(&c.call("VBD.create", &[vbd_record(&vm.reference, vdi.as_deref(), &spec, false)])?);
        undo.vbds.push(vbd.clone());
        if vm.power_state() == "Running" {
            c.call("VBD.plug", &[s(vbd)])?;
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        undo.rollback();
        return Err(e);
    }
    let what = spec.target.as_deref().unwrap_or("an empty CD drive");
    let when = if vm.power_state() == "Running" { "" } else { " (it is connected when the VM starts)" };
    println!("Attached {what} to {} as {}{when}", vm.name(), spec.vdev);
    Ok(())
}

fn find_device<'r>(records: &'r [(String, Value)], owned: &[String], pick: impl Fn(&Value) -> bool) -> Option<&'r (String, Value)> {
    records.iter().filter(|(r, _)| owned.contains(r)).find(|(_, rec)| pick(rec))
}

pub fn block_detach(c: &Connection, arg: &str, dev: &str) -> Result<()> {
    let vm = resolve(c, arg)?;
    let vbds = all_records(c, "VBD")?;
    let owned = vm.refs("VBDs");
    let index = devspec::vdev_index(dev).map(|i| i.to_string());
    let Some((vbd, rec)) =
        find_device(&vbds, &owned, |r| string(r.member("device")) == dev || Some(string(r.member("userdevice"))) == index)
    else {
        let mut have: Vec<String> = vbds.iter().filter(|(r, _)| owned.contains(r)).map(|(_, r)| string(r.member("device"))).collect();
        have.sort();
        return Err(Failure::Failed(format!(
            "{} has no disk {dev} (it has: {})",
            vm.name(),
            if have.is_empty() { "none".into() } else { have.join(", ") }
        )));
    };
    if matches!(rec.member("currently_attached"), Some(Value::Bool(true))) {
        c.call("VBD.unplug", &[s(vbd.clone())])?;
    }
    c.call("VBD.destroy", &[s(vbd.clone())])?;
    println!("Detached {} from {}; the disk image is kept", string(rec.member("device")), vm.name());
    Ok(())
}

pub fn network_attach(c: &Connection, arg: &str, words: &[String]) -> Result<()> {
    let spec_text = joined(words);
    let (spec, notes) = devspec::parse_vif(&spec_text).map_err(|e| Failure::Failed(format!("vif '{spec_text}': {e}")))?;
    warn(&notes);
    let vm = resolve(c, arg)?;
    let (net, bridge) = network_for(&all_records(c, "network")?, &spec)?;
    let vif = text(&c.call("VIF.create", &[vif_record(&vm.reference, &net, "", &spec)])?);
    if vm.power_state() == "Running" {
        if let Err(e) = c.call("VIF.plug", &[s(vif.clone())]) {
            let _ = c.call("VIF.destroy", &[s(vif)]);
            return Err(e);
        }
    }
    let rec = c.call("VIF.get_record", &[s(vif)])?;
    println!("Attached interface {} (MAC {}) on {bridge} to {}", string(rec.member("device")), string(rec.member("MAC")), vm.name());
    Ok(())
}

pub fn network_detach(c: &Connection, arg: &str, dev: &str) -> Result<()> {
    let vm = resolve(c, arg)?;
    let vifs = all_records(c, "VIF")?;
    let owned = vm.refs("VIFs");
    let wanted = dev.to_ascii_lowercase();
    let Some((vif, rec)) =
        find_device(&vifs, &owned, |r| string(r.member("MAC")).to_ascii_lowercase() == wanted || string(r.member("device")) == dev)
    else {
        let mut have: Vec<String> = vifs
            .iter()
            .filter(|(r, _)| owned.contains(r))
            .map(|(_, r)| format!("{} {}", string(r.member("device")), string(r.member("MAC"))))
            .collect();
        have.sort();
        return Err(Failure::Failed(format!(
            "{} has no interface {dev} (it has: {})",
            vm.name(),
            if have.is_empty() { "none".into() } else { have.join(", ") }
        )));
    };
    if matches!(rec.member("currently_attached"), Some(Value::Bool(true))) {
        c.call("VIF.unplug", &[s(vif.clone())])?;
    }
    c.call("VIF.destroy", &[s(vif.clone())])?;
    println!("Detached interface {} (MAC {}) from {}", string(rec.member("device")), string(rec.member("MAC")), vm.name());
    Ok(())
}

pub fn console_info(c: &Connection, arg: &str) -> Result<()> {
    let vm = resolve(c, arg)?;
    let consoles = vm.refs("consoles");
    if consoles.is_empty() {
        return Err(Failure::Failed(format!(
            "{} is {}: a console exists only while the VM runs",
            vm.name(),
            vm.power_state().to_lowercase()
        )));
    }
    println!("name: {}\ndomid: {}", vm.name(), vm.domid().map(|d| d.to_string()).unwrap_or_default());
    for console in consoles {
        let rec = c.call("console.get_record", &[s(console)])?;
        println!("protocol: {}\nlocation: {}", string(rec.member("protocol")), string(rec.member("location")));
    }
    Ok(())
}

fn metrics_of<'m>(metrics: &'m [(String, Value)], vm: &Vm) -> Option<&'m Value> {
    let m = string(vm.field("metrics"));
    metrics.iter().find(|(r, _)| *r == m).map(|(_, v)| v)
}

fn row(vm: &Vm, metrics: Option<&Value>) -> Row {
    let live = vm.domid().is_some();
    let positive = |v: Option<i64>| v.filter(|n| *n > 0);
    let memory = if live { positive(int(metrics.and_then(|m| m.member("memory_actual")))) } else { None };
    let vcpus = if live { positive(int(metrics.and_then(|m| m.member("VCPUs_number")))) } else { None };
    Row {
        name: vm.name(),
        uuid: vm.uuid(),
        domid: vm.domid(),
        memory_mib: memory.or_else(|| int(vm.field("memory_dynamic_max"))).unwrap_or(0) >> 20,
        vcpus: vcpus.or_else(|| int(vm.field("VCPUs_at_startup"))).unwrap_or(0),
        power_state: vm.power_state(),
        // VM_metrics carries no CPU time (VCPUs_utilisation is a ratio, and removed), so
        // the column shows '-' rather than a made-up number.
        cpu_seconds: None,
    }
}

/// The VMs `list` and `uptime` show: those named, or every guest (with --all also those without
/// a domain), dom0 first.
fn selected(c: &Connection, names: &[String], all: bool) -> Result<Vec<Vm>> {
    let vms: Vec<Vm> = all_vms(c)?.into_iter().filter(Vm::is_guest_or_dom0).collect();
    let mut chosen: Vec<Vm> = if names.is_empty() {
        vms.into_iter().filter(|v| all || v.domid().is_some()).collect()
    } else {
        names.iter().map(|n| super::lookup::pick(&vms, n).cloned().map_err(Failure::Failed)).collect::<Result<_>>()?
    };
    if names.is_empty() {
        chosen.sort_by_key(|v| (!v.flag("is_control_domain"), v.name(), v.uuid()));
    }
    Ok(chosen)
}

pub fn list(c: &Connection, names: &[String], all: bool, long: bool, json: bool) -> Result<()> {
    let vms = selected(c, names, all)?;
    let metrics = all_records(c, "VM_metrics")?;
    if !long {
        let rows: Vec<Row> = vms.iter().map(|v| row(v, metrics_of(&metrics, v))).collect();
        if json {
            println!("{}", serde_json::to_string_pretty(&rows.iter().map(output::row_json).collect::<Vec<_>>()).unwrap_or_default());
        } else {
            print!("{}", output::table(&rows));
        }
        return Ok(());
    }
    let (vbds, vifs, vdis, networks) = (all_records(c, "VBD")?, all_records(c, "VIF")?, all_records(c, "VDI")?, all_records(c, "network")?);
    let lookup = |set: &[(String, Value)], r: &str| set.iter().find(|(x, _)| x == r).map(|(_, v)| v.clone());
    let mut full = Vec::new();
    for vm in &vms {
        let Value::Struct(mut members) = vm.record.clone() else { continue };
        let mut disks = Vec::new();
        for r in vm.refs("VBDs") {
            let Some(Value::Struct(mut b)) = lookup(&vbds, &r) else { continue };
            if let Some(vdi) = lookup(&vdis, &string(b.iter().find(|(k, _)| k == "VDI").map(|(_, v)| v))) {
                b.push(("VDI_location".into(), vdi.member("location").cloned().unwrap_or_else(Value::void)));
                b.push(("VDI_virtual_size".into(), vdi.member("virtual_size").cloned().unwrap_or_else(Value::void)));
            }
            let device = string(b.iter().find(|(k, _)| k == "device").map(|(_, v)| v));
            disks.push((device, Value::Struct(b)));
        }
        let mut nics = Vec::new();
        for r in vm.refs("VIFs") {
            let Some(Value::Struct(mut v)) = lookup(&vifs, &r) else { continue };
            if let Some(net) = lookup(&networks, &string(v.iter().find(|(k, _)| k == "network").map(|(_, x)| x))) {
                v.push(("network_bridge".into(), net.member("bridge").cloned().unwrap_or_else(Value::void)));
            }
            let device = string(v.iter().find(|(k, _)| k == "device").map(|(_, x)| x));
            nics.push((device, Value::Struct(v)));
        }
        disks.sort_by(|a, b| a.0.cmp(&b.0));
        nics.sort_by(|a, b| a.0.cmp(&b.0));
        members.push(("VBD_records".into(), Value::Struct(disks)));
        members.push(("VIF_records".into(), Value::Struct(nics)));
        members.push(("metrics_record".into(), metrics_of(&metrics, vm).cloned().unwrap_or_else(|| Value::Struct(vec![]))));
        full.push((vm.name(), Value::Struct(members)));
    }
    if json {
        let items: Vec<serde_json::Value> = full.iter().map(|(_, v)| output::to_json(v)).collect();
        println!("{}", serde_json::to_string_pretty(&items).unwrap_or_default());
    } else {
        let mut out = String::new();
        for (name, v) in &full {
            out.push_str(&format!("{name}:\n"));
            output::write_record(&mut out, 2, v);
        }
        print!("{out}");
    }
    Ok(())
}

/// Seconds since the UNIX epoch of a Xen-API datetime (`20240131T12:00:00Z`).
fn unix_time(v: Option<&Value>) -> Option<i64> {
    let t = text(v?);
    let t = t.trim_end_matches('Z');
    chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .map(|d| d.and_utc().timestamp())
        .filter(|s| *s > 0)
}

fn this_host(c: &Connection) -> Result<String> {
    match c.call("host.get_all", &[])? {
        Value::Array(h) if !h.is_empty() => Ok(text(&h[0])),
        _ => Err(Failure::Failed("the server reports no host".into())),
    }
}

pub fn uptime(c: &Connection, names: &[String]) -> Result<()> {
    let vms = selected(c, names, false)?;
    let metrics = all_records(c, "VM_metrics")?;
    let now = unix_time(Some(&c.call("host.get_servertime", &[s(this_host(c)?)])?));
    println!("{:<32} {:>3} Uptime", "Name", "ID");
    for vm in vms {
        let Some(domid) = vm.domid() else {
            println!("{:<32} {:>3} -", vm.name(), "");
            continue;
        };
        let started = unix_time(metrics_of(&metrics, &vm).and_then(|m| m.member("start_time")));
        let seconds = match (started, now) {
            (Some(start), Some(now)) => Some(now - start),
            // dom0 has no start time in the model; on the daemon's own host it is the host's uptime.
            _ if vm.flag("is_control_domain") && c.endpoint().is_local() => std::fs::read_to_string("/proc/uptime")
                .ok()
                .and_then(|u| u.split_whitespace().next().and_then(|x| x.parse::<f64>().ok()))
                .map(|u| u as i64),
            _ => None,
        };
        println!("{:<32} {domid:>3} {}", vm.name(), seconds.map(output::uptime).unwrap_or_else(|| "-".into()));
    }
    Ok(())
}

pub fn info(c: &Connection, json: bool) -> Result<()> {
    let host_ref = this_host(c)?;
    let host = c.call("host.get_record", &[s(host_ref)])?;
    let metrics = c.call("host_metrics.get_record", &[s(string(host.member("metrics")))])?;
    let cpus = all_records(c, "host_cpu")?;
    let vms = all_vms(c)?;
    let sw = |k: &str| string(host.member("software_version").and_then(|v| v.member(k)));
    let mib = |k: &str| int(metrics.member(k)).unwrap_or(0) >> 20;
    let speed = cpus.first().map(|(_, r)| int(r.member("speed")).unwrap_or(0)).unwrap_or(0);
    let caps: Vec<String> = match host.member("capabilities") {
        Some(Value::Array(a)) => a.iter().map(text).collect(),
        _ => Vec::new(),
    };
    let running = vms.iter().filter(|v| v.domid().is_some()).count();
    let facts: Vec<(&str, serde_json::Value)> = vec![
        ("host", string(host.member("hostname")).into()),
        ("name", string(host.member("name_label")).into()),
        ("uuid", string(host.member("uuid")).into()),
        ("address", string(host.member("address")).into()),
        ("xencim_version", sw("product_version").into()),
        ("xen_api_version", format!("{}.{}", string(host.member("API_version_major")), string(host.member("API_version_minor"))).into()),
        ("hypervisor", sw("hypervisor").into()),
        ("hypervisor_version", sw("hypervisor_version").into()),
        ("nr_cpus", cpus.len().into()),
        ("cpu_mhz", speed.into()),
        ("cpu_model", cpus.first().map(|(_, r)| string(r.member("modelname"))).unwrap_or_default().into()),
        ("total_memory", mib("memory_total").into()),
        ("free_memory", mib("memory_free").into()),
        ("xen_caps", caps.join(" ").into()),
        ("xen_scheduler", string(host.member("sched_policy")).into()),
        ("nr_vms", vms.iter().filter(|v| v.is_guest_or_dom0() && !v.flag("is_control_domain")).count().into()),
        ("nr_running", running.into()),
    ];
    if json {
        let map: serde_json::Map<String, serde_json::Value> = facts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::Value::Object(map)).unwrap_or_default());
    } else {
        for (k, v) in facts {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            println!("{k:<23}: {v}");
        }
    }
    Ok(())
}
