use super::*;
use crate::{DiskKind, HypervisorError as E};
use std::collections::HashSet;
use std::sync::mpsc::TryRecvError;
use std::time::Instant;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const SEC: u64 = 1_000_000_000;
const EPOCH: i64 = 1_700_000_000;

fn host(memory_total: u64) -> SimConfig {
    SimConfig {
        state_dir: PathBuf::from("/nonexistent/sim-state"),
        memory_total,
        cpu_count: 8,
        dom0_memory: GIB,
        clean_shutdown_delay: Duration::ZERO,
        hostname: "simhost".into(),
    }
}

fn sim(memory_total: u64) -> SimHypervisor {
    SimHypervisor::new(host(memory_total))
}

fn manual_sim(config: SimConfig) -> (SimHypervisor, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(EPOCH));
    (SimHypervisor::with_clock(config, clock.clone()), clock)
}

fn disk(device: &str) -> DiskConfig {
    DiskConfig {
        device: device.into(),
        path: Some(PathBuf::from(format!("/images/{device}.img"))),
        read_only: false,
        kind: DiskKind::Disk,
        bootable: device == "xvda",
    }
}

fn nic(device: &str) -> NicConfig {
    NicConfig { device: device.into(), mac: format!("00:16:3e:00:00:0{device}"), bridge: "xenbr0".into(), mtu: 1500 }
}

fn vm(memory: u64) -> DomainConfig {
    DomainConfig {
        uuid: Uuid::new_v4(),
        name: "guest".into(),
        memory_static_max: memory,
        memory_target: memory,
        vcpus_max: 2,
        vcpus_at_startup: 2,
        kernel: None,
        ramdisk: None,
        cmdline: String::new(),
        disks: vec![disk("xvda")],
        nics: vec![nic("0")],
    }
}

fn is_image_error(result: Result<DomId>) -> bool {
    matches!(result, Err(E::Image(_)))
}

#[test]
fn defaults_describe_a_16_gib_8_cpu_host() {
    let config = SimConfig::default();
    assert_eq!(config.memory_total, 16 * GIB);
    assert_eq!(config.dom0_memory, GIB);
    assert_eq!(config.cpu_count, 8);
    assert_eq!(config.clean_shutdown_delay, Duration::ZERO);
    assert!(!config.hostname.is_empty());

    let info = SimHypervisor::new(config).host_info();
    assert_eq!(info.memory_total, 16 * GIB);
    assert_eq!(info.memory_free, 15 * GIB);
    assert_eq!(info.backend, "sim");
}

#[test]
fn a_domain_that_does_not_fit_is_refused_and_nothing_changes() {
    let hv = sim(4 * GIB);
    let a = vm(2 * GIB);
    assert_eq!(hv.start(&a, false), Ok(1));
    assert_eq!(hv.host_info().memory_free, GIB);

    let b = vm(2 * GIB);
    assert_eq!(hv.start(&b, false), Err(E::NotEnoughMemory { needed: 2 * GIB, available: GIB }));
    assert_eq!(hv.host_info().memory_free, GIB);
    assert_eq!(hv.list().len(), 1);
    assert!(hv.info(b.uuid).is_none());

    // An exact fit is a fit, and the refused start consumed no domid.
    let c = vm(GIB);
    assert_eq!(hv.start(&c, false), Ok(2));
    assert_eq!(hv.host_info().memory_free, 0);
    assert_eq!(hv.start(&vm(1), false), Err(E::NotEnoughMemory { needed: 1, available: 0 }));

    hv.hard_shutdown(a.uuid).unwrap();
    assert_eq!(hv.host_info().memory_free, 2 * GIB);
}

