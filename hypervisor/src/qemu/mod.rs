//! The qemu backend: one `qemu-system-x86_64` process per running domain, driven over QMP.
//!
//! Each domain has a directory `vms/<uuid>/` under the backend's state dir holding its record
//! (`domain.json`), QEMU's pidfile and the QMP socket; its serial console is appended to
//! `console/<uuid>.log` and QEMU's own messages to `log/<uuid>.log`, both kept after the
//! domain ends. QEMU runs in a session of its own, so it survives a daemon restart, and
//! [`QemuHypervisor::new`] adopts every live one it finds.
//!
//! One reader thread per QMP connection turns QEMU's events into [`DomainEvent`]s: a guest
//! that powers off, reboots (QEMU runs with `-action reboot=shutdown`, so a reboot ends the
//! process too) or panics, and a process that dies (the connection drops). Operations asked
//! for through the trait set an *intent* on the domain first, and the reader thread stays
//! silent about changes the backend made itself: the model records those from the call's
//! result and must not see them twice.
//!
//! Modules: `cmdline` (the QEMU command line and device arguments), `process` (spawning,
//! liveness, the QMP socket), `qmp` (the QMP client), `domain` (the event pump and a domain's
//! state), `adopt` (taking over QEMUs after a restart), `state` (records on disk and suspend
//! image headers), `metrics` (/proc), `probe` (choosing KVM or TCG); the operations are here.

mod adopt;
mod cmdline;
mod config;
mod domain;
mod metrics;
mod probe;
mod process;
mod qmp;
mod state;
#[cfg(test)]
mod tests;

pub use config::{Accel, AccelChoice, NetworkMode, QemuConfig};

use crate::{
    DiskConfig, DiskKind, DomId, DomainConfig, DomainEvent, DomainInfo, HostInfo, Hypervisor, HypervisorError, NicConfig, Result, RunState,
    ShutdownReason,
};
use parking_lot::{Condvar, Mutex};
use qmp::{Negotiated, Qmp, QmpError};
use serde_json::{json, Value};
use state::{CpuSlot, DiskKindRec, DiskRec, DomainRecord, NetBackend, NicRec};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The most vCPUs the `pc` machine takes.
pub const MAX_VCPUS: u32 = 255;
/// How long QEMU may take to open its QMP socket after being spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process whose QMP connection dropped may take to be gone before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(3);
/// Events kept per domain for operations that wait for one (DEVICE_DELETED, RESET).
const EVENT_LOG: usize = 64;

fn invalid(message: impl Into<String>) -> HypervisorError {
    HypervisorError::Invalid(message.into())
}

fn backend(message: impl Into<String>) -> HypervisorError {
    HypervisorError::Backend(message.into())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// What the backend is doing to a domain, so that the reader thread can tell the changes it
/// asked for from those the guest (or a killer) made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Intent {
    None,
    /// The process is being ended (shutdown, suspend, or the first half of a reboot). With
    /// `keep_reservation` its memory stays reserved for the process that replaces it.
    Exit {
        keep_reservation: bool,
    },
    /// An in-place reset (hard reboot): the RESET event is ours.
    Reset,
}

struct DomState {
    domid: DomId,
    run: RunState,
    intent: Intent,
    /// Why the guest is ending, from QEMU's SHUTDOWN event, if it said.
    exit_reason: Option<ShutdownReason>,
    /// The connection dropped and the reader thread is tearing the domain down.
    closing: bool,
    /// The process is gone and the domain out of the table.
    gone: bool,
    record: DomainRecord,
    start_time: i64,
    /// Host thread ids of the vCPUs, in vCPU order.
    vcpu_threads: Vec<i32>,
    /// Guest memory as the balloon driver last reported it.
    memory_actual: u64,
    events: VecDeque<(u64, String, Value)>,
    event_seq: u64,
}

struct Domain {
    uuid: Uuid,
    dir: PathBuf,
    pid: i32,
    /// Charged against the host for as long as the domain lives.
    reservation: u64,
    qmp: Qmp,
    /// Serialises the operations that take turns on a domain; hard shutdown does not wait
    /// for it, so that it can cut through a clean shutdown that waits for the guest.
    op: Mutex<()>,
    st: Mutex<DomState>,
    changed: Condvar,
}

struct Table {
    domains: HashMap<Uuid, Arc<Domain>>,
    /// Reservations of domains being built (start, resume) or rebuilt (reboot).
    pending: HashMap<Uuid, u64>,
    next_domid: DomId,
}

impl Table {
    fn reserved(&self) -> u64 {
        self.domains.values().map(|d| d.reservation).sum::<u64>() + self.pending.values().sum::<u64>()
    }

    fn allocate_domid(&mut self) -> Result<DomId> {
        let domid = self.next_domid;
        self.next_domid = domid.checked_add(1).ok_or_else(|| backend("domids are exhausted"))?;
        Ok(domid)
    }
}

struct Inner {
    config: QemuConfig,
    accel: Accel,
    binary: PathBuf,
    version: String,
    cpu: metrics::CpuInfo,
    table: Mutex<Table>,
    events: Sender<DomainEvent>,
    receiver: Mutex<Option<Receiver<DomainEvent>>>,
    /// Held for the backend's life: two daemons on one state dir would fight over every QEMU.
    _lock: std::fs::File,
}

pub struct QemuHypervisor {
    inner: Arc<Inner>,
}

