//! The simulated hypervisor: an in-process, deterministic backend.
//!
//! It is a product backend, not a mock: the daemon runs on it by default, and fast tests and
//! benchmarks rely on it behaving like a host. It keeps Xen's rules where the model can see
//! them: increasing domids that are never reused, memory reserved against the host total at the
//! static maximum, guests that take time to answer ACPI requests and that react to SysRq keys,
//! and suspend images that are real files.
//!
//! Nothing runs in the background. CPU time is computed from a [`Clock`] when asked for, and a
//! guest's answer to a clean shutdown is a sleep in the calling thread, so behaviour depends
//! only on the calls made and the clock.

mod clock;
mod config;
mod domain;
mod image;
#[cfg(test)]
mod tests;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::SimConfig;
pub use domain::{HEARTBEAT_PERIOD_NS, MAX_VCPUS};

use crate::{
    DiskConfig, DomId, DomainConfig, DomainEvent, DomainInfo, HostInfo, Hypervisor, HypervisorError, NicConfig, Result, RunState,
    ShutdownReason,
};
use domain::{validate_config, validate_disk, validate_nic, Domain};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub struct SimHypervisor {
    config: SimConfig,
    /// Read only with `state` locked, so that the times folded into a domain's CPU account
    /// never go backwards between two calls.
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    events: Mutex<Option<Receiver<DomainEvent>>>,
}

struct State {
    domains: HashMap<Uuid, Domain>,
    next_domid: DomId,
    /// Sum of the live domains' reservations, kept as a running total so `host_info` does not
    /// walk thousands of domains.
    reserved: u64,
    /// Unbounded, so emitting never blocks while the lock is held.
    events: Sender<DomainEvent>,
}

impl State {
    fn get(&self, uuid: Uuid) -> Result<&Domain> {
        self.domains.get(&uuid).ok_or(HypervisorError::NoSuchDomain(uuid))
    }

    fn get_mut(&mut self, uuid: Uuid) -> Result<&mut Domain> {
        self.domains.get_mut(&uuid).ok_or(HypervisorError::NoSuchDomain(uuid))
    }

    fn available(&self, host: &SimConfig) -> u64 {
        host.memory_total.saturating_sub(host.dom0_memory).saturating_sub(self.reserved)
    }

    fn check_new(&self, config: &DomainConfig, host: &SimConfig) -> Result<()> {
        if self.domains.contains_key(&config.uuid) {
            return Err(HypervisorError::DomainExists(config.uuid));
        }
        let available = self.available(host);
        if config.memory_static_max > available {
            return Err(HypervisorError::NotEnoughMemory { needed: config.memory_static_max, available });
        }
        Ok(())
    }

    /// Callers check everything else first, so a domid is only consumed by a domain that
    /// actually comes into being.
    fn allocate_domid(&mut self) -> Result<DomId> {
        let domid = self.next_domid;
        self.next_domid = domid.checked_add(1).ok_or_else(|| HypervisorError::Backend("domids are exhausted".into()))?;
        Ok(domid)
    }

    fn insert(&mut self, domain: Domain) {
        self.reserved += domain.memory_static_max;
        self.domains.insert(domain.uuid, domain);
    }

    fn remove(&mut self, uuid: Uuid) -> Option<Domain> {
        let domain = self.domains.remove(&uuid)?;
        self.reserved -= domain.memory_static_max;
        Some(domain)
    }
}

/// What became of a domain whose guest answered an ACPI request, once the lock is retaken.
enum Answer {
    /// The domain is still the one that was asked, and it is for the caller to end it.
    Answered,
    /// The domain ended some other way while we waited.
    Gone,
}

