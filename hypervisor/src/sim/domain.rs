//! One simulated domain: its run state, resources, devices and CPU-time bookkeeping.

use super::image::{SavedDisk, SavedNic, SavedState};
use crate::{DiskConfig, DomId, DomainConfig, DomainInfo, HypervisorError, NicConfig, Result, RunState};
use uuid::Uuid;

/// Most vCPUs one simulated domain may have, whatever the host. Beyond this a request is
/// malformed rather than merely too big for this host, hence `Invalid`, not `NotEnoughPcpus`.
pub const MAX_VCPUS: u32 = 64;

/// The sim guest bumps its heartbeat counter once per millisecond it runs, like a tick counter
/// of a real kernel: it only moves while the guest executes, and survives suspend/resume.
pub const HEARTBEAT_PERIOD_NS: u64 = 1_000_000;

/// CPU time of a simulated guest. The guest keeps every online vCPU busy, so each online vCPU
/// accrues exactly the time the domain spends Running. Figures are banked whenever the set of
/// accruing vCPUs changes (pause, unpause, vCPU hot-plug), so only the current stretch is ever
/// computed from the clock.
#[derive(Clone, Debug)]
struct CpuAccount {
    /// One slot per possible vCPU (`vcpus_max`): an offlined vCPU keeps its time and continues
    /// from it when it comes back.
    banked_ns: Vec<u64>,
    uptime_ns: u64,
    /// Monotonic time the banked figures run to, while the domain runs.
    running_since: Option<u64>,
}

impl CpuAccount {
    fn new(banked_ns: Vec<u64>, uptime_ns: u64, running_at: Option<u64>) -> Self {
        CpuAccount { banked_ns, uptime_ns, running_since: running_at }
    }

    fn elapsed(&self, now: u64) -> u64 {
        self.running_since.map_or(0, |since| now.saturating_sub(since))
    }

    fn settle(&mut self, now: u64, online: u32) {
        let elapsed = self.elapsed(now);
        for slot in self.banked_ns.iter_mut().take(online as usize) {
            *slot = slot.saturating_add(elapsed);
        }
        self.uptime_ns = self.uptime_ns.saturating_add(elapsed);
        if let Some(since) = self.running_since {
            // Never move the mark backwards: that would count a stretch twice.
            self.running_since = Some(since.max(now));
        }
    }

    fn stop(&mut self, now: u64, online: u32) {
        self.settle(now, online);
        self.running_since = None;
    }

    fn run(&mut self, now: u64) {
        self.running_since = Some(now);
    }

    fn vcpu_times(&self, now: u64, online: u32) -> Vec<u64> {
        let elapsed = self.elapsed(now);
        self.banked_ns.iter().take(online as usize).map(|t| t.saturating_add(elapsed)).collect()
    }

    fn all_vcpu_times(&self, now: u64, online: u32) -> Vec<u64> {
        let elapsed = self.elapsed(now);
        self.banked_ns.iter().enumerate().map(|(i, t)| if i < online as usize { t.saturating_add(elapsed) } else { *t }).collect()
    }

    fn uptime_ns(&self, now: u64) -> u64 {
        self.uptime_ns.saturating_add(self.elapsed(now))
    }
}

#[derive(Clone, Debug)]
pub struct Domain {
    pub uuid: Uuid,
    pub name: String,
    pub domid: DomId,
    pub state: RunState,
    /// Also the reservation against the host total, for the whole life of the domain.
    pub memory_static_max: u64,
    pub memory_target: u64,
    pub vcpus_max: u32,
    pub vcpus: u32,
    pub start_time: i64,
    pub disks: Vec<DiskConfig>,
    pub nics: Vec<NicConfig>,
    cpu: CpuAccount,
}

impl Domain {
    /// A freshly booted domain. `config` must have passed [`validate_config`].
    pub fn boot(config: &DomainConfig, domid: DomId, paused: bool, now: u64, unix: i64) -> Self {
        Domain {
            uuid: config.uuid,
            name: config.name.clone(),
            domid,
            state: if paused { RunState::Paused } else { RunState::Running },
            memory_static_max: config.memory_static_max,
            memory_target: config.memory_target,
            vcpus_max: config.vcpus_max,
            vcpus: config.vcpus_at_startup,
            start_time: unix,
            disks: config.disks.clone(),
            nics: config.nics.clone(),
            cpu: CpuAccount::new(vec![0; config.vcpus_max as usize], 0, (!paused).then_some(now)),
        }
    }

    /// A domain rebuilt from a suspend image. Limits come from `config` (what the model allows
    /// now), the guest's own state from `saved`; [`SavedState::check_against`] has verified
    /// that the two agree.
    pub fn restore(config: &DomainConfig, saved: SavedState, domid: DomId, paused: bool, now: u64, unix: i64) -> Self {
        let mut banked = saved.vcpu_time_ns;
        banked.resize(config.vcpus_max as usize, 0);
        Domain {
            uuid: config.uuid,
            name: config.name.clone(),
            domid,
            state: if paused { RunState::Paused } else { RunState::Running },
            memory_static_max: config.memory_static_max,
            memory_target: saved.memory_target,
            vcpus_max: config.vcpus_max,
            vcpus: saved.vcpus,
            start_time: unix,
            disks: saved.disks.into_iter().map(DiskConfig::from).collect(),
            nics: saved.nics.into_iter().map(NicConfig::from).collect(),
            cpu: CpuAccount::new(banked, saved.guest_uptime_ns, (!paused).then_some(now)),
        }
    }