fn qmp_error(uuid: Uuid, e: QmpError) -> HypervisorError {
    match e {
        QmpError::Closed => HypervisorError::NoSuchDomain(uuid),
        other => backend(format!("QEMU of VM {uuid}: {other}")),
    }
}

/// How a new process begins its life.
enum Boot<'a> {
    /// A fresh boot; paused or not.
    Fresh { paused: bool },
    /// Restored from a suspend image.
    Incoming { image: &'a Path, paused: bool },
}

impl Inner {
    fn vms_dir(&self) -> PathBuf {
        self.config.state_dir.join("vms")
    }

    fn vm_dir(&self, uuid: Uuid) -> PathBuf {
        self.vms_dir().join(uuid.to_string())
    }

    fn console_log(&self, uuid: Uuid) -> PathBuf {
        self.config.state_dir.join("console").join(format!("{uuid}.log"))
    }

    fn qemu_log(&self, uuid: Uuid) -> PathBuf {
        self.config.state_dir.join("log").join(format!("{uuid}.log"))
    }

    fn get(&self, uuid: Uuid) -> Result<Arc<Domain>> {
        self.table.lock().domains.get(&uuid).cloned().ok_or(HypervisorError::NoSuchDomain(uuid))
    }

    /// Memory the guests may have in all: what the host could give if our QEMUs were not
    /// there (its available memory plus what they hold), less the host's reserve.
    fn capacity(&self, table: &Table) -> u64 {
        let mem = metrics::meminfo();
        let ours: u64 = table.domains.values().map(|d| metrics::rss_bytes(d.pid)).sum();
        mem.available.saturating_add(ours).min(mem.total).saturating_sub(self.config.host_reserve)
    }

    /// Reserves memory for a new domain of VM `uuid` and gives it a domid.
    fn reserve(&self, uuid: Uuid, reservation: u64) -> Result<DomId> {
        let mut table = self.table.lock();
        if table.domains.contains_key(&uuid) || table.pending.contains_key(&uuid) {
            return Err(HypervisorError::DomainExists(uuid));
        }
        let available = self.capacity(&table).saturating_sub(table.reserved());
        if reservation > available {
            return Err(HypervisorError::NotEnoughMemory { needed: reservation, available });
        }
        let domid = table.allocate_domid()?;
        table.pending.insert(uuid, reservation);
        Ok(domid)
    }

    fn unreserve(&self, uuid: Uuid) {
        self.table.lock().pending.remove(&uuid);
    }

    fn network_backend(&self, bridge: &str) -> NetBackend {
        match self.config.network {
            NetworkMode::Bridge if metrics::bridge_exists(bridge) => NetBackend::Bridge { bridge: bridge.to_owned() },
            NetworkMode::Bridge => {
                if !bridge.is_empty() {
                    tracing::warn!(bridge, "qemu: bridge not present on the host; the NIC gets user-mode networking");
                }
                NetBackend::User
            }
            NetworkMode::User => NetBackend::User,
        }
    }

    fn cpu_model(&self) -> String {
        self.config.cpu_model.clone().unwrap_or_else(|| match self.accel {
            Accel::Kvm => "host".into(),
            Accel::Tcg => "qemu64".into(),
        })
    }

    /// The record of a domain about to boot from `config`, with every device placed.
    fn new_record(&self, config: &DomainConfig) -> Result<DomainRecord> {
        let mut record = DomainRecord {
            uuid: config.uuid,
            name: config.name.clone(),
            memory_static_max: cmdline::memory_mib(config.memory_static_max) << 20,
            memory_target: config.memory_target,
            vcpus_max: config.vcpus_max,
            boot_vcpus: config.vcpus_at_startup,
            hotplugged_cpus: Vec::new(),
            kernel: config.kernel.as_deref().map(absolute),
            ramdisk: config.ramdisk.as_deref().map(absolute),
            cmdline: config.cmdline.clone(),
            disks: Vec::new(),
            nics: Vec::new(),
            machine: self.config.machine.clone(),
            cpu_model: Some(self.cpu_model()),
            accel: self.accel,
        };
        for disk in &config.disks {
            let slot = place_disk(&record, disk)?;
            let mut rec = DiskRec::new(disk, slot);
            rec.path = rec.path.as_deref().map(absolute);
            record.disks.push(rec);
        }
        for nic in &config.nics {
            let slot = cmdline::free_pci_slot(&record).ok_or_else(|| invalid("no free PCI slot for another NIC"))?;
            record.nics.push(NicRec::new(nic, self.network_backend(&nic.bridge), slot));
        }
        Ok(record)
    }

