//! Unit tests of the parts that need no QEMU: the QMP client against a fake QEMU on a socket
//! pair, the command-line builder, suspend image headers, /proc parsers, validation, and the
//! accelerator probe's boot sector. Real guests are exercised by tests/interop/test_qemu.py.

use super::cmdline::{self, Launch, Paths};
use super::config::{Accel, QemuConfig};
use super::qmp::{Incoming, Negotiated, QmpError};
use super::state::{self, CpuSlot, DiskKindRec, DiskRec, DomainRecord, NetBackend, NicRec, Persisted};
use super::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc;

const MIB: u64 = 1 << 20;
const GREETING: &str =
    r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "Debian"}, "capabilities": ["oob"]}}"#;

/// The QEMU end of a QMP connection, driven line by line by a test.
struct FakeQemu {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl FakeQemu {
    fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).unwrap();
        self.writer.write_all(b"\r\n").unwrap();
    }

    fn recv(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON from the client: {line:?}: {e}"))
    }

    /// Answers the client's qmp_capabilities.
    fn accept_capabilities(&mut self) {
        let msg = self.recv();
        assert_eq!(msg["execute"], "qmp_capabilities");
        self.send(&json!({"return": {}, "id": msg["id"]}).to_string());
    }
}

fn pair() -> (UnixStream, FakeQemu) {
    let (client, server) = UnixStream::pair().unwrap();
    let fake = FakeQemu { reader: BufReader::new(server.try_clone().unwrap()), writer: server };
    (client, fake)
}

/// A negotiated client whose events land in the returned channel.
fn connected() -> (qmp::Qmp, FakeQemu, mpsc::Receiver<Incoming>) {
    let (client, mut fake) = pair();
    let server = std::thread::spawn(move || {
        fake.send(GREETING);
        fake.accept_capabilities();
        fake
    });
    let negotiated = Negotiated::handshake(client, Duration::from_secs(5)).unwrap();
    let fake = server.join().unwrap();
    let (tx, rx) = mpsc::channel();
    let qmp = negotiated.start("test", Duration::from_secs(5), move |msg| {
        let _ = tx.send(msg);
    });
    (qmp, fake, rx)
}

#[test]
fn qmp_handshake_reads_the_version_and_leaves_negotiation_mode() {
    let (client, mut fake) = pair();
    let server = std::thread::spawn(move || {
        fake.send(GREETING);
        let msg = fake.recv();
        assert_eq!(msg["execute"], "qmp_capabilities");
        assert!(msg.get("arguments").is_none());
        fake.send(&json!({"return": {}, "id": msg["id"]}).to_string());
    });
    let negotiated = Negotiated::handshake(client, Duration::from_secs(5)).unwrap();
    server.join().unwrap();
    assert_eq!(negotiated.version, qmp::Version { major: 10, minor: 0, micro: 2 });
}