    /// What `suspend` writes: the guest as it is at `now`.
    pub fn snapshot(&self, now: u64) -> SavedState {
        let uptime = self.cpu.uptime_ns(now);
        SavedState {
            uuid: self.uuid,
            name: self.name.clone(),
            memory_static_max: self.memory_static_max,
            memory_target: self.memory_target,
            vcpus_max: self.vcpus_max,
            vcpus: self.vcpus,
            vcpu_time_ns: self.cpu.all_vcpu_times(now, self.vcpus),
            guest_uptime_ns: uptime,
            heartbeat: uptime / HEARTBEAT_PERIOD_NS,
            disks: self.disks.iter().map(SavedDisk::from).collect(),
            nics: self.nics.iter().map(SavedNic::from).collect(),
        }
    }

    /// The domain boots again under a new domid: the guest starts from scratch (CPU time and
    /// heartbeat restart), while live settings and hot-plugged devices carry over as they do
    /// in the VM record.
    pub fn reboot(&mut self, domid: DomId, now: u64, unix: i64) {
        self.domid = domid;
        self.state = RunState::Running;
        self.start_time = unix;
        self.cpu = CpuAccount::new(vec![0; self.vcpus_max as usize], 0, Some(now));
    }

    pub fn pause(&mut self, now: u64) {
        self.cpu.stop(now, self.vcpus);
        self.state = RunState::Paused;
    }

    pub fn unpause(&mut self, now: u64) {
        self.cpu.run(now);
        self.state = RunState::Running;
    }

    pub fn set_vcpus(&mut self, vcpus: u32, now: u64) {
        self.cpu.settle(now, self.vcpus);
        self.vcpus = vcpus;
    }

    pub fn heartbeat(&self, now: u64) -> u64 {
        self.cpu.uptime_ns(now) / HEARTBEAT_PERIOD_NS
    }

    pub fn info(&self, now: u64) -> DomainInfo {
        DomainInfo {
            uuid: self.uuid,
            domid: self.domid,
            state: self.state,
            vcpus: self.vcpus,
            memory_actual: self.memory_target,
            memory_reserved: self.memory_static_max,
            vcpu_time_ns: self.cpu.vcpu_times(now, self.vcpus),
            start_time: self.start_time,
            disks: self.disks.iter().map(|d| d.device.clone()).collect(),
            nics: self.nics.iter().map(|n| n.device.clone()).collect(),
        }
    }
}

fn invalid(message: impl Into<String>) -> HypervisorError {
    HypervisorError::Invalid(message.into())
}

/// Checks a domain description on its own and against the host's CPUs; memory fit is checked
/// later, under the lock, against the reservations of that moment.
pub fn validate_config(config: &DomainConfig, pcpus: u32) -> Result<()> {
    if config.uuid.is_nil() {
        return Err(invalid("the nil UUID cannot name a domain"));
    }
    if config.memory_static_max == 0 {
        return Err(invalid("memory_static_max must be positive"));
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
    validate_devices(&config.disks, &config.nics)
}

pub fn validate_devices(disks: &[DiskConfig], nics: &[NicConfig]) -> Result<()> {
    for (i, disk) in disks.iter().enumerate() {
        validate_disk(disk)?;
        if disks[..i].iter().any(|d| d.device == disk.device) {
            return Err(invalid(format!("disk {} appears twice", disk.device)));
        }
    }
    for (i, nic) in nics.iter().enumerate() {
        validate_nic(nic)?;
        if nics[..i].iter().any(|n| n.device == nic.device) {
            return Err(invalid(format!("NIC {} appears twice", nic.device)));
        }
    }
    Ok(())
}

/// Guest disk names are short identifiers such as `xvda`, `hdc` or `sda1`.
pub fn validate_disk(disk: &DiskConfig) -> Result<()> {
    let name = &disk.device;
    let well_formed = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !well_formed {
        return Err(invalid(format!("{name:?} is not a disk device name")));
    }
    Ok(())
}

/// NICs are named by their index, as VIF.device is.
pub fn validate_nic(nic: &NicConfig) -> Result<()> {
    if nic.device.parse::<u16>().map(|i| i.to_string() != nic.device).unwrap_or(true) {
        return Err(invalid(format!("{:?} is not a NIC device index", nic.device)));
    }
    // An empty MAC is let through: a simulated NIC never puts a frame on a wire.
    if !nic.mac.is_empty() && !is_mac(&nic.mac) {
        return Err(invalid(format!("{:?} is not a MAC address", nic.mac)));
    }
    if nic.mtu == 0 {
        return Err(invalid(format!("NIC {} has MTU 0", nic.device)));
    }
    Ok(())
}

/// Six colon-separated hex octets.
fn is_mac(mac: &str) -> bool {
    let octets: Vec<&str> = mac.split(':').collect();
    octets.len() == 6 && octets.iter().all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()))
}