    /// Spawns QEMU for `record`, adopts it into the table and brings it to life. The caller
    /// has reserved its memory (the pending entry becomes the domain).
    fn launch(self: &Arc<Self>, record: DomainRecord, domid: DomId, reservation: u64, boot: Boot) -> Result<Arc<Domain>> {
        let uuid = record.uuid;
        let dir = self.vm_dir(uuid);
        let console = self.console_log(uuid);
        let log = self.qemu_log(uuid);
        for d in [&dir, console.parent().unwrap_or(&dir), log.parent().unwrap_or(&dir)] {
            create_private_dir(d).map_err(|e| backend(format!("cannot create {}: {e}", d.display())))?;
        }
        for name in [state::RECORD_FILE, state::PID_FILE, state::QMP_SOCKET] {
            let _ = std::fs::remove_file(dir.join(name));
        }
        let pidfile = dir.join(state::PID_FILE);
        let incoming = matches!(boot, Boot::Incoming { .. });
        let args = cmdline::build(&cmdline::Launch {
            record: &record,
            paths: cmdline::Paths { qmp_socket: state::QMP_SOCKET, pidfile: &pidfile, console_log: &console },
            tcg_tb_size_mib: self.config.tcg_tb_size_mib,
            incoming,
        });
        append_log(&log, &format!("xencim: starting domid {domid} of VM {uuid}: {} {}", self.binary.display(), args.join(" ")));
        let pid =
            process::spawn(&self.binary, &args, &dir, &log).map_err(|e| backend(format!("cannot run {}: {e}", self.binary.display())))?;
        let negotiated = match process::connect_qmp(&dir, state::QMP_SOCKET, pid, START_TIMEOUT, self.config.qmp_timeout) {
            Ok(n) => n,
            Err(e) => {
                process::kill_and_wait(pid, EXIT_GRACE);
                let _ = std::fs::remove_file(dir.join(state::QMP_SOCKET));
                let _ = std::fs::remove_dir(&dir);
                return Err(backend(format!("QEMU did not start: {e}\n{}", process::log_tail(&log, 5))));
            }
        };
        let start_time = unix_now();
        let memory_actual = record.memory_static_max;
        let st = DomState {
            domid,
            run: RunState::Paused,
            intent: Intent::None,
            exit_reason: None,
            closing: false,
            gone: false,
            record,
            start_time,
            vcpu_threads: Vec::new(),
            memory_actual,
            events: VecDeque::new(),
            event_seq: 0,
        };
        let domain = self.adopt(negotiated, uuid, dir, pid, reservation, st);
        let _op = domain.op.lock();
        {
            let mut table = self.table.lock();
            table.pending.remove(&uuid);
            table.domains.insert(uuid, domain.clone());
        }
        domain.catch_early_close(self);
        let setup = domain.persist().and_then(|_| self.bring_up(&domain, boot));
        if let Err(e) = setup {
            domain.set_intent(Intent::Exit { keep_reservation: false });
            let _ = domain.force_end(self.config.quit_timeout);
            return Err(e);
        }
        Ok(domain.clone())
    }

    /// Wraps a negotiated QMP connection into a domain whose events reach the backend.
    fn adopt(self: &Arc<Self>, negotiated: Negotiated, uuid: Uuid, dir: PathBuf, pid: i32, reservation: u64, st: DomState) -> Arc<Domain> {
        let weak_inner: Weak<Inner> = Arc::downgrade(self);
        let timeout = self.config.qmp_timeout;
        Arc::new_cyclic(|weak: &Weak<Domain>| {
            let weak = weak.clone();
            let qmp = negotiated.start(&uuid.to_string()[..8], timeout, move |msg| {
                let Some(domain) = weak.upgrade() else { return };
                domain::dispatch(&domain, weak_inner.upgrade().as_deref(), msg);
            });
            Domain { uuid, dir, pid, reservation, qmp, op: Mutex::new(()), st: Mutex::new(st), changed: Condvar::new() }
        })
    }

    fn bring_up(&self, domain: &Domain, boot: Boot) -> Result<()> {
        let paused = match boot {
            Boot::Fresh { paused } => {
                let (target, max) = {
                    let st = domain.state();
                    (st.record.memory_target, st.record.memory_static_max)
                };
                if target < max {
                    domain.execute("balloon", Some(json!({ "value": target })))?;
                }
                paused
            }
            Boot::Incoming { image, paused } => {
                self.receive(domain, image)?;
                paused
            }
        };
        domain.refresh_vcpu_threads()?;
        domain.refresh_balloon();
        if !paused {
            domain.state().run = RunState::Running;
            domain.execute("cont", None)?;
        }
        Ok(())
    }