#[test]
fn qmp_handshake_refuses_a_peer_that_is_not_qemu() {
    let (client, mut fake) = pair();
    fake.send(r#"{"hello": "world"}"#);
    match Negotiated::handshake(client, Duration::from_secs(5)) {
        Err(QmpError::Protocol(m)) => assert!(m.contains("not a QMP greeting"), "{m}"),
        other => panic!("expected a protocol error, got {:?}", other.err()),
    }
}

#[test]
fn qmp_handshake_times_out_when_qemu_says_nothing() {
    // QEMU serves one monitor client at a time and greets the next only when the first leaves.
    let (client, _fake) = pair();
    match Negotiated::handshake(client, Duration::from_millis(200)) {
        Err(QmpError::Timeout(what)) => assert!(what.contains("greeting"), "{what}"),
        other => panic!("expected a timeout, got {:?}", other.err()),
    }
}

#[test]
fn qmp_replies_find_their_callers_out_of_order_and_events_go_to_the_handler() {
    let (qmp, mut fake, events) = connected();
    let qmp = Arc::new(qmp);
    let q1 = qmp.clone();
    let first = std::thread::spawn(move || q1.execute("query-status", None));
    let a = fake.recv();
    let q2 = qmp.clone();
    let second = std::thread::spawn(move || q2.execute("query-balloon", Some(json!({}))));
    let b = fake.recv();
    let (status, balloon) = if a["execute"] == "query-status" { (a, b) } else { (b, a) };
    assert_ne!(status["id"], balloon["id"]);
    assert_eq!(balloon["arguments"], json!({}));
    // The later command is answered first, with an event between the replies.
    fake.send(&json!({"return": {"actual": 42}, "id": balloon["id"]}).to_string());
    fake.send(r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#);
    fake.send(&json!({"return": {"status": "running", "running": true}, "id": status["id"]}).to_string());
    assert_eq!(second.join().unwrap().unwrap(), json!({"actual": 42}));
    assert_eq!(first.join().unwrap().unwrap()["status"], "running");
    assert_eq!(events.recv_timeout(Duration::from_secs(5)).unwrap(), Incoming::Event { name: "STOP".into(), data: Value::Null });
}

#[test]
fn qmp_errors_carry_class_and_description() {
    let (qmp, mut fake, _events) = connected();
    let server = std::thread::spawn(move || {
        let msg = fake.recv();
        fake.send(&json!({"error": {"class": "DeviceNotFound", "desc": "Device 'disk9' not found"}, "id": msg["id"]}).to_string());
        fake
    });
    let err = qmp.execute("device_del", Some(json!({"id": "disk9"}))).unwrap_err();
    assert_eq!(
        err,
        QmpError::Command { command: "device_del".into(), class: "DeviceNotFound".into(), desc: "Device 'disk9' not found".into() }
    );
    server.join().unwrap();
}

#[test]
fn qmp_command_without_reply_times_out_and_a_late_reply_is_dropped() {
    let (qmp, mut fake, _events) = connected();
    let err = qmp.execute_timeout("query-status", None, Duration::from_millis(100)).unwrap_err();
    assert_eq!(err, QmpError::Timeout("query-status".into()));
    let late = fake.recv();
    fake.send(&json!({"return": {"status": "late"}, "id": late["id"]}).to_string());
    // The connection still works for the next command.
    let server = std::thread::spawn(move || {
        let msg = fake.recv();
        fake.send(&json!({"return": {"status": "running"}, "id": msg["id"]}).to_string());
        fake
    });
    assert_eq!(qmp.execute("query-status", None).unwrap()["status"], "running");
    server.join().unwrap();
}

#[test]
fn qmp_end_of_connection_fails_waiters_and_reaches_the_handler_last() {
    let (qmp, mut fake, events) = connected();
    let qmp = Arc::new(qmp);
    let q = qmp.clone();
    let waiter = std::thread::spawn(move || q.execute("system_powerdown", None));
    fake.recv();
    fake.send(r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#);
    drop(fake);
    assert_eq!(waiter.join().unwrap().unwrap_err(), QmpError::Closed);
    match events.recv_timeout(Duration::from_secs(5)).unwrap() {
        Incoming::Event { name, data } => {
            assert_eq!(name, "SHUTDOWN");
            assert_eq!(data["reason"], "guest-shutdown");
        }
        other => panic!("expected the SHUTDOWN event first, got {other:?}"),
    }
    assert_eq!(events.recv_timeout(Duration::from_secs(5)).unwrap(), Incoming::Closed);
    assert!(qmp.is_closed());
    assert_eq!(qmp.execute("query-status", None).unwrap_err(), QmpError::Closed);
}

#[test]
fn qmp_garbage_from_qemu_ends_the_connection() {
    let (qmp, mut fake, events) = connected();
    fake.send("this is not json");
    assert_eq!(events.recv_timeout(Duration::from_secs(5)).unwrap(), Incoming::Closed);
    assert!(qmp.is_closed());
}

#[test]
fn qmp_detached_commands_carry_no_id() {
    let (qmp, mut fake, _events) = connected();
    qmp.send_detached("quit", None).unwrap();
    let msg = fake.recv();
    assert_eq!(msg, json!({"execute": "quit"}));
}

fn record() -> DomainRecord {
    DomainRecord {
        uuid: Uuid::parse_str("6f1c3f3a-1b1e-4c47-9a43-3c7b0d2a9e10").unwrap(),
        name: "web, front".into(),
        memory_static_max: 256 * MIB,
        memory_target: 192 * MIB,
        vcpus_max: 4,
        boot_vcpus: 2,
        hotplugged_cpus: Vec::new(),
        kernel: None,
        ramdisk: None,
        cmdline: String::new(),
        disks: vec![DiskRec {
            device: "xvda".into(),
            path: Some(PathBuf::from("/sr/a.img")),
            read_only: false,
            kind: DiskKindRec::Disk,
            bootable: true,
            slot: 4,
        }],
        nics: vec![NicRec { device: "0".into(), mac: "00:16:3e:00:00:01".into(), mtu: 1500, backend: NetBackend::User, slot: 5 }],
        machine: "pc".into(),
        cpu_model: Some("qemu64".into()),
        accel: Accel::Tcg,
    }
}

fn build(record: &DomainRecord, incoming: bool) -> Vec<String> {
    cmdline::build(&Launch {
        record,
        paths: Paths {
            qmp_socket: "qmp.sock",
            pidfile: Path::new("/state/vms/x/qemu.pid"),
            console_log: Path::new("/state/con,sole/x.log"),
        },
        tcg_tb_size_mib: 64,
        incoming,
    })
}

/// The value after each occurrence of `flag`.
fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
    args.windows(2).filter(|w| w[0] == flag).map(|w| w[1].as_str()).collect()
}

fn json_values(args: &[String], flag: &str) -> Vec<Value> {
    values(args, flag).into_iter().map(|v| serde_json::from_str(v).unwrap_or_else(|e| panic!("{flag} {v}: {e}"))).collect()
}

/// The `-device` arguments given as JSON (`pvpanic` is not).
fn json_devices(args: &[String]) -> Vec<Value> {
    values(args, "-device").into_iter().filter(|v| v.starts_with('{')).map(|v| serde_json::from_str(v).unwrap()).collect()
}

#[test]
fn cmdline_has_the_machine_memory_cpus_and_plumbing() {
    let args = build(&record(), false);
    assert_eq!(values(&args, "-name"), ["guest=web,, front,debug-threads=on"]);
    assert_eq!(values(&args, "-uuid"), ["6f1c3f3a-1b1e-4c47-9a43-3c7b0d2a9e10"]);
    assert_eq!(values(&args, "-accel"), ["tcg,tb-size=64"]);
    assert_eq!(values(&args, "-cpu"), ["qemu64"]);
    assert_eq!(values(&args, "-m"), ["256M"]);
    assert_eq!(values(&args, "-smp"), ["cpus=2,maxcpus=4,sockets=4,cores=1,threads=1"]);
    assert_eq!(values(&args, "-action"), ["reboot=shutdown,panic=shutdown"]);
    assert_eq!(values(&args, "-qmp"), ["unix:qmp.sock,server=on,wait=off"]);
    assert_eq!(values(&args, "-pidfile"), ["/state/vms/x/qemu.pid"]);
    assert_eq!(values(&args, "-chardev"), ["file,id=console0,path=/state/con,,sole/x.log,append=on"]);
    assert_eq!(values(&args, "-serial"), ["chardev:console0"]);
    for flag in ["-nodefaults", "-no-user-config", "-S"] {
        assert!(args.iter().any(|a| a == flag), "{flag} missing from {args:?}");
    }
    assert!(!args.iter().any(|a| a == "-incoming"));
    assert!(!args.iter().any(|a| a == "-kernel"), "disk boot has no -kernel");
    let devices = json_devices(&args);
    assert!(devices.contains(&json!({"driver": "virtio-balloon-pci", "id": "balloon0", "bus": "pci.0", "addr": "0x3"})));
    assert!(values(&args, "-device").contains(&"pvpanic"));
}

#[test]
fn cmdline_memory_rounds_up_to_whole_mib() {
    let mut r = record();
    r.memory_static_max = 128 * MIB + 1;
    assert_eq!(values(&build(&r, false), "-m"), ["129M"]);
    assert_eq!(cmdline::memory_mib(128 * MIB), 128);
}

#[test]
fn cmdline_kvm_defaults_to_the_host_cpu() {
    let mut r = record();
    r.accel = Accel::Kvm;
    r.cpu_model = None;
    let args = build(&r, false);
    assert_eq!(values(&args, "-accel"), ["kvm"]);
    assert_eq!(values(&args, "-cpu"), ["host"]);
    r.accel = Accel::Tcg;
    assert!(values(&build(&r, false), "-cpu").is_empty());
}

#[test]
fn cmdline_disks_are_json_blockdevs_with_fixed_addresses() {
    let mut r = record();
    r.disks.push(DiskRec {
        device: "xvdb".into(),
        path: Some(PathBuf::from("/sr/b, with comma.qcow2")),
        read_only: true,
        kind: DiskKindRec::Disk,
        bootable: false,
        slot: 6,
    });
    r.disks.push(DiskRec { device: "hdc".into(), path: None, read_only: true, kind: DiskKindRec::Cdrom, bootable: false, slot: 2 });
    r.disks.push(DiskRec {
        device: "hdd".into(),
        path: Some(PathBuf::from("/iso/x.iso")),
        read_only: false,
        kind: DiskKindRec::Cdrom,
        bootable: false,
        slot: 3,
    });
    let args = build(&r, false);
    let blockdevs = json_values(&args, "-blockdev");
    assert_eq!(
        blockdevs,
        [
            json!({"driver": "file", "node-name": "file-disk4", "filename": "/sr/a.img", "read-only": false, "discard": "unmap"}),
            json!({"driver": "raw", "node-name": "fmt-disk4", "file": "file-disk4", "read-only": false}),
            json!({"driver": "file", "node-name": "file-disk6", "filename": "/sr/b, with comma.qcow2", "read-only": true}),
            json!({"driver": "qcow2", "node-name": "fmt-disk6", "file": "file-disk6", "read-only": true}),
            json!({"driver": "file", "node-name": "file-cd3", "filename": "/iso/x.iso", "read-only": true}),
            json!({"driver": "raw", "node-name": "fmt-cd3", "file": "file-cd3", "read-only": true}),
        ]
    );
    let devices = json_devices(&args);
    assert!(devices.contains(
        &json!({"driver": "virtio-blk-pci", "id": "disk4", "bus": "pci.0", "addr": "0x4", "drive": "fmt-disk4", "bootindex": 0})
    ));
    assert!(devices.contains(&json!({"driver": "virtio-blk-pci", "id": "disk6", "bus": "pci.0", "addr": "0x6", "drive": "fmt-disk6"})));
    assert!(devices.contains(&json!({"driver": "ide-cd", "id": "cd2", "bus": "ide.1", "unit": 0})));
    assert!(devices.contains(&json!({"driver": "ide-cd", "id": "cd3", "bus": "ide.1", "unit": 1, "drive": "fmt-cd3"})));
}

#[test]
fn cmdline_direct_kernel_boot_takes_no_bootindex() {
    let mut r = record();
    r.kernel = Some(PathBuf::from("/boot/vmlinuz"));
    r.ramdisk = Some(PathBuf::from("/boot/initrd"));
    r.cmdline = "console=ttyS0 root=/dev/vda, quiet".into();
    let args = build(&r, false);
    assert_eq!(values(&args, "-kernel"), ["/boot/vmlinuz"]);
    assert_eq!(values(&args, "-initrd"), ["/boot/initrd"]);
    assert_eq!(values(&args, "-append"), ["console=ttyS0 root=/dev/vda, quiet"]);
    assert!(!args.iter().any(|a| a.contains("bootindex")));
}

#[test]
fn cmdline_nics_hotplugged_cpus_and_incoming() {
    let mut r = record();
    r.nics.push(NicRec {
        device: "1".into(),
        mac: String::new(),
        mtu: 9000,
        backend: NetBackend::Bridge { bridge: "xenbr0".into() },
        slot: 7,
    });
    r.hotplugged_cpus.push(CpuSlot { id: "vcpu2".into(), driver: "qemu64-x86_64-cpu".into(), socket_id: 2, core_id: 0, thread_id: 0 });
    let args = build(&r, true);
    assert_eq!(
        json_values(&args, "-netdev"),
        [json!({"type": "user", "id": "net5"}), json!({"type": "bridge", "id": "net7", "br": "xenbr0"})]
    );
    let devices = json_devices(&args);
    assert!(devices.contains(
        &json!({"driver": "virtio-net-pci", "id": "nic5", "netdev": "net5", "bus": "pci.0", "addr": "0x5", "mac": "00:16:3e:00:00:01"})
    ));
    assert!(devices
        .contains(&json!({"driver": "virtio-net-pci", "id": "nic7", "netdev": "net7", "bus": "pci.0", "addr": "0x7", "host_mtu": 9000})));
    assert!(devices.contains(&json!({"driver": "qemu64-x86_64-cpu", "id": "vcpu2", "socket-id": 2, "core-id": 0, "thread-id": 0})));
    assert_eq!(values(&args, "-incoming"), ["defer"]);
    assert_eq!(args.iter().filter(|a| *a == "-S").count(), 1);
}

#[test]
fn device_placement_takes_free_slots_and_runs_out() {
    let mut r = record();
    assert_eq!(cmdline::free_pci_slot(&r), Some(6));
    for slot in 6..=cmdline::LAST_DEVICE_SLOT {
        r.disks.push(DiskRec { device: format!("d{slot}"), path: None, read_only: false, kind: DiskKindRec::Disk, bootable: false, slot });
    }
    assert_eq!(cmdline::free_pci_slot(&r), None);
    let mut r = record();
    assert_eq!(cmdline::ide_position(&r, "hdc"), Some(2));
    assert_eq!(cmdline::ide_position(&r, "xvdd"), Some(0));
    r.disks.push(DiskRec { device: "hdc".into(), path: None, read_only: true, kind: DiskKindRec::Cdrom, bootable: false, slot: 2 });
    assert_eq!(cmdline::ide_position(&r, "hdc"), Some(0), "a taken position falls back to the first free one");
    assert_eq!(cmdline::floppy_unit(&r), Some(0));
}

#[test]
fn suspend_header_round_trips_and_rejects_other_files() {
    let r = record();
    let header = state::encode_header(&r).unwrap();
    assert_eq!(header.len() as u64, state::HEADER_SIZE);
    assert_eq!(state::decode_header(&header).unwrap(), r);
    assert!(state::decode_header(b"QEVM\0\0\0\x03").unwrap_err().contains("not a xencim"));
    let mut huge = r.clone();
    huge.cmdline = "x".repeat(state::HEADER_SIZE as usize);
    assert!(state::encode_header(&huge).is_err());

    // On a file whose migration stream QEMU wrote from the header's end on.
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("vm.suspend");
    let mut body = vec![0u8; state::HEADER_SIZE as usize];
    body.extend(b"QEVM stream");
    std::fs::write(&image, &body).unwrap();
    state::write_header(&image, &r).unwrap();
    assert_eq!(state::read_header(&image).unwrap(), r);
    let bytes = std::fs::read(&image).unwrap();
    assert!(bytes.ends_with(b"QEVM stream"), "the stream after the header is untouched");
    assert!(state::read_header(&dir.path().join("missing")).is_err());
}

#[test]
fn persisted_record_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let p = Persisted { record: record(), domid: 7, pid: 1234, start_time: 1_700_000_000 };
    state::save(dir.path(), &p).unwrap();
    assert_eq!(state::load(dir.path()).unwrap(), p);
    std::fs::write(dir.path().join(state::PID_FILE), "4321\n").unwrap();
    assert_eq!(state::read_pidfile(dir.path()), Some(4321));
    std::fs::write(dir.path().join(state::PID_FILE), "junk").unwrap();
    assert_eq!(state::read_pidfile(dir.path()), None);
}

#[test]
fn disk_format_comes_from_the_name_not_the_content() {
    let mut d = record().disks[0].clone();
    assert_eq!(d.format(), "raw");
    d.path = Some(PathBuf::from("/sr/x.QCOW2"));
    assert_eq!(d.format(), "qcow2");
    d.path = Some(PathBuf::from("/sr/qcow2"));
    assert_eq!(d.format(), "raw");
}

#[test]
fn proc_parsers() {
    let mem = metrics::parse_meminfo("MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n");
    assert_eq!(mem, metrics::MemInfo { total: 24_576_000 * 1024, available: 20_000_000 * 1024 });
    let cpu = metrics::parse_cpuinfo(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2449.998\nflags\t\t: fpu vme\n\n\
         processor\t: 1\nvendor_id\t: Other\nmodel name\t: other\n",
    );
    assert_eq!(
        (cpu.count, cpu.vendor.as_str(), cpu.model_name.as_str(), cpu.mhz, cpu.flags.as_str()),
        (2, "AuthenticAMD", "AMD EPYC", 2450, "fpu vme")
    );
    // A thread name may hold spaces and parentheses.
    let stat = "4242 (CPU 0/TCG) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1500 250 0 0 20 0 3 0 100 0 0";
    assert_eq!(metrics::parse_task_ticks(stat), Some(1750));
    assert_eq!(metrics::parse_state(stat), Some('S'));
    assert_eq!(metrics::parse_state("1 (a) Z 0"), Some('Z'));
    assert_eq!(metrics::parse_task_ticks("garbage"), None);
}

#[test]
fn our_own_process_is_alive_and_measurable() {
    let me = std::process::id() as i32;
    assert!(metrics::alive(me));
    assert!(metrics::rss_bytes(me) > 0);
    assert!(!metrics::alive(0));
    assert!(!process::is_qemu_of(me, &Uuid::new_v4()));
}

#[test]
fn long_socket_paths_are_reached_through_the_directory() {
    let base = tempfile::tempdir().unwrap();
    let deep = base.path().join("d".repeat(60)).join("e".repeat(60));
    std::fs::create_dir_all(&deep).unwrap();
    let path = deep.join(state::QMP_SOCKET);
    assert!(path.as_os_str().len() > 108);
    // Bound through the same trick the backend uses to connect.
    let dir = std::fs::File::open(&deep).unwrap();
    use std::os::fd::AsRawFd;
    let listener = std::os::unix::net::UnixListener::bind(format!("/proc/self/fd/{}/{}", dir.as_raw_fd(), state::QMP_SOCKET)).unwrap();
    let client = process::connect_in(&deep, state::QMP_SOCKET).unwrap();
    let (server, _) = listener.accept().unwrap();
    (&client).write_all(b"x").unwrap();
    let mut byte = [0u8; 1];
    use std::io::Read;
    (&server).read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"x");
}

