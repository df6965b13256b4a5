//! Settings of the simulated host.

use std::path::PathBuf;
use std::time::Duration;

const GIB: u64 = 1 << 30;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Where the simulator keeps files of its own. Suspend images go wherever the caller of
    /// `suspend` says; [`crate::sim::SimHypervisor::suspend_image_path`] proposes
    /// `state_dir/suspend/<uuid>.img` for callers without a preference.
    pub state_dir: PathBuf,
    /// Physical memory of the simulated host, in bytes.
    pub memory_total: u64,
    /// Physical CPUs of the simulated host. A domain may not have more vCPUs than this.
    pub cpu_count: u32,
    /// Memory held by dom0 and therefore never available to guests, in bytes.
    pub dom0_memory: u64,
    /// How long the simulated guest takes to answer an ACPI power-off or reboot request.
    pub clean_shutdown_delay: Duration,
    pub hostname: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            state_dir: PathBuf::from("/var/lib/xencim/sim"),
            memory_total: 16 * GIB,
            cpu_count: 8,
            dom0_memory: GIB,
            clean_shutdown_delay: Duration::ZERO,
            hostname: system_hostname(),
        }
    }
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