#[test]
fn ballooning_changes_actual_memory_but_not_the_reservation() {
    let hv = sim(8 * GIB);
    let a = vm(2 * GIB);
    hv.start(&a, false).unwrap();
    hv.set_memory_target(a.uuid, 512 * MIB).unwrap();
    let info = hv.info(a.uuid).unwrap();
    assert_eq!(info.memory_actual, 512 * MIB);
    assert_eq!(info.memory_reserved, 2 * GIB);
    assert_eq!(hv.host_info().memory_free, 5 * GIB);

    assert!(matches!(hv.set_memory_target(a.uuid, 0), Err(E::Invalid(_))));
    assert!(matches!(hv.set_memory_target(a.uuid, 2 * GIB + 1), Err(E::Invalid(_))));
    assert_eq!(hv.info(a.uuid).unwrap().memory_actual, 512 * MIB);
    hv.set_memory_target(a.uuid, 2 * GIB).unwrap();
    assert_eq!(hv.info(a.uuid).unwrap().memory_actual, 2 * GIB);
}

#[test]
fn domids_increase_and_are_never_reused() {
    let hv = sim(16 * GIB);
    assert!(hv.list().is_empty(), "dom0 is not listed");
    let a = vm(GIB);
    let b = vm(GIB);
    assert_eq!(hv.start(&a, false), Ok(1));
    assert_eq!(hv.start(&b, false), Ok(2));
    hv.hard_shutdown(a.uuid).unwrap();
    assert_eq!(hv.start(&a, false), Ok(3));
    assert_eq!(hv.reboot(b.uuid, false, 0), Ok(4));
    assert_eq!(hv.reboot(a.uuid, true, 10), Ok(5));

    let listed: Vec<(Uuid, DomId)> = hv.list().iter().map(|d| (d.uuid, d.domid)).collect();
    assert_eq!(listed, vec![(b.uuid, 4), (a.uuid, 5)]);
}

#[test]
fn start_refuses_a_live_uuid_and_unknown_uuids_are_reported() {
    let hv = sim(16 * GIB);
    let a = vm(GIB);
    hv.start(&a, false).unwrap();
    assert_eq!(hv.start(&a, false), Err(E::DomainExists(a.uuid)));
    assert_eq!(hv.host_info().memory_free, 14 * GIB);

    let ghost = Uuid::new_v4();
    assert_eq!(hv.hard_shutdown(ghost), Err(E::NoSuchDomain(ghost)));
    assert_eq!(hv.clean_shutdown(ghost, 1), Err(E::NoSuchDomain(ghost)));
    assert_eq!(hv.reboot(ghost, false, 1), Err(E::NoSuchDomain(ghost)));
    assert_eq!(hv.pause(ghost), Err(E::NoSuchDomain(ghost)));
    assert_eq!(hv.set_vcpus(ghost, 1), Err(E::NoSuchDomain(ghost)));
    assert_eq!(hv.attach_disk(ghost, &disk("xvdb")), Err(E::NoSuchDomain(ghost)));
    assert_eq!(hv.send_sysrq(ghost, 'o'), Err(E::NoSuchDomain(ghost)));
    assert!(hv.info(ghost).is_none());
}

#[test]
fn vcpu_limits_are_enforced() {
    let hv = sim(16 * GIB);
    let with = |max: u32, startup: u32| DomainConfig { vcpus_max: max, vcpus_at_startup: startup, ..vm(GIB) };
    assert!(matches!(hv.start(&with(0, 0), false), Err(E::Invalid(_))));
    assert!(matches!(hv.start(&with(2, 3), false), Err(E::Invalid(_))));
    assert!(matches!(hv.start(&with(2, 0), false), Err(E::Invalid(_))));
    assert!(matches!(hv.start(&with(MAX_VCPUS + 1, 1), false), Err(E::Invalid(_))));
    assert_eq!(hv.start(&with(9, 1), false), Err(E::NotEnoughPcpus { vcpus: 9, pcpus: 8 }));
    assert!(hv.list().is_empty());

    let a = with(8, 1);
    hv.start(&a, false).unwrap();
    assert_eq!(hv.info(a.uuid).unwrap().vcpus, 1);
    assert!(matches!(hv.set_vcpus(a.uuid, 0), Err(E::Invalid(_))));
    assert!(matches!(hv.set_vcpus(a.uuid, 9), Err(E::Invalid(_))));
    hv.set_vcpus(a.uuid, 8).unwrap();
    assert_eq!(hv.info(a.uuid).unwrap().vcpus, 8);
}

