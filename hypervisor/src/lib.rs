//! Native domain control behind one trait.
//!
//! The Xen-API model drives every backend through [`Hypervisor`] and never learns which one runs.
//! Domains are named by the VM's UUID, because that is the identity the model keeps across
//! restarts; the domid is the backend's runtime handle and changes on every boot.
//!
//! Backends are sibling modules: [`sim`] is the in-process deterministic hypervisor (the
//! embedded default); [`qemu`] runs real guests, one QEMU process each, driven over QMP.

pub mod qemu;
pub mod sim;

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use uuid::Uuid;

/// A backend's runtime handle for a running domain. dom0 is always 0.
pub type DomId = u32;

/// Everything a backend needs to build a domain. The model derives it from the VM record and
/// its devices at start/resume time.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainConfig {
    pub uuid: Uuid,
    pub name: String,
    /// Memory reservation: the domain may never grow beyond this (VM.memory_static_max).
    pub memory_static_max: u64,
    /// Balloon target at boot (VM.memory_dynamic_max).
    pub memory_target: u64,
    pub vcpus_max: u32,
    pub vcpus_at_startup: u32,
    pub kernel: Option<PathBuf>,
    pub ramdisk: Option<PathBuf>,
    pub cmdline: String,
    pub disks: Vec<DiskConfig>,
    pub nics: Vec<NicConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    /// Guest device name, as in VBD.device (`xvda`, `hdc`).
    pub device: String,
    /// Backing image; `None` for an empty CD drive.
    pub path: Option<PathBuf>,
    pub read_only: bool,
    pub kind: DiskKind,
    pub bootable: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskKind {
    Disk,
    Cdrom,
    Floppy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicConfig {
    /// Guest device index, as in VIF.device (`0`, `1`, ...).
    pub device: String,
    pub mac: String,
    /// Host bridge the NIC joins (network.bridge); empty means user-mode networking.
    pub bridge: String,
    pub mtu: u32,
}

/// The run state of a live domain. A domain that has stopped is no longer listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Running,
    Paused,
}

/// What the backend reports about a live domain.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainInfo {
    pub uuid: Uuid,
    pub domid: DomId,
    pub state: RunState,
    pub vcpus: u32,
    /// Memory the domain holds now (after ballooning), in bytes.
    pub memory_actual: u64,
    /// Memory reserved for the domain against the host total, in bytes.
    pub memory_reserved: u64,
    /// Guest CPU time consumed, per vCPU, in nanoseconds.
    pub vcpu_time_ns: Vec<u64>,
    /// Seconds since the UNIX epoch when this domain (this domid) started.
    pub start_time: i64,
    pub disks: Vec<String>,
    pub nics: Vec<String>,
}

/// Facts about the physical host that the model publishes as host, host_cpu and host_metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct HostInfo {
    pub hostname: String,
    pub memory_total: u64,
    pub memory_free: u64,
    pub cpu_count: u32,
    pub cpu_vendor: String,
    pub cpu_model_name: String,
    pub cpu_speed_mhz: u64,
    pub cpu_flags: String,
    pub backend: &'static str,
    pub backend_version: String,
}

/// Why a domain ended on its own (or at its guest's request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The guest powered itself off.
    Poweroff,
    /// The guest asked to be rebooted.
    Reboot,
    /// The guest (or the process behind it) died.
    Crash,
}

/// Changes the hypervisor makes on its own, delivered in order on the channel from
/// [`Hypervisor::take_events`]. A domain that has ended is already gone from `list` when its
/// event arrives.
#[derive(Clone, Debug, PartialEq)]
pub enum DomainEvent {
    Shutdown { uuid: Uuid, domid: DomId, reason: ShutdownReason },
    Paused { uuid: Uuid, domid: DomId },
    Resumed { uuid: Uuid, domid: DomId },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HypervisorError {
    #[error("not enough free memory on the host: {needed} bytes needed, {available} available")]
    NotEnoughMemory { needed: u64, available: u64 },
    #[error("the host has {pcpus} physical CPUs, fewer than the {vcpus} requested")]
    NotEnoughPcpus { vcpus: u32, pcpus: u32 },
    #[error("no domain for VM {0}")]
    NoSuchDomain(Uuid),
    #[error("a domain for VM {0} already exists")]
    DomainExists(Uuid),
    #[error("domain of VM {uuid} is {state:?}, which does not allow this")]
    BadState { uuid: Uuid, state: RunState },
    #[error("the guest did not shut down within {0} seconds")]
    ShutdownTimeout(u64),
    #[error("device {device} is already attached")]
    DeviceExists { device: String },
    #[error("device {device} is not attached")]
    NoSuchDevice { device: String },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("suspend image: {0}")]
    Image(String),
    #[error("{0}")]
    Backend(String),
}

pub type Result<T> = std::result::Result<T, HypervisorError>;

/// Native control of domains. Every method validates its arguments before any side effect.
/// Calls may block (a clean shutdown waits for the guest), so the model calls them off its
/// async executor.
pub trait Hypervisor: Send + Sync {
    fn host_info(&self) -> HostInfo;

    /// Build and boot a domain; with `paused` it is created but its vCPUs do not run.
    fn start(&self, config: &DomainConfig, paused: bool) -> Result<DomId>;

    /// Ask the guest to power off and wait up to `timeout_secs` for it. On timeout the domain
    /// keeps running and `ShutdownTimeout` is returned; the caller decides whether to force.
    fn clean_shutdown(&self, uuid: Uuid, timeout_secs: u64) -> Result<()>;

    /// End the domain at once.
    fn hard_shutdown(&self, uuid: Uuid) -> Result<()>;

    /// Reboot the domain; `clean` asks the guest first. Returns the new domid.
    fn reboot(&self, uuid: Uuid, clean: bool, timeout_secs: u64) -> Result<DomId>;

    fn pause(&self, uuid: Uuid) -> Result<()>;
    fn unpause(&self, uuid: Uuid) -> Result<()>;

    /// Save the domain's memory to `image` and end the domain.
    fn suspend(&self, uuid: Uuid, image: &std::path::Path) -> Result<()>;

    /// Rebuild a domain from `image`. The image is left in place; the model removes it once the
    /// domain runs.
    fn resume(&self, config: &DomainConfig, image: &std::path::Path, paused: bool) -> Result<DomId>;

    /// Balloon a live domain to `target` bytes (never above its static maximum).
    fn set_memory_target(&self, uuid: Uuid, target: u64) -> Result<()>;
    /// Change the number of online vCPUs of a live domain (never above its maximum).
    fn set_vcpus(&self, uuid: Uuid, vcpus: u32) -> Result<()>;

    fn attach_disk(&self, uuid: Uuid, disk: &DiskConfig) -> Result<()>;
    fn detach_disk(&self, uuid: Uuid, device: &str) -> Result<()>;
    fn attach_nic(&self, uuid: Uuid, nic: &NicConfig) -> Result<()>;
    fn detach_nic(&self, uuid: Uuid, device: &str) -> Result<()>;

    /// Deliver a magic SysRq key to the guest, as `xl sysrq` does. A Linux guest powers off on
    /// `o`, reboots on `b` and crashes on `c`; the resulting domain events follow.
    fn send_sysrq(&self, uuid: Uuid, key: char) -> Result<()>;

    /// Live domains, dom0 excluded.
    fn list(&self) -> Vec<DomainInfo>;
    fn info(&self, uuid: Uuid) -> Option<DomainInfo>;

    /// The channel of domain events. It can be taken once; later calls return `None`.
    fn take_events(&self) -> Option<Receiver<DomainEvent>>;
}