#[test]
fn versions_parse() {
    assert_eq!(process::parse_major_minor("10.0.2 (Debian 1:10.0.2+ds-2)"), Some((10, 0)));
    assert_eq!(process::parse_major_minor("9.1"), Some((9, 1)));
    assert_eq!(process::parse_major_minor("unknown"), None);
}

fn config_of(memory: u64) -> DomainConfig {
    DomainConfig {
        uuid: Uuid::new_v4(),
        name: "g".into(),
        memory_static_max: memory,
        memory_target: memory,
        vcpus_max: 2,
        vcpus_at_startup: 1,
        kernel: None,
        ramdisk: None,
        cmdline: String::new(),
        disks: Vec::new(),
        nics: Vec::new(),
    }
}

#[test]
fn validation_refuses_malformed_domains() {
    let ok = config_of(128 * MIB);
    validate_config(&ok, 2).unwrap();
    let cases: Vec<(DomainConfig, &str)> = vec![
        (DomainConfig { uuid: Uuid::nil(), ..ok.clone() }, "nil UUID"),
        (config_of(8 * MIB), "16 MiB"),
        (DomainConfig { memory_target: 0, ..ok.clone() }, "memory target"),
        (DomainConfig { vcpus_at_startup: 3, ..ok.clone() }, "vcpus_at_startup"),
        (DomainConfig { kernel: Some(PathBuf::from("/nonexistent/vmlinuz")), ..ok.clone() }, "kernel"),
        (
            DomainConfig {
                disks: vec![DiskConfig { device: "xvda".into(), path: None, read_only: false, kind: DiskKind::Disk, bootable: true }],
                ..ok.clone()
            },
            "no image",
        ),
        (
            DomainConfig {
                disks: vec![DiskConfig {
                    device: "xvda".into(),
                    path: Some(PathBuf::from("/nonexistent.img")),
                    read_only: false,
                    kind: DiskKind::Disk,
                    bootable: true,
                }],
                ..ok.clone()
            },
            "does not exist",
        ),
        (
            DomainConfig {
                nics: vec![NicConfig { device: "0".into(), mac: "01:00:00:00:00:01".into(), bridge: String::new(), mtu: 1500 }],
                ..ok.clone()
            },
            "multicast",
        ),
        (
            DomainConfig {
                nics: vec![NicConfig { device: "x".into(), mac: String::new(), bridge: String::new(), mtu: 1500 }],
                ..ok.clone()
            },
            "index",
        ),
    ];
    for (config, wanted) in cases {
        match validate_config(&config, 2) {
            Err(HypervisorError::Invalid(m)) => assert!(m.contains(wanted), "{m:?} should mention {wanted:?}"),
            other => panic!("{wanted}: expected Invalid, got {other:?}"),
        }
    }
    assert_eq!(
        validate_config(&DomainConfig { vcpus_max: 4, ..ok.clone() }, 2),
        Err(HypervisorError::NotEnoughPcpus { vcpus: 4, pcpus: 2 })
    );
    // An empty CD drive is fine.
    let cd = DiskConfig { device: "hdc".into(), path: None, read_only: true, kind: DiskKind::Cdrom, bootable: false };
    validate_config(&DomainConfig { disks: vec![cd], ..ok }, 2).unwrap();
}