#[test]
fn malformed_configs_are_refused() {
    let hv = sim(16 * GIB);
    let cases = [
        DomainConfig { memory_target: 0, ..vm(GIB) },
        DomainConfig { memory_target: GIB + 1, ..vm(GIB) },
        DomainConfig { memory_static_max: 0, memory_target: 0, ..vm(GIB) },
        DomainConfig { uuid: Uuid::nil(), ..vm(GIB) },
        DomainConfig { disks: vec![disk("xvda"), disk("xvda")], ..vm(GIB) },
        DomainConfig { disks: vec![disk("")], ..vm(GIB) },
        DomainConfig { nics: vec![nic("0"), nic("0")], ..vm(GIB) },
        DomainConfig { nics: vec![nic("eth0")], ..vm(GIB) },
        DomainConfig { nics: vec![NicConfig { mac: "nonsense".into(), ..nic("0") }], ..vm(GIB) },
    ];
    for config in cases {
        assert!(matches!(hv.start(&config, false), Err(E::Invalid(_))), "{config:?}");
    }
    assert!(hv.list().is_empty());
    assert_eq!(hv.start(&vm(GIB), false), Ok(1));
}

#[test]
fn pause_and_unpause_check_the_state() {
    let hv = sim(16 * GIB);
    let a = vm(GIB);
    hv.start(&a, false).unwrap();
    assert_eq!(hv.unpause(a.uuid), Err(E::BadState { uuid: a.uuid, state: RunState::Running }));
    hv.pause(a.uuid).unwrap();
    assert_eq!(hv.info(a.uuid).unwrap().state, RunState::Paused);
    assert_eq!(hv.pause(a.uuid), Err(E::BadState { uuid: a.uuid, state: RunState::Paused }));
    hv.unpause(a.uuid).unwrap();
    assert_eq!(hv.info(a.uuid).unwrap().state, RunState::Running);

    let b = vm(GIB);
    hv.start(&b, true).unwrap();
    assert_eq!(hv.info(b.uuid).unwrap().state, RunState::Paused);
}

#[test]
fn cpu_time_accrues_per_online_vcpu_only_while_running() {
    let (hv, clock) = manual_sim(host(16 * GIB));
    let a = vm(GIB);
    hv.start(&a, false).unwrap();
    assert_eq!(hv.info(a.uuid).unwrap().start_time, EPOCH);
    assert_eq!(hv.info(a.uuid).unwrap().vcpu_time_ns, vec![0, 0]);

    clock.advance(Duration::from_secs(1));
    assert_eq!(hv.info(a.uuid).unwrap().vcpu_time_ns, vec![SEC, SEC]);

    hv.pause(a.uuid).unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(hv.info(a.uuid).unwrap().vcpu_time_ns, vec![SEC, SEC]);

    hv.unpause(a.uuid).unwrap();
    clock.advance(Duration::from_secs(1));
    hv.set_vcpus(a.uuid, 1).unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(hv.info(a.uuid).unwrap().vcpu_time_ns, vec![3 * SEC]);

    // An offlined vCPU comes back with the time it had.
    hv.set_vcpus(a.uuid, 2).unwrap();
    assert_eq!(hv.info(a.uuid).unwrap().vcpu_time_ns, vec![3 * SEC, 2 * SEC]);
    assert_eq!(hv.guest_heartbeat(a.uuid), Some(3 * SEC / HEARTBEAT_PERIOD_NS));

    let b = vm(GIB);
    hv.start(&b, true).unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(hv.info(b.uuid).unwrap().vcpu_time_ns, vec![0, 0]);
    assert_eq!(hv.info(b.uuid).unwrap().start_time, EPOCH + 8);
}

#[test]
fn cpu_time_moves_on_the_real_clock_too() {
    let hv = sim(16 * GIB);
    let a = vm(GIB);
    hv.start(&a, false).unwrap();
    let before = hv.info(a.uuid).unwrap().vcpu_time_ns[0];
    std::thread::sleep(Duration::from_millis(5));
    let running = hv.info(a.uuid).unwrap().vcpu_time_ns[0];
    assert!(running >= before + 5_000_000, "{before} -> {running}");

    hv.pause(a.uuid).unwrap();
    let paused = hv.info(a.uuid).unwrap().vcpu_time_ns[0];
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(hv.info(a.uuid).unwrap().vcpu_time_ns[0], paused);
}