    /// Loads a suspend image into a process started with `-incoming defer`.
    fn receive(&self, domain: &Domain, image: &Path) -> Result<()> {
        domain.execute(
            "migrate-incoming",
            Some(json!({
                "channels": [{"channel-type": "main", "addr": {"transport": "file", "filename": image.to_string_lossy(), "offset": state::HEADER_SIZE}}],
                "exit-on-error": false,
            })),
        )?;
        let deadline = Instant::now() + self.config.migration_timeout;
        loop {
            let status = domain.execute("query-migrate", None)?;
            match status.get("status").and_then(Value::as_str).unwrap_or("") {
                "completed" => return Ok(()),
                "failed" | "cancelled" => {
                    let why = status.get("error-desc").and_then(Value::as_str).unwrap_or("no reason given");
                    return Err(HypervisorError::Image(format!("QEMU could not load {}: {why}", image.display())));
                }
                _ if Instant::now() > deadline => return Err(HypervisorError::Image(format!("loading {} took too long", image.display()))),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Ends a domain that the backend is replacing (clean reboot, fallback hard reboot) and
    /// boots its successor from the domain's current record; the memory stays reserved across.
    fn restart(self: &Arc<Self>, domain: &Domain, record: DomainRecord) -> Result<DomId> {
        let uuid = domain.uuid;
        let old_domid = domain.state().domid;
        if !domain.state().gone {
            domain.set_intent(Intent::Exit { keep_reservation: true });
            domain.force_end(self.config.quit_timeout)?;
        }
        let domid = {
            let mut table = self.table.lock();
            if !table.pending.contains_key(&uuid) {
                // Something else (a hard shutdown) ended it for good meanwhile.
                return Err(HypervisorError::NoSuchDomain(uuid));
            }
            table.allocate_domid()?
        };
        match self.launch(record, domid, domain.reservation, Boot::Fresh { paused: false }) {
            Ok(_) => Ok(domid),
            Err(e) => {
                self.unreserve(uuid);
                tracing::error!(%uuid, error = %e, "qemu: the domain ended for a reboot but could not start again");
                // The model still believes the old domain runs; to it, this is a crash.
                let _ = self.events.send(DomainEvent::Shutdown { uuid, domid: old_domid, reason: ShutdownReason::Crash });
                Err(e)
            }
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

fn append_log(log: &Path, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(f, "{} {line}", unix_now());
    }
}

/// Where a disk goes on the machine of `record`.
fn place_disk(record: &DomainRecord, disk: &DiskConfig) -> Result<u8> {
    let slot = match disk.kind {
        DiskKind::Disk => cmdline::free_pci_slot(record),
        DiskKind::Cdrom => cmdline::ide_position(record, &disk.device),
        DiskKind::Floppy => cmdline::floppy_unit(record),
    };
    slot.ok_or_else(|| invalid(format!("no room for disk {} ({:?}) on this machine", disk.device, disk.kind)))
}

fn validate_disk(disk: &DiskConfig) -> Result<()> {
    let name = &disk.device;
    let well_formed = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !well_formed {
        return Err(invalid(format!("{name:?} is not a disk device name")));
    }
    match (&disk.path, disk.kind) {
        (None, DiskKind::Disk) => return Err(invalid(format!("disk {name} has no image"))),
        (Some(path), _) if !path.exists() => return Err(invalid(format!("the image {} of disk {name} does not exist", path.display()))),
        _ => {}
    }
    Ok(())
}

fn validate_nic(nic: &NicConfig) -> Result<()> {
    if nic.device.parse::<u16>().map(|i| i.to_string() != nic.device).unwrap_or(true) {
        return Err(invalid(format!("{:?} is not a NIC device index", nic.device)));
    }
    let octets: Vec<&str> = nic.mac.split(':').collect();
    let mac_ok = octets.len() == 6 && octets.iter().all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()));
    if !nic.mac.is_empty() && !mac_ok {
        return Err(invalid(format!("{:?} is not a MAC address", nic.mac)));
    }
    if !nic.mac.is_empty() && u8::from_str_radix(octets[0], 16).is_ok_and(|b| b & 1 == 1) {
        return Err(invalid(format!("{} is a multicast MAC address", nic.mac)));
    }
    if nic.mtu < 68 {
        return Err(invalid(format!("NIC {} has MTU {}", nic.device, nic.mtu)));
    }
    Ok(())
}

fn validate_config(config: &DomainConfig, pcpus: u32) -> Result<()> {
    if config.uuid.is_nil() {
        return Err(invalid("the nil UUID cannot name a domain"));
    }
    if config.memory_static_max < (16 << 20) {
        return Err(invalid(format!("memory_static_max {} is below the 16 MiB a QEMU guest needs", config.memory_static_max)));
    }
    if config.memory_target == 0 || config.memory_target > config.memory_static_max {
        return Err(invalid(format!("memory target {} is outside 1..={}", config.memory_target, config.memory_static_max)));
    }
    if config.vcpus_max == 0 || config.vcpus_max > MAX_VCPUS {
        return Err(invalid(format!("vcpus_max {} is outside 1..={MAX_VCPUS}", config.vcpus_max)));
    }
    if config.vcpus_at_startup == 0 || config.vcpus_at_startup > config.vcpus_max {
        return Err(invalid(format!("vcpus_at_startup {} is outside 1..={}", config.vcpus_at_startup, config.vcpus_max)));
    }
    if config.vcpus_max > pcpus {
        return Err(HypervisorError::NotEnoughPcpus { vcpus: config.vcpus_max, pcpus });
    }
    for (label, path) in [("kernel", &config.kernel), ("ramdisk", &config.ramdisk)] {
        if let Some(p) = path {
            if !p.is_file() {
                return Err(invalid(format!("the {label} {} does not exist", p.display())));
            }
        }
    }
    for (i, disk) in config.disks.iter().enumerate() {
        validate_disk(disk)?;
        if config.disks[..i].iter().any(|d| d.device == disk.device) {
            return Err(invalid(format!("disk {} appears twice", disk.device)));
        }
    }
    for (i, nic) in config.nics.iter().enumerate() {
        validate_nic(nic)?;
        if config.nics[..i].iter().any(|n| n.device == nic.device) {
            return Err(invalid(format!("NIC {} appears twice", nic.device)));
        }
    }
    Ok(())
}

impl QemuHypervisor {
    /// Resolves the accelerator (probing KVM for `auto`), then adopts the live QEMU processes
    /// of an earlier daemon and cleans up after the dead ones.
    pub fn new(mut config: QemuConfig) -> Result<Self> {
        // QEMU runs in the domain's directory, so every path it is given must be absolute.
        config.state_dir = absolute(&config.state_dir);
        create_private_dir(&config.state_dir).map_err(|e| backend(format!("cannot create {}: {e}", config.state_dir.display())))?;
        let lock = lock_state_dir(&config.state_dir)?;
        let binary = probe::which(&config.qemu_binary)
            .ok_or_else(|| backend(format!("QEMU binary {} not found (install qemu-system-x86)", config.qemu_binary.display())))?;
        let version = process::version(&binary).map_err(backend)?;
        match process::parse_major_minor(&version) {
            Some(v) if v >= (9, 1) => {}
            _ => return Err(backend(format!("QEMU {version} is too old: the qemu backend needs 9.1 or later"))),
        }
        let (accel, why) = probe::choose(config.accel, &binary, &config.state_dir).map_err(backend)?;
        tracing::info!(qemu = %binary.display(), %version, accel = accel.name(), reason = %why, "qemu: accelerator chosen");
        let (sender, receiver) = mpsc::channel();
        let inner = Arc::new(Inner {
            config,
            accel,
            binary,
            version,
            cpu: metrics::cpuinfo(),
            table: Mutex::new(Table { domains: HashMap::new(), pending: HashMap::new(), next_domid: 1 }),
            events: sender,
            receiver: Mutex::new(Some(receiver)),
            _lock: lock,
        });
        adopt::adopt_all(&inner);
        Ok(QemuHypervisor { inner })
    }

    pub fn accel(&self) -> Accel {
        self.inner.accel
    }

    pub fn config(&self) -> &QemuConfig {
        &self.inner.config
    }

    /// The serial console log of a VM: appended across boots, kept after the domain ends.
    pub fn console_log_path(&self, uuid: Uuid) -> PathBuf {
        self.inner.console_log(uuid)
    }

    /// QEMU's own messages about a VM (its command lines, warnings, errors).
    pub fn qemu_log_path(&self, uuid: Uuid) -> PathBuf {
        self.inner.qemu_log(uuid)
    }

    /// The QEMU process of a live domain.
    pub fn pid(&self, uuid: Uuid) -> Option<i32> {
        self.inner.table.lock().domains.get(&uuid).map(|d| d.pid)
    }

    fn suspend_inner(&self, domain: &Domain, image: &Path) -> Result<()> {
        let uuid = domain.uuid;
        let was_running = domain.state().run == RunState::Running;
        domain.set_intent(Intent::Exit { keep_reservation: false });
        let rollback = |e: HypervisorError| {
            let _ = std::fs::remove_file(image);
            if domain.withdraw_intent() && was_running {
                domain.state().run = RunState::Running;
                let _ = domain.execute("cont", None);
            }
            e
        };
        if was_running {
            domain.state().run = RunState::Paused;
            domain.execute("stop", None).map_err(rollback)?;
        }
        match std::fs::remove_file(image) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(rollback(HypervisorError::Image(format!("cannot replace {}: {e}", image.display()))))
            }
            _ => {}
        }
        domain
            .execute(
                "migrate",
                Some(json!({"channels": [{"channel-type": "main", "addr": {"transport": "file", "filename": image.to_string_lossy(), "offset": state::HEADER_SIZE}}]})),
            )
            .map_err(rollback)?;
        let deadline = Instant::now() + self.inner.config.migration_timeout;
        loop {
            let status = domain.execute("query-migrate", None).map_err(rollback)?;
            match status.get("status").and_then(Value::as_str).unwrap_or("") {
                "completed" => break,
                "failed" | "cancelled" => {
                    let why = status.get("error-desc").and_then(Value::as_str).unwrap_or("no reason given").to_owned();
                    return Err(rollback(HypervisorError::Image(format!("QEMU could not save to {}: {why}", image.display()))));
                }
                _ if Instant::now() > deadline => {
                    let _ = domain.execute("migrate_cancel", None);
                    return Err(rollback(HypervisorError::Image(format!("saving to {} took too long", image.display()))));
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let record = domain.state().record.clone();
        state::write_header(image, &record).map_err(|e| rollback(HypervisorError::Image(e)))?;
        domain.force_end(self.inner.config.quit_timeout)?;
        tracing::info!(%uuid, image = %image.display(), "qemu: domain suspended");
        Ok(())
    }

    fn hard_reboot(&self, domain: &Domain) -> Result<DomId> {
        let uuid = domain.uuid;
        domain.set_intent(Intent::Reset);
        let mark = domain.event_mark();
        let reset = domain
            .execute("set-action", Some(json!({"reboot": "reset"})))
            .and_then(|_| domain.execute("system_reset", None))
            .map(|_| domain.wait_event(mark, Duration::from_secs(5), |name, _| name == "RESET"));
        let restored = domain.execute("set-action", Some(json!({"reboot": "shutdown"})));
        match reset {
            Ok(true) if restored.is_ok() => {}
            outcome => {
                // Without an in-place reset, a reboot is a new process, as a clean reboot is.
                tracing::warn!(%uuid, ?outcome, "qemu: in-place reset failed; restarting the process instead");
                let mut record = domain.state().record.clone();
                record.boot_vcpus = record.vcpus();
                record.hotplugged_cpus.clear();
                return self.inner.restart(domain, record);
            }
        }
        if domain.state().run == RunState::Paused {
            domain.state().run = RunState::Running;
            domain.execute("cont", None)?;
        }
        let domid = self.inner.table.lock().allocate_domid()?;
        {
            let mut st = domain.state();
            st.domid = domid;
            st.start_time = unix_now();
            st.intent = Intent::None;
        }
        domain.persist()?;
        Ok(domid)
    }

    /// Asks the guest to release device `id` and waits until QEMU has deleted it. The end is
    /// seen by the DEVICE_DELETED event or, since not every device reports its own deletion
    /// (a vCPU reports its local APIC's), by the device leaving /machine/peripheral.
    fn unplug(&self, domain: &Domain, id: &str) -> Result<()> {
        let mark = domain.event_mark();
        domain.execute("device_del", Some(json!({ "id": id })))?;
        let limit = self.inner.config.unplug_timeout;
        let deadline = Instant::now() + limit;
        let own_path = format!("/machine/peripheral/{id}");
        loop {
            let deleted = domain.wait_event(mark, Duration::from_millis(200), |name, data| {
                name == "DEVICE_DELETED"
                    && (data.get("device").and_then(Value::as_str) == Some(id)
                        || data.get("path").and_then(Value::as_str) == Some(own_path.as_str()))
            });
            if deleted {
                return Ok(());
            }
            let children = domain.execute("qom-list", Some(json!({"path": "/machine/peripheral"})))?;
            if !children.as_array().into_iter().flatten().any(|c| c.get("name").and_then(Value::as_str) == Some(id)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(backend(format!("the guest did not release device {id} within {} s; it stays attached", limit.as_secs())));
            }
        }
    }
}

fn lock_state_dir(dir: &Path) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| backend(format!("cannot open {}: {e}", path.display())))?;
    // SAFETY: flock only reads the descriptor, which `file` keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(backend(format!("another xencim daemon is using {}", dir.display())));
    }
    Ok(file)
}

impl Hypervisor for QemuHypervisor {
    fn host_info(&self) -> HostInfo {
        let inner = &self.inner;
        let mem = metrics::meminfo();
        let memory_free = {
            let table = inner.table.lock();
            inner.capacity(&table).saturating_sub(table.reserved())
        };
        HostInfo {
            hostname: inner.config.hostname.clone(),
            memory_total: mem.total,
            memory_free,
            cpu_count: inner.cpu.count,
            cpu_vendor: inner.cpu.vendor.clone(),
            cpu_model_name: inner.cpu.model_name.clone(),
            cpu_speed_mhz: inner.cpu.mhz,
            cpu_flags: inner.cpu.flags.clone(),
            backend: "qemu",
            backend_version: format!("{} ({})", inner.version, inner.accel.name()),
        }
    }