#[test]
fn qemu_reasons_and_states_map_onto_the_trait() {
    assert_eq!(domain::shutdown_reason("guest-shutdown"), ShutdownReason::Poweroff);
    assert_eq!(domain::shutdown_reason("guest-reset"), ShutdownReason::Reboot);
    assert_eq!(domain::shutdown_reason("guest-panic"), ShutdownReason::Crash);
    assert_eq!(domain::shutdown_reason("host-signal"), ShutdownReason::Crash);
    assert_eq!(adopt::adopted_run_state("running"), Some(RunState::Running));
    assert_eq!(adopt::adopted_run_state("prelaunch"), Some(RunState::Paused));
    assert_eq!(adopt::adopted_run_state("io-error"), Some(RunState::Paused));
    assert_eq!(adopt::adopted_run_state("postmigrate"), None);
    assert_eq!(adopt::adopted_run_state("inmigrate"), None);
}

#[test]
fn reservations_charge_qemu_and_the_translation_cache() {
    let c = QemuConfig { vm_overhead: 32 * MIB, tcg_tb_size_mib: 64, ..QemuConfig::default() };
    assert_eq!(c.reservation(Accel::Tcg, 128 * MIB), 224 * MIB);
    assert_eq!(c.reservation(Accel::Kvm, 128 * MIB), 160 * MIB);
}

#[test]
fn probe_boot_sector_is_a_boot_sector() {
    let sector = probe::boot_sector();
    assert_eq!(sector.len(), 512);
    assert_eq!(&sector[510..], &[0x55, 0xaa]);
    assert!(sector.windows(15).any(|w| w == b"XENCIM-PROBE ok"));
}

/// The embedded bytes are `probe.S` assembled; checked where binutils is installed.
#[test]
fn probe_boot_sector_matches_its_source() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/qemu/probe.S");
    let dir = tempfile::tempdir().unwrap();
    let obj = dir.path().join("probe.o");
    let bin = dir.path().join("probe.bin");
    let assembled = std::process::Command::new("as").args(["--32", "-o"]).arg(&obj).arg(&src).status();
    if !matches!(assembled, Ok(s) if s.success()) {
        eprintln!("skipped: no GNU as to assemble probe.S");
        return;
    }
    let linked = std::process::Command::new("ld")
        .args(["-m", "elf_i386", "-Ttext=0x7c00", "--oformat=binary", "-o"])
        .arg(&bin)
        .arg(&obj)
        .status()
        .unwrap();
    assert!(linked.success());
    assert_eq!(std::fs::read(&bin).unwrap(), probe::boot_sector());
}