impl SimHypervisor {
    pub fn new(config: SimConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock::new()))
    }

    /// A simulator on a clock of the caller's choosing, e.g. a [`ManualClock`] for exact
    /// CPU-time figures.
    pub fn with_clock(config: SimConfig, clock: Arc<dyn Clock>) -> Self {
        let (sender, receiver) = mpsc::channel();
        SimHypervisor {
            config,
            clock,
            state: Mutex::new(State { domains: HashMap::new(), next_domid: 1, reserved: 0, events: sender }),
            events: Mutex::new(Some(receiver)),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Where a VM's suspend image goes when the caller has no better place.
    pub fn suspend_image_path(&self, uuid: Uuid) -> PathBuf {
        self.config.state_dir.join("suspend").join(format!("{uuid}.img"))
    }

    /// The counter the simulated guest advances while it runs (see [`HEARTBEAT_PERIOD_NS`]).
    /// It survives suspend/resume and restarts at a reboot, which lets tests tell a resumed
    /// guest from a rebooted one.
    pub fn guest_heartbeat(&self, uuid: Uuid) -> Option<u64> {
        let state = self.state.lock();
        let now = self.clock.monotonic_ns();
        state.domains.get(&uuid).map(|d| d.heartbeat(now))
    }

    /// Sends an ACPI request to a running guest and blocks until it answers or `timeout_secs`
    /// pass. The lock is released while waiting so other domains are not held up.
    fn ask_guest(&self, uuid: Uuid, timeout_secs: u64) -> Result<DomId> {
        let domid = {
            let state = self.state.lock();
            let domain = state.get(uuid)?;
            // A paused guest cannot see the request, so waiting would be certain to time out.
            if domain.state != RunState::Running {
                return Err(HypervisorError::BadState { uuid, state: domain.state });
            }
            domain.domid
        };
        let delay = self.config.clean_shutdown_delay;
        let timeout = Duration::from_secs(timeout_secs);
        if delay > timeout {
            std::thread::sleep(timeout);
            return Err(HypervisorError::ShutdownTimeout(timeout_secs));
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        Ok(domid)
    }

    /// Re-checks, under the lock, the domain whose guest answered: other calls may have acted
    /// on it while we waited.
    fn after_answer(state: &State, uuid: Uuid, domid: DomId, timeout_secs: u64) -> Result<Answer> {
        match state.domains.get(&uuid) {
            None => Ok(Answer::Gone),
            Some(d) if d.domid != domid => {
                Err(HypervisorError::Backend(format!("domain {domid} of VM {uuid} was replaced by domain {} during the request", d.domid)))
            }
            // Paused before it could act on the request: to the caller, that is no answer.
            Some(d) if d.state == RunState::Paused => Err(HypervisorError::ShutdownTimeout(timeout_secs)),
            Some(_) => Ok(Answer::Answered),
        }
    }

    fn reboot_locked(&self, state: &mut State, uuid: Uuid) -> Result<DomId> {
        state.get(uuid)?;
        let domid = state.allocate_domid()?;
        let now = self.clock.monotonic_ns();
        let unix = self.clock.unix_secs();
        let domain = state.get_mut(uuid)?;
        let old = domain.domid;
        domain.reboot(domid, now, unix);
        tracing::info!(%uuid, old_domid = old, domid, "sim: domain rebooted");
        Ok(domid)
    }
}

impl Hypervisor for SimHypervisor {
    fn host_info(&self) -> HostInfo {
        let memory_free = self.state.lock().available(&self.config);
        HostInfo {
            hostname: self.config.hostname.clone(),
            memory_total: self.config.memory_total,
            memory_free,
            cpu_count: self.config.cpu_count,
            cpu_vendor: "XencimSim".into(),
            cpu_model_name: "Simulated CPU".into(),
            cpu_speed_mhz: 2400,
            cpu_flags: "fpu de tsc msr pae cx8 apic sep pge cmov pat clflush mmx fxsr sse sse2 \
                        ht nx lm vmx"
                .into(),
            backend: "sim",
            backend_version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn start(&self, config: &DomainConfig, paused: bool) -> Result<DomId> {
        validate_config(config, self.config.cpu_count)?;
        let mut state = self.state.lock();
        state.check_new(config, &self.config)?;
        let domid = state.allocate_domid()?;
        let domain = Domain::boot(config, domid, paused, self.clock.monotonic_ns(), self.clock.unix_secs());
        state.insert(domain);
        tracing::info!(uuid = %config.uuid, domid, paused, "sim: domain started");
        Ok(domid)
    }

    fn clean_shutdown(&self, uuid: Uuid, timeout_secs: u64) -> Result<()> {
        let domid = self.ask_guest(uuid, timeout_secs)?;
        let mut state = self.state.lock();
        if let Answer::Answered = Self::after_answer(&state, uuid, domid, timeout_secs)? {
            state.remove(uuid);
            tracing::info!(%uuid, domid, "sim: domain shut down cleanly");
        }
        Ok(())
    }

    fn hard_shutdown(&self, uuid: Uuid) -> Result<()> {
        let mut state = self.state.lock();
        let domain = state.remove(uuid).ok_or(HypervisorError::NoSuchDomain(uuid))?;
        tracing::info!(%uuid, domid = domain.domid, "sim: domain destroyed");
        Ok(())
    }

    fn reboot(&self, uuid: Uuid, clean: bool, timeout_secs: u64) -> Result<DomId> {
        if !clean {
            return self.reboot_locked(&mut self.state.lock(), uuid);
        }
        let domid = self.ask_guest(uuid, timeout_secs)?;
        let mut state = self.state.lock();
        match Self::after_answer(&state, uuid, domid, timeout_secs)? {
            Answer::Answered => self.reboot_locked(&mut state, uuid),
            Answer::Gone => Err(HypervisorError::NoSuchDomain(uuid)),
        }
    }

    fn pause(&self, uuid: Uuid) -> Result<()> {
        let mut state = self.state.lock();
        let now = self.clock.monotonic_ns();
        let domain = state.get_mut(uuid)?;
        if domain.state != RunState::Running {
            return Err(HypervisorError::BadState { uuid, state: domain.state });
        }
        domain.pause(now);
        Ok(())
    }

    fn unpause(&self, uuid: Uuid) -> Result<()> {
        let mut state = self.state.lock();
        let now = self.clock.monotonic_ns();
        let domain = state.get_mut(uuid)?;
        if domain.state != RunState::Paused {
            return Err(HypervisorError::BadState { uuid, state: domain.state });
        }
        domain.unpause(now);
        Ok(())
    }

    fn suspend(&self, uuid: Uuid, image: &Path) -> Result<()> {
        if image.file_name().is_none() {
            return Err(HypervisorError::Invalid(format!("suspend image path {} names no file", image.display())));
        }
        let mut state = self.state.lock();
        let domain = state.get(uuid)?;
        let domid = domain.domid;
        let bytes = image::encode(&domain.snapshot(self.clock.monotonic_ns()));
        // The lock stays held across the write so that no other call can change the guest
        // between the snapshot and its end. The image is a few hundred bytes: the cost is one
        // small fsync.
        image::write_atomic(image, &bytes).map_err(|e| HypervisorError::Image(format!("cannot write {}: {e}", image.display())))?;
        state.remove(uuid);
        tracing::info!(%uuid, domid, image = %image.display(), "sim: domain suspended");
        Ok(())
    }

    fn resume(&self, config: &DomainConfig, image: &Path, paused: bool) -> Result<DomId> {
        validate_config(config, self.config.cpu_count)?;
        // Read before locking: file I/O must not hold up the other domains.
        let saved = image::read(image)?;
        saved.check_against(config)?;
        let mut state = self.state.lock();
        state.check_new(config, &self.config)?;
        let domid = state.allocate_domid()?;
        let now = self.clock.monotonic_ns();
        let domain = Domain::restore(config, saved, domid, paused, now, self.clock.unix_secs());
        state.insert(domain);
        tracing::info!(
            uuid = %config.uuid, domid, image = %image.display(), paused, "sim: domain resumed"
        );
        Ok(domid)
    }

    fn set_memory_target(&self, uuid: Uuid, target: u64) -> Result<()> {
        let mut state = self.state.lock();
        let domain = state.get_mut(uuid)?;
        if target == 0 || target > domain.memory_static_max {
            return Err(HypervisorError::Invalid(format!("memory target {target} is outside 1..={}", domain.memory_static_max)));
        }
        // The sim balloon driver reaches its target at once; the reservation is untouched.
        domain.memory_target = target;
        Ok(())
    }

    fn set_vcpus(&self, uuid: Uuid, vcpus: u32) -> Result<()> {
        let mut state = self.state.lock();
        let now = self.clock.monotonic_ns();
        let domain = state.get_mut(uuid)?;
        if vcpus == 0 || vcpus > domain.vcpus_max {
            return Err(HypervisorError::Invalid(format!("{vcpus} vCPUs is outside 1..={}", domain.vcpus_max)));
        }
        domain.set_vcpus(vcpus, now);
        Ok(())
    }

    fn attach_disk(&self, uuid: Uuid, disk: &DiskConfig) -> Result<()> {
        validate_disk(disk)?;
        let mut state = self.state.lock();
        let domain = state.get_mut(uuid)?;
        if domain.disks.iter().any(|d| d.device == disk.device) {
            return Err(HypervisorError::DeviceExists { device: disk.device.clone() });
        }
        domain.disks.push(disk.clone());
        Ok(())
    }

    fn detach_disk(&self, uuid: Uuid, device: &str) -> Result<()> {
        let mut state = self.state.lock();
        let domain = state.get_mut(uuid)?;
        let index = domain
            .disks
            .iter()
            .position(|d| d.device == device)
            .ok_or_else(|| HypervisorError::NoSuchDevice { device: device.to_owned() })?;
        domain.disks.remove(index);
        Ok(())
    }

    fn attach_nic(&self, uuid: Uuid, nic: &NicConfig) -> Result<()> {
        validate_nic(nic)?;
        let mut state = self.state.lock();
        let domain = state.get_mut(uuid)?;
        if domain.nics.iter().any(|n| n.device == nic.device) {
            return Err(HypervisorError::DeviceExists { device: nic.device.clone() });
        }
        domain.nics.push(nic.clone());
        Ok(())
    }

    fn detach_nic(&self, uuid: Uuid, device: &str) -> Result<()> {
        let mut state = self.state.lock();
        let domain = state.get_mut(uuid)?;
        let index = domain
            .nics
            .iter()
            .position(|n| n.device == device)
            .ok_or_else(|| HypervisorError::NoSuchDevice { device: device.to_owned() })?;
        domain.nics.remove(index);
        Ok(())
    }

    fn send_sysrq(&self, uuid: Uuid, key: char) -> Result<()> {
        if !(key.is_ascii_lowercase() || key.is_ascii_digit()) {
            return Err(HypervisorError::Invalid(format!("{key:?} is not a SysRq key")));
        }
        let mut state = self.state.lock();
        let domain = state.get(uuid)?;
        if domain.state != RunState::Running {
            return Err(HypervisorError::BadState { uuid, state: domain.state });
        }
        let reason = match key {
            'o' => ShutdownReason::Poweroff,
            'b' => ShutdownReason::Reboot,
            'c' => ShutdownReason::Crash,
            // The sim guest has no log levels, task lists or filesystems to act on.
            _ => return Ok(()),
        };
        let domid = domain.domid;
        // Removed before the event goes out, so whoever receives it sees the domain gone and
        // its memory free.
        state.remove(uuid);
        tracing::info!(%uuid, domid, ?reason, "sim: guest ended itself on SysRq {key}");
        // A dropped receiver means nobody listens for events; the domain has ended regardless.
        let _ = state.events.send(DomainEvent::Shutdown { uuid, domid, reason });
        Ok(())
    }

    fn list(&self) -> Vec<DomainInfo> {
        let state = self.state.lock();
        let now = self.clock.monotonic_ns();
        let mut infos: Vec<DomainInfo> = state.domains.values().map(|d| d.info(now)).collect();
        drop(state);
        infos.sort_unstable_by_key(|info| info.domid);
        infos
    }

    fn info(&self, uuid: Uuid) -> Option<DomainInfo> {
        let state = self.state.lock();
        let now = self.clock.monotonic_ns();
        state.domains.get(&uuid).map(|d| d.info(now))
    }

    fn take_events(&self) -> Option<Receiver<DomainEvent>> {
        self.events.lock().take()
    }
}