    fn start(&self, config: &DomainConfig, paused: bool) -> Result<DomId> {
        let inner = &self.inner;
        validate_config(config, inner.cpu.count)?;
        let record = inner.new_record(config)?;
        let reservation = inner.config.reservation(inner.accel, record.memory_static_max);
        let domid = inner.reserve(config.uuid, reservation)?;
        match inner.launch(record, domid, reservation, Boot::Fresh { paused }) {
            Ok(_) => {
                tracing::info!(uuid = %config.uuid, domid, paused, "qemu: domain started");
                Ok(domid)
            }
            Err(e) => {
                inner.unreserve(config.uuid);
                Err(e)
            }
        }
    }

    fn clean_shutdown(&self, uuid: Uuid, timeout_secs: u64) -> Result<()> {
        let domain = self.inner.get(uuid)?;
        let _op = domain.op.lock();
        domain.require(RunState::Running)?;
        domain.set_intent(Intent::Exit { keep_reservation: false });
        match domain.execute("system_powerdown", None) {
            Ok(_) | Err(HypervisorError::NoSuchDomain(_)) => {}
            Err(e) => {
                domain.withdraw_intent();
                return Err(e);
            }
        }
        if domain.wait_gone(Duration::from_secs(timeout_secs)) || !domain.withdraw_intent() {
            domain.wait_gone(self.inner.config.quit_timeout);
            tracing::info!(%uuid, "qemu: domain shut down cleanly");
            return Ok(());
        }
        Err(HypervisorError::ShutdownTimeout(timeout_secs))
    }

