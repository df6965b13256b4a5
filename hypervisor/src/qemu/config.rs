//! Settings of the qemu backend.

use std::path::PathBuf;
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// Which QEMU accelerator runs the guests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccelChoice {
    /// KVM when a probe guest actually runs under it, TCG otherwise (see [`super::probe`]).
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// The accelerator in use once [`AccelChoice::Auto`] is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// How a NIC whose network names a bridge reaches the outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// Every NIC gets QEMU's user-mode network (NAT, no privileges needed).
    #[default]
    User,
    /// A NIC joins its network's bridge through qemu-bridge-helper (a tap device) when that
    /// bridge exists on the host; otherwise it falls back to user-mode networking.
    Bridge,
}

#[derive(Clone, Debug, PartialEq)]
pub struct QemuConfig {
    /// Per-VM directories (`vms/<uuid>/`: `domain.json`, `qemu.pid`, `qmp.sock`), serial
    /// console logs (`console/<uuid>.log`), QEMU's own logs (`log/<uuid>.log`) and the cached
    /// accelerator probe.
    pub state_dir: PathBuf,
    pub accel: AccelChoice,
    pub qemu_binary: PathBuf,
    /// How long `clean_shutdown` callers may be kept waiting is theirs to say; this bounds the
    /// wait for a process that was told to quit (`quit`, after a suspend) before it is killed.
    pub quit_timeout: Duration,
    /// How long a suspend (migration to the image file) or a resume may take.
    pub migration_timeout: Duration,
    /// Memory kept back for the host itself: starts are refused when the guests' reservations
    /// would leave less than this.
    pub host_reserve: u64,
    /// What one QEMU process costs beyond its guest's memory (device emulation, its own heap),
    /// added to every reservation. Under TCG the translation cache comes on top.
    pub vm_overhead: u64,
    /// TCG translation cache per guest, in MiB.
    pub tcg_tb_size_mib: u64,
    /// QEMU machine type; `pc` (i440fx) hot-plugs PCI devices and CPUs through ACPI without
    /// extra root ports.
    pub machine: String,
    /// CPU model; `None` means `host` under KVM and QEMU's default under TCG.
    pub cpu_model: Option<String>,
    pub network: NetworkMode,
    /// How long a QMP command may take before the backend gives up on it.
    pub qmp_timeout: Duration,
    /// How long the guest has to release a device or vCPU asked to be unplugged.
    pub unplug_timeout: Duration,
    pub hostname: String,
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            state_dir: PathBuf::from("/var/lib/xencim/qemu"),
            accel: AccelChoice::Auto,
            qemu_binary: PathBuf::from("qemu-system-x86_64"),
            quit_timeout: Duration::from_secs(10),
            migration_timeout: Duration::from_secs(600),
            host_reserve: 1024 * MIB,
            vm_overhead: 32 * MIB,
            tcg_tb_size_mib: 64,
            machine: "pc".into(),
            cpu_model: None,
            network: NetworkMode::User,
            qmp_timeout: Duration::from_secs(30),
            unplug_timeout: Duration::from_secs(15),
            hostname: super::metrics::hostname(),
        }
    }
}

impl QemuConfig {
    /// What a domain with `memory_static_max` bytes of guest memory is charged against the host.
    pub fn reservation(&self, accel: Accel, memory_static_max: u64) -> u64 {
        let tcg = if accel == Accel::Tcg { self.tcg_tb_size_mib * MIB } else { 0 };
        memory_static_max.saturating_add(self.vm_overhead).saturating_add(tcg)
    }
}