#[test]
fn suspend_and_resume_keep_the_guest_state() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("nested/suspend/guest.img");
    let (hv, clock) = manual_sim(host(8 * GIB));
    let a = DomainConfig { vcpus_max: 4, vcpus_at_startup: 2, ..vm(2 * GIB) };
    let first = hv.start(&a, false).unwrap();
    hv.attach_disk(a.uuid, &disk("xvdb")).unwrap();
    hv.attach_nic(a.uuid, &nic("1")).unwrap();
    hv.set_memory_target(a.uuid, GIB).unwrap();
    clock.advance(Duration::from_secs(3));
    hv.set_vcpus(a.uuid, 3).unwrap();
    clock.advance(Duration::from_secs(1));
    let before = hv.info(a.uuid).unwrap();
    assert_eq!(before.vcpu_time_ns, vec![4 * SEC, 4 * SEC, SEC]);
    let heartbeat = hv.guest_heartbeat(a.uuid).unwrap();
    assert_eq!(heartbeat, 4000);

    hv.suspend(a.uuid, &image).unwrap();
    assert!(hv.info(a.uuid).is_none());
    assert_eq!(hv.host_info().memory_free, 7 * GIB);
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(&bytes[..8], b"XCSIMSAV");
    assert_eq!(std::fs::read_dir(image.parent().unwrap()).unwrap().count(), 1, "temp file left");

    // Time spent suspended is not guest time.
    clock.advance(Duration::from_secs(60));
    let second = hv.resume(&a, &image, true).unwrap();
    assert!(second > first);
    assert!(image.exists(), "resume must leave the image for the model to remove");
    let after = hv.info(a.uuid).unwrap();
    assert_eq!(after.state, RunState::Paused);
    assert_eq!(after.vcpu_time_ns, before.vcpu_time_ns);
    assert_eq!(after.vcpus, 3);
    assert_eq!(after.memory_actual, GIB);
    assert_eq!(after.memory_reserved, 2 * GIB);
    assert_eq!(after.disks, vec!["xvda", "xvdb"]);
    assert_eq!(after.nics, vec!["0", "1"]);
    assert_eq!(after.start_time, EPOCH + 64);
    assert_eq!(hv.guest_heartbeat(a.uuid), Some(heartbeat));
    assert_eq!(hv.host_info().memory_free, 5 * GIB);

    hv.unpause(a.uuid).unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(hv.info(a.uuid).unwrap().vcpu_time_ns, vec![5 * SEC, 5 * SEC, 2 * SEC]);
    assert_eq!(hv.guest_heartbeat(a.uuid), Some(heartbeat + 1000));

    assert_eq!(hv.resume(&a, &image, false), Err(E::DomainExists(a.uuid)));
}

#[test]
fn bad_images_are_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let hv = sim(8 * GIB);
    let a = vm(GIB);
    hv.start(&a, false).unwrap();
    let good = dir.path().join("good.img");
    hv.suspend(a.uuid, &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    let write = |name: &str, content: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    };
    let mut bad_magic = bytes.clone();
    bad_magic[0] = b'Y';
    let mut bad_version = bytes.clone();
    bad_version[8] = 9;
    let mut flipped = bytes.clone();
    let last = flipped.len() - 2;
    flipped[last] ^= 0x01;
    let bad = [
        write("magic.img", &bad_magic),
        write("version.img", &bad_version),
        write("truncated.img", &bytes[..bytes.len() - 10]),
        write("header-only.img", &bytes[..12]),
        write("empty.img", b""),
        write("flipped.img", &flipped),
        dir.path().join("missing.img"),
    ];
    for path in &bad {
        assert!(is_image_error(hv.resume(&a, path, false)), "{}", path.display());
    }

    // A sound image of another VM is still the wrong image.
    let other = vm(GIB);
    assert!(is_image_error(hv.resume(&other, &good, false)));
    // The VM's limits shrank below what the guest was saved with.
    let shrunk = DomainConfig { memory_static_max: GIB / 2, memory_target: GIB / 2, ..a.clone() };
    assert!(is_image_error(hv.resume(&shrunk, &good, false)));

    assert!(hv.list().is_empty());
    assert_eq!(hv.host_info().memory_free, 7 * GIB);
    // No failed attempt consumed a domid.
    assert_eq!(hv.resume(&a, &good, false), Ok(2));
}