    fn hard_shutdown(&self, uuid: Uuid) -> Result<()> {
        let domain = self.inner.get(uuid)?;
        domain.set_intent(Intent::Exit { keep_reservation: false });
        domain.force_end(self.inner.config.quit_timeout)?;
        tracing::info!(%uuid, "qemu: domain destroyed");
        Ok(())
    }

    fn reboot(&self, uuid: Uuid, clean: bool, timeout_secs: u64) -> Result<DomId> {
        let domain = self.inner.get(uuid)?;
        let _op = domain.op.lock();
        domain.ensure_live()?;
        if !clean {
            let domid = self.hard_reboot(&domain)?;
            tracing::info!(%uuid, domid, "qemu: domain reset");
            return Ok(domid);
        }
        domain.require(RunState::Running)?;
        domain.set_intent(Intent::Exit { keep_reservation: true });
        match domain.execute("system_powerdown", None) {
            Ok(_) | Err(HypervisorError::NoSuchDomain(_)) => {}
            Err(e) => {
                domain.withdraw_intent();
                return Err(e);
            }
        }
        if !domain.wait_gone(Duration::from_secs(timeout_secs)) && domain.withdraw_intent() {
            return Err(HypervisorError::ShutdownTimeout(timeout_secs));
        }
        domain.wait_gone(self.inner.config.quit_timeout);
        let mut record = domain.state().record.clone();
        record.boot_vcpus = record.vcpus();
        record.hotplugged_cpus.clear();
        let domid = self.inner.restart(&domain, record)?;
        tracing::info!(%uuid, domid, "qemu: domain rebooted");
        Ok(domid)
    }

    fn pause(&self, uuid: Uuid) -> Result<()> {
        let domain = self.inner.get(uuid)?;
        let _op = domain.op.lock();
        domain.require(RunState::Running)?;
        domain.state().run = RunState::Paused;
        domain.execute("stop", None).inspect_err(|_| domain.state().run = RunState::Running)?;
        Ok(())
    }

    fn unpause(&self, uuid: Uuid) -> Result<()> {
        let domain = self.inner.get(uuid)?;
        let _op = domain.op.lock();
        domain.require(RunState::Paused)?;
        domain.state().run = RunState::Running;
        domain.execute("cont", None).inspect_err(|_| domain.state().run = RunState::Paused)?;
        Ok(())
    }

    fn suspend(&self, uuid: Uuid, image: &Path) -> Result<()> {
        if image.file_name().is_none() {
            return Err(invalid(format!("suspend image path {} names no file", image.display())));
        }
        let domain = self.inner.get(uuid)?;
        let _op = domain.op.lock();
        domain.ensure_live()?;
        if let Some(parent) = image.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| HypervisorError::Image(format!("cannot create {}: {e}", parent.display())))?;
        }
        self.suspend_inner(&domain, image)
    }

    fn resume(&self, config: &DomainConfig, image: &Path, paused: bool) -> Result<DomId> {
        let inner = &self.inner;
        validate_config(config, inner.cpu.count)?;
        let mut record = state::read_header(image).map_err(HypervisorError::Image)?;
        if record.uuid != config.uuid {
            return Err(HypervisorError::Image(format!("{} holds VM {}, not {}", image.display(), record.uuid, config.uuid)));
        }
        if record.memory_static_max != cmdline::memory_mib(config.memory_static_max) << 20 || record.vcpus_max != config.vcpus_max {
            tracing::warn!(uuid = %config.uuid, "qemu: the VM's memory or vCPU limits changed since the suspend; the image's are used");
        }
        for disk in &record.disks {
            if let Some(path) = disk.path.as_ref().filter(|p| !p.exists()) {
                return Err(invalid(format!("the image {} of disk {} is gone", path.display(), disk.device)));
            }
        }
        // The saved CPU state needs the same CPU model; only the accelerator may differ.
        record.accel = inner.accel;
        record.name = config.name.clone();
        let reservation = inner.config.reservation(inner.accel, record.memory_static_max);
        let domid = inner.reserve(config.uuid, reservation)?;
        match inner.launch(record, domid, reservation, Boot::Incoming { image, paused }) {
            Ok(_) => {
                tracing::info!(uuid = %config.uuid, domid, image = %image.display(), "qemu: domain resumed");
                Ok(domid)
            }
            Err(e) => {
                inner.unreserve(config.uuid);
                Err(e)
            }
        }
    }

    fn set_memory_target(&self, uuid: Uuid, target: u64) -> Result<()> {
        let domain = self.inner.get(uuid)?;
        let _op = domain.op.lock();
        domain.ensure_live()?;
        let max = domain.state().record.memory_static_max;
        if target == 0 || target > max {
            return Err(invalid(format!("memory target {target} is outside 1..={max}")));
        }
        domain.execute("balloon", Some(json!({ "value": target })))?;
        domain.state().record.memory_target = target;
        domain.persist()
    }

    fn set_vcpus(&self, uuid: Uuid, vcpus: u32) -> Result<()> {
        let domain = self.inner.get(uuid)?;
        let _op = domain.op.lock();
        domain.ensure_live()?;
        let (max, boot, current) = {
            let st = domain.state();
            (st.record.vcpus_max, st.record.boot_vcpus, st.record.vcpus())
        };
        if vcpus == 0 || vcpus > max {
            return Err(invalid(format!("{vcpus} vCPUs is outside 1..={max}")));
        }
        if vcpus < boot {
            return Err(invalid(format!("the domain booted with {boot} vCPUs; only vCPUs added since can be removed")));
        }
        if vcpus > current {
            let slots = domain
                .qmp
                .execute("query-hotpluggable-cpus", None)
                .map_err(|e| invalid(format!("this machine type cannot hot-plug vCPUs: {e}")))?;
            let mut free: Vec<CpuSlot> = slots
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s.get("qom-path").is_none())
                .filter_map(|s| {
                    let props = s.get("props")?;
                    let socket_id = props.get("socket-id").and_then(Value::as_i64).unwrap_or(0);
                    Some(CpuSlot {
                        id: format!("vcpu{socket_id}"),
                        driver: s.get("type")?.as_str()?.to_owned(),
                        socket_id,
                        core_id: props.get("core-id").and_then(Value::as_i64).unwrap_or(0),
                        thread_id: props.get("thread-id").and_then(Value::as_i64).unwrap_or(0),
                    })
                })
                .collect();
            free.sort_by_key(|c| c.socket_id);
            for cpu in free.into_iter().take((vcpus - current) as usize) {
                domain.execute(
                    "device_add",
                    Some(json!({"driver": cpu.driver, "id": cpu.id, "socket-id": cpu.socket_id, "core-id": cpu.core_id, "thread-id": cpu.thread_id})),
                )?;
                domain.state().record.hotplugged_cpus.push(cpu);
                domain.persist()?;
            }
        } else {
            while domain.state().record.vcpus() > vcpus {
                let Some(cpu) = domain.state().record.hotplugged_cpus.last().cloned() else { break };
                self.unplug(&domain, &cpu.id)?;
                domain.state().record.hotplugged_cpus.pop();
                domain.persist()?;
            }
        }
        domain.refresh_vcpu_threads()?;
        if domain.state().record.vcpus() != vcpus {
            return Err(invalid(format!("this machine has room for {} vCPUs only", domain.state().record.vcpus())));
        }
        Ok(())
    }

    fn attach_disk(&self, uuid: Uuid, disk: &DiskConfig) -> Result<()> {
        validate_disk(disk)?;
        if disk.kind != DiskKind::Disk {
            return Err(invalid(format!(
                "{} is a {:?} drive; only disks can be hot-plugged (CD and floppy drives are attached at start)",
                disk.device, disk.kind
            )));
        }
        let domain = self.inner.get(uuid)?;
        let _op = domain.op.lock();
        domain.ensure_live()?;
        let rec = {
            let st = domain.state();
            if st.record.disks.iter().any(|d| d.device == disk.device) {
                return Err(HypervisorError::DeviceExists { device: disk.device.clone() });
            }
            let mut rec = DiskRec::new(disk, place_disk(&st.record, disk)?);
            rec.path = rec.path.as_deref().map(absolute);
            rec
        };
        let nodes = cmdline::blockdevs(&rec);
        let mut added: Vec<String> = Vec::new();
        let undo = |added: &[String]| {
            for node in added.iter().rev() {
                let _ = domain.execute("blockdev-del", Some(json!({ "node-name": node })));
            }
        };
        for node in nodes {
            let name = node["node-name"].as_str().unwrap_or_default().to_owned();
            if let Err(e) = domain.execute("blockdev-add", Some(node)) {
                undo(&added);
                return Err(e);
            }
            added.push(name);
        }
        if let Err(e) = domain.execute("device_add", Some(cmdline::disk_device(&rec, None))) {
            undo(&added);
            return Err(e);
        }
        domain.state().record.disks.push(rec);
        domain.persist()
    }

    fn detach_disk(&self, uuid: Uuid, device: &str) -> Result<()> {
        let domain = self.inner.get(uuid)?;
        let _op = domain.op.lock();
        domain.ensure_live()?;
        let rec = domain
            .state()
            .record
            .disks
            .iter()
            .find(|d| d.device == device)
            .cloned()
            .ok_or_else(|| HypervisorError::NoSuchDevice { device: device.to_owned() })?;
        if rec.kind != DiskKindRec::Disk {
            return Err(invalid(format!("{device} is a {:?} drive, which cannot be unplugged while the domain runs", rec.kind)));
        }
        self.unplug(&domain, &rec.id())?;
        for node in [rec.format_node(), rec.file_node()] {
            if let Err(e) = domain.execute("blockdev-del", Some(json!({ "node-name": node }))) {
                tracing::warn!(%uuid, device, error = %e, "qemu: could not remove a block node after unplug");
            }
        }
        domain.state().record.disks.retain(|d| d.device != device);
        domain.persist()
    }

    fn attach_nic(&self, uuid: Uuid, nic: &NicConfig) -> Result<()> {
        validate_nic(nic)?;
        let domain = self.inner.get(uuid)?;
        let _op = domain.op.lock();
        domain.ensure_live()?;
        let rec = {
            let st = domain.state();
            if st.record.nics.iter().any(|n| n.device == nic.device) {
                return Err(HypervisorError::DeviceExists { device: nic.device.clone() });
            }
            let slot = cmdline::free_pci_slot(&st.record).ok_or_else(|| invalid("no free PCI slot for another NIC"))?;
            NicRec::new(nic, self.inner.network_backend(&nic.bridge), slot)
        };
        domain.execute("netdev_add", Some(cmdline::netdev(&rec)))?;
        if let Err(e) = domain.execute("device_add", Some(cmdline::nic_device(&rec))) {
            let _ = domain.execute("netdev_del", Some(json!({ "id": rec.netdev() })));
            return Err(e);
        }
        domain.state().record.nics.push(rec);
        domain.persist()
    }

    fn detach_nic(&self, uuid: Uuid, device: &str) -> Result<()> {
        let domain = self.inner.get(uuid)?;
        let _op = domain.op.lock();
        domain.ensure_live()?;
        let rec = domain
            .state()
            .record
            .nics
            .iter()
            .find(|n| n.device == device)
            .cloned()
            .ok_or_else(|| HypervisorError::NoSuchDevice { device: device.to_owned() })?;
        self.unplug(&domain, &rec.id())?;
        if let Err(e) = domain.execute("netdev_del", Some(json!({ "id": rec.netdev() }))) {
            tracing::warn!(%uuid, device, error = %e, "qemu: could not remove a netdev after unplug");
        }
        domain.state().record.nics.retain(|n| n.device != device);
        domain.persist()
    }

    fn send_sysrq(&self, uuid: Uuid, key: char) -> Result<()> {
        if !(key.is_ascii_lowercase() || key.is_ascii_digit()) {
            return Err(invalid(format!("{key:?} is not a SysRq key")));
        }
        let domain = self.inner.get(uuid)?;
        domain.require(RunState::Running)?;
        let keys =
            json!([{"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "sysrq"}, {"type": "qcode", "data": key.to_string()}]);
        domain.execute("send-key", Some(json!({ "keys": keys })))?;
        Ok(())
    }

    fn list(&self) -> Vec<DomainInfo> {
        let domains: Vec<Arc<Domain>> = self.inner.table.lock().domains.values().cloned().collect();
        let mut infos: Vec<DomainInfo> = domains.iter().filter_map(|d| d.info()).collect();
        infos.sort_unstable_by_key(|i| i.domid);
        infos
    }

    fn info(&self, uuid: Uuid) -> Option<DomainInfo> {
        self.inner.get(uuid).ok()?.info()
    }

    fn take_events(&self) -> Option<Receiver<DomainEvent>> {
        self.inner.receiver.lock().take()
    }
}