#[test]
fn a_failed_suspend_keeps_the_domain_running() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let hv = sim(8 * GIB);
    let a = vm(GIB);
    hv.start(&a, false).unwrap();

    assert!(matches!(hv.suspend(a.uuid, &blocker.join("guest.img")), Err(E::Image(_))));
    assert!(matches!(hv.suspend(a.uuid, Path::new("/")), Err(E::Invalid(_))));
    assert_eq!(hv.info(a.uuid).unwrap().state, RunState::Running);
    assert_eq!(hv.host_info().memory_free, 6 * GIB);
    let ghost = Uuid::new_v4();
    assert_eq!(hv.suspend(ghost, &dir.path().join("x.img")), Err(E::NoSuchDomain(ghost)));
    assert!(!dir.path().join("x.img").exists());
}

#[test]
fn sysrq_o_b_c_end_the_domain_with_the_right_event() {
    let hv = sim(8 * GIB);
    let events = hv.take_events().unwrap();
    assert!(hv.take_events().is_none());

    for (key, reason) in [('o', ShutdownReason::Poweroff), ('b', ShutdownReason::Reboot), ('c', ShutdownReason::Crash)] {
        let a = vm(2 * GIB);
        let domid = hv.start(&a, false).unwrap();
        assert_eq!(hv.host_info().memory_free, 5 * GIB);
        hv.send_sysrq(a.uuid, key).unwrap();
        let event = events.recv_timeout(Duration::from_secs(1)).unwrap();
        assert_eq!(event, DomainEvent::Shutdown { uuid: a.uuid, domid, reason });
        assert!(hv.info(a.uuid).is_none());
        assert_eq!(hv.host_info().memory_free, 7 * GIB);
    }
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn other_sysrq_keys_are_ignored_or_refused() {
    let hv = sim(8 * GIB);
    let events = hv.take_events().unwrap();
    let a = vm(GIB);
    hv.start(&a, false).unwrap();
    for key in ['h', 's', 'u', '9'] {
        hv.send_sysrq(a.uuid, key).unwrap();
    }
    for key in ['O', '!', ' ', 'é'] {
        assert!(matches!(hv.send_sysrq(a.uuid, key), Err(E::Invalid(_))), "{key:?}");
    }
    hv.pause(a.uuid).unwrap();
    assert_eq!(hv.send_sysrq(a.uuid, 'o'), Err(E::BadState { uuid: a.uuid, state: RunState::Paused }));
    assert_eq!(hv.info(a.uuid).unwrap().state, RunState::Paused);
    // Requested operations are not events either.
    hv.unpause(a.uuid).unwrap();
    hv.reboot(a.uuid, true, 5).unwrap();
    hv.hard_shutdown(a.uuid).unwrap();
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn a_slow_guest_times_out_and_keeps_running() {
    let config = SimConfig { clean_shutdown_delay: Duration::from_millis(1500), ..host(8 * GIB) };
    let hv = sim_from(config);
    let a = vm(GIB);
    let domid = hv.start(&a, false).unwrap();

    let asked = Instant::now();
    assert_eq!(hv.clean_shutdown(a.uuid, 1), Err(E::ShutdownTimeout(1)));
    assert!(asked.elapsed() >= Duration::from_secs(1), "the timeout must be waited out");
    assert_eq!(hv.clean_shutdown(a.uuid, 0), Err(E::ShutdownTimeout(0)));
    assert_eq!(hv.reboot(a.uuid, true, 0), Err(E::ShutdownTimeout(0)));
    let info = hv.info(a.uuid).unwrap();
    assert_eq!((info.domid, info.state), (domid, RunState::Running));
    assert_eq!(hv.host_info().memory_free, 6 * GIB);

    // A forced shutdown needs no answer.
    hv.hard_shutdown(a.uuid).unwrap();
    assert_eq!(hv.host_info().memory_free, 7 * GIB);
}

fn sim_from(config: SimConfig) -> SimHypervisor {
    SimHypervisor::new(config)
}

#[test]
fn a_guest_that_answers_in_time_shuts_down_without_blocking_others() {
    let delay = Duration::from_millis(300);
    let config = SimConfig { clean_shutdown_delay: delay, ..host(8 * GIB) };
    let hv = Arc::new(sim_from(config));
    let a = vm(GIB);
    let b = vm(GIB);
    hv.start(&a, false).unwrap();
    hv.start(&b, false).unwrap();

    let stopper = {
        let hv = Arc::clone(&hv);
        std::thread::spawn(move || {
            let asked = Instant::now();
            hv.clean_shutdown(a.uuid, 5).map(|()| asked.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    hv.pause(b.uuid).unwrap();
    assert_eq!(hv.list().len(), 2, "the guest has not answered yet");
    assert!(started.elapsed() < Duration::from_millis(150), "the lock was held while waiting");

    let waited = stopper.join().unwrap().unwrap();
    assert!(waited >= delay);
    assert!(hv.info(a.uuid).is_none());
    assert_eq!(hv.host_info().memory_free, 6 * GIB);
    // A paused guest cannot answer at all.
    assert_eq!(hv.clean_shutdown(b.uuid, 5), Err(E::BadState { uuid: b.uuid, state: RunState::Paused }));
}

#[test]
fn reboot_gives_a_new_domid_and_keeps_the_reservation() {
    let (hv, clock) = manual_sim(host(8 * GIB));
    let a = vm(2 * GIB);
    let first = hv.start(&a, false).unwrap();
    hv.attach_disk(a.uuid, &disk("xvdb")).unwrap();
    clock.advance(Duration::from_secs(2));
    let free = hv.host_info().memory_free;

    let second = hv.reboot(a.uuid, true, 10).unwrap();
    assert!(second > first);
    let info = hv.info(a.uuid).unwrap();
    assert_eq!(info.domid, second);
    assert_eq!(info.state, RunState::Running);
    assert_eq!(info.memory_reserved, 2 * GIB);
    assert_eq!(info.vcpu_time_ns, vec![0, 0]);
    assert_eq!(info.start_time, EPOCH + 2);
    assert_eq!(info.disks, vec!["xvda", "xvdb"]);
    assert_eq!(hv.guest_heartbeat(a.uuid), Some(0));
    assert_eq!(hv.host_info().memory_free, free);

    // A hard reboot also works on a paused domain and leaves it running.
    hv.pause(a.uuid).unwrap();
    let third = hv.reboot(a.uuid, false, 0).unwrap();
    assert!(third > second);
    assert_eq!(hv.info(a.uuid).unwrap().state, RunState::Running);
    assert_eq!(hv.host_info().memory_free, free);
}

#[test]
fn devices_attach_and_detach_with_errors() {
    let hv = sim(8 * GIB);
    let a = vm(GIB);
    hv.start(&a, false).unwrap();

    assert_eq!(hv.attach_disk(a.uuid, &disk("xvda")), Err(E::DeviceExists { device: "xvda".into() }));
    assert_eq!(hv.attach_nic(a.uuid, &nic("0")), Err(E::DeviceExists { device: "0".into() }));
    assert_eq!(hv.detach_disk(a.uuid, "xvdz"), Err(E::NoSuchDevice { device: "xvdz".into() }));
    assert_eq!(hv.detach_nic(a.uuid, "7"), Err(E::NoSuchDevice { device: "7".into() }));
    assert!(matches!(hv.attach_disk(a.uuid, &disk("XVD B")), Err(E::Invalid(_))));
    assert!(matches!(hv.attach_nic(a.uuid, &nic("01")), Err(E::Invalid(_))));

    hv.attach_disk(a.uuid, &DiskConfig { kind: DiskKind::Cdrom, path: None, ..disk("hdc") }).unwrap();
    hv.attach_disk(a.uuid, &disk("xvdb")).unwrap();
    hv.attach_nic(a.uuid, &nic("2")).unwrap();
    hv.attach_nic(a.uuid, &nic("1")).unwrap();
    let info = hv.info(a.uuid).unwrap();
    assert_eq!(info.disks, vec!["xvda", "hdc", "xvdb"]);
    assert_eq!(info.nics, vec!["0", "2", "1"]);

    hv.detach_disk(a.uuid, "hdc").unwrap();
    hv.detach_nic(a.uuid, "0").unwrap();
    assert_eq!(hv.detach_disk(a.uuid, "hdc"), Err(E::NoSuchDevice { device: "hdc".into() }));
    let info = hv.info(a.uuid).unwrap();
    assert_eq!(info.disks, vec!["xvda", "xvdb"]);
    assert_eq!(info.nics, vec!["2", "1"]);
    // A paused domain still takes hot-plugged devices, as under Xen.
    hv.pause(a.uuid).unwrap();
    hv.attach_nic(a.uuid, &nic("0")).unwrap();
    assert_eq!(hv.info(a.uuid).unwrap().nics, vec!["2", "1", "0"]);
}

#[test]
fn concurrent_lifecycles_stay_consistent() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let hv = Arc::new(sim(16 * GIB));
    let events = hv.take_events().unwrap();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let hv = Arc::clone(&hv);
            let image = dir.path().join(format!("{t}.img"));
            std::thread::spawn(move || {
                let config = vm(GIB);
                let mut domids = Vec::new();
                for round in 0..ROUNDS {
                    domids.push(hv.start(&config, round % 2 == 0).unwrap());
                    if round % 2 == 0 {
                        hv.unpause(config.uuid).unwrap();
                    }
                    hv.set_vcpus(config.uuid, 1).unwrap();
                    hv.attach_disk(config.uuid, &disk("xvdb")).unwrap();
                    assert!(hv.list().iter().any(|d| d.uuid == config.uuid));
                    domids.push(hv.reboot(config.uuid, round % 3 == 0, 1).unwrap());
                    match round % 4 {
                        0 => hv.hard_shutdown(config.uuid).unwrap(),
                        1 => hv.clean_shutdown(config.uuid, 1).unwrap(),
                        2 => hv.send_sysrq(config.uuid, 'o').unwrap(),
                        _ => {
                            hv.suspend(config.uuid, &image).unwrap();
                            domids.push(hv.resume(&config, &image, false).unwrap());
                            hv.hard_shutdown(config.uuid).unwrap();
                        }
                    }
                }
                domids
            })
        })
        .collect();

    let mut all = Vec::new();
    for worker in workers {
        let domids = worker.join().unwrap();
        assert!(domids.windows(2).all(|w| w[0] < w[1]), "domids went backwards: {domids:?}");
        all.extend(domids);
    }
    let distinct: HashSet<DomId> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "a domid was reused");
    assert_eq!(*all.iter().max().unwrap() as usize, all.len());
    assert!(hv.list().is_empty());
    assert_eq!(hv.host_info().memory_free, 15 * GIB);
    let sysrq_rounds = (0..ROUNDS).filter(|round| round % 4 == 2).count();
    assert_eq!(events.try_iter().count(), THREADS * sysrq_rounds);
}

#[test]
fn image_round_trips_through_encode_and_decode() {
    let (hv, clock) = manual_sim(host(8 * GIB));
    let a = vm(GIB);
    hv.start(&a, false).unwrap();
    clock.advance(Duration::from_millis(1500));
    let saved = {
        let state = hv.state.lock();
        state.domains[&a.uuid].snapshot(clock.monotonic_ns())
    };
    assert_eq!(saved.heartbeat, 1500);
    assert_eq!(image::decode(&image::encode(&saved)), Ok(saved.clone()));
    let mut padded = image::encode(&saved);
    padded.push(b' ');
    assert!(matches!(image::decode(&padded), Err(E::Image(_))));
}
