//! The xm-style command line, as a person or a script runs it: the real binary against a real
//! daemon on ephemeral ports, with exit codes, printed words and the model's state checked.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use xenapi::rpc::xmlrpc::{call_bytes, parse_response};
use xenapi::value::Value;

const BIN: &str = env!("CARGO_BIN_EXE_xencim");

struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    state: PathBuf,
    xenapi: String,
    xenapi_tls: String,
}

fn start() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    let listeners = state.join("listeners.json");
    let child = Command::new(BIN)
        .args(["serve", "--state-dir"])
        .arg(&state)
        .args(["--xenapi", "127.0.0.1:0", "--xenapi-tls", "127.0.0.1:0", "--cim-http", "127.0.0.1:0", "--cim-https", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start xencim");
    let deadline = Instant::now() + Duration::from_secs(30);
    let json: serde_json::Value = loop {
        if let Ok(text) = std::fs::read_to_string(&listeners) {
            if let Ok(v) = serde_json::from_str(&text) {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "xencim did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let xenapi = json["xenapi"].as_str().unwrap().to_owned();
    let xenapi_tls = json["xenapi_tls"].as_str().unwrap().to_owned();
    Daemon { child, dir, state, xenapi, xenapi_tls }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

impl Daemon {
    fn url(&self) -> String {
        format!("http://{}/", self.xenapi)
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The command line as an administrator on the daemon's host runs it: no credentials of its
    /// own, so it uses the initial admin password from the state directory.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("HOME", self.home())
            .env("XENCIM_STATE_DIR", &self.state)
            .env("XENCIM_SERVER", self.url())
            .env_remove("XENCIM_USER")
            .env_remove("XENCIM_PASSWORD")
            .env_remove("XENCIM_CA_FILE")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a verb that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "xencim {args:?} failed ({:?}):\n{}{}", o.status.code(), text(&o.stdout), text(&o.stderr));
        text(&o.stdout)
    }

    /// Runs a verb that must fail with `code`; returns its stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(code), "xencim {args:?}:\n{}{}", text(&o.stdout), text(&o.stderr));
        text(&o.stderr)
    }

    fn password(&self) -> String {
        std::fs::read_to_string(self.state.join("initial-admin-password")).unwrap().trim().to_owned()
    }

    /// A raw Xen-API call, to check what the command line did.
    fn call(&self, method: &str, params: &[Value]) -> Value {
        let body = call_bytes(method, params);
        let mut conn = TcpStream::connect(&self.xenapi).unwrap();
        write!(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
            .unwrap();
        conn.write_all(&body).unwrap();
        let mut response = Vec::new();
        conn.read_to_end(&mut response).unwrap();
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        parse_response(&response[split..]).unwrap()
    }

    fn session(&self) -> Value {
        self.api_ok("session.login_with_password", &[Value::str("admin"), Value::str(self.password())])
    }

    fn api_ok(&self, method: &str, params: &[Value]) -> Value {
        let v = self.call(method, params);
        assert_eq!(v.member("Status"), Some(&Value::str("Success")), "{method}: {v:?}");
        v.member("Value").unwrap().clone()
    }

    /// The record of the VM with this name, if there is one.
    fn vm(&self, name: &str) -> Option<(String, Value)> {
        let s = self.session();
        let Value::Struct(all) = self.api_ok("VM.get_all_records", &[s]) else { panic!() };
        all.into_iter().find(|(_, r)| r.member("name_label") == Some(&Value::str(name)))
    }

    fn field(&self, name: &str, field: &str) -> String {
        let (_, r) = self.vm(name).unwrap_or_else(|| panic!("no VM {name}"));
        r.member(field).and_then(Value::as_str).unwrap_or("").to_owned()
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// An existing sparse image file.
    fn image(&self, name: &str, size: u64) -> PathBuf {
        let p = self.path(name);
        std::fs::File::create(&p).unwrap().set_len(size).unwrap();
        p
    }
}

/// The row of `list` for a VM, split on whitespace.
fn list_row(out: &str, name: &str) -> Option<Vec<String>> {
    out.lines().map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>()).find(|w| w.first().map(String::as_str) == Some(name))
}

/// A config with two disks (an existing file, and a new one made from size=) and two vifs.
fn two_of_each(d: &Daemon, name: &str) -> PathBuf {
    let existing = d.image(&format!("{name}-root.img"), 64 << 20);
    let new = d.path(&format!("{name}-data.img"));
    d.write(
        &format!("{name}.cfg"),
        &format!(
            "# made by tests/cli.rs\nname = \"{name}\"\nmemory = 256\nvcpus = 2\nmaxvcpus = 4\n\
             disk = [ 'file:{},xvda,w',\n         'vdev=xvdb, access=rw, size=1G, target={}' ]\n\
             vif = [ 'mac=00:16:3e:0a:0b:01, bridge=xenbr0', 'bridge=xenbr0' ]\non_crash = 'preserve'\n",
            existing.display(),
            new.display()
        ),
    )
}

#[test]
fn every_verb_against_a_real_daemon() {
    let d = start();
    let cfg = two_of_each(&d, "vm1");
    let cfg = cfg.to_str().unwrap();

    let out = d.ok(&["new", cfg]);
    assert!(out.contains("Defined vm1"), "{out}");
    let uuid = d.field("vm1", "uuid");
    assert_eq!(d.field("vm1", "power_state"), "Halted");

    let out = d.ok(&["start", "vm1"]);
    assert!(out.starts_with("Started vm1, domain "), "{out}");
    assert_eq!(d.field("vm1", "power_state"), "Running");
    // The raw code and the words: a running VM cannot start again.
    let err = d.fails(&["start", "vm1"], 1);
    assert_eq!(err.trim(), "Error: VM_BAD_POWER_STATE: vm1 is running, expected halted");

    let row = list_row(&d.ok(&["list"]), "vm1").expect("vm1 in list");
    assert_eq!(row[2..], ["256", "2", "r-----", "-"]);
    assert_eq!(row[1], d.field("vm1", "domid"));
    assert!(list_row(&d.ok(&["list"]), "Domain-0").is_some(), "dom0 is listed, as xm does");

    d.ok(&["pause", "vm1"]);
    assert_eq!(list_row(&d.ok(&["list"]), "vm1").unwrap()[4], "--p---");
    d.ok(&["unpause", &uuid[..8]]);
    assert_eq!(d.field("vm1", "power_state"), "Running");

    assert!(d.ok(&["mem-set", "vm1", "128"]).contains("128 MiB"));
    assert_eq!(list_row(&d.ok(&["list"]), "vm1").unwrap()[2], "128");
    assert_eq!(d.field("vm1", "memory_dynamic_max"), (128u64 << 20).to_string());
    assert!(d.ok(&["vcpu-set", "vm1", "3"]).contains("3 vCPUs"));
    assert_eq!(list_row(&d.ok(&["list"]), "vm1").unwrap()[3], "3");
    d.fails(&["vcpu-set", "vm1", "9"], 1);

    // Hot-plug a disk (xm's separate words) and a new one from size=; then take them out.
    let extra = d.image("extra.img", 8 << 20);
    let out = d.ok(&["block-attach", "vm1", &format!("file:{}", extra.display()), "xvdc", "r"]);
    assert!(out.contains("as xvdc"), "{out}");
    let new_disk = d.path("hot.img");
    d.ok(&["block-attach", "vm1", &format!("vdev=xvdd, size=16M, target={}", new_disk.display())]);
    let long = d.ok(&["list", "--long", "vm1"]);
    assert!(long.contains("xvdc:") && long.contains("xvdd:"), "{long}");
    assert!(long.contains(&format!("VDI_location: {}", extra.display())), "{long}");
    let err = d.fails(&["block-attach", "vm1", "file:/nonexistent/disk.img,xvde,w"], 1);
    assert!(err.contains("/nonexistent/disk.img does not exist") && err.contains("size="), "{err}");
    d.ok(&["block-detach", "vm1", "xvdc"]);
    d.ok(&["block-detach", "vm1", "3"]);
    assert!(extra.exists(), "detaching keeps the image");
    let err = d.fails(&["block-detach", "vm1", "xvdq"], 1);
    assert!(err.contains("vm1 has no disk xvdq") && err.contains("xvda, xvdb"), "{err}");

    let out = d.ok(&["network-attach", "vm1", "mac=00:16:3e:0a:0b:0c", "bridge=xenbr0"]);
    assert!(out.contains("MAC 00:16:3e:0a:0b:0c"), "{out}");
    assert!(d.ok(&["list", "--long", "vm1"]).contains("MAC: 00:16:3e:0a:0b:0c"));
    d.ok(&["network-detach", "vm1", "00:16:3E:0A:0B:0C"]);
    assert!(!d.ok(&["list", "--long", "vm1"]).contains("00:16:3e:0a:0b:0c"));
    let err = d.fails(&["network-attach", "vm1", "bridge=nosuchbr"], 1);
    assert!(err.contains("no network has the bridge 'nosuchbr'"), "{err}");

    let out = d.ok(&["console-info", "vm1"]);
    assert!(out.contains("protocol: vt100") && out.contains(&uuid), "{out}");
    let up = d.ok(&["uptime"]);
    assert!(up.lines().next().unwrap().contains("Uptime"), "{up}");
    let row = list_row(&up, "vm1").unwrap();
    assert!(row.last().unwrap().contains(':'), "{up}");
    let info = d.ok(&["info"]);
    assert!(info.contains("nr_cpus") && info.contains("total_memory") && info.contains("hypervisor             : sim"), "{info}");
    let info: serde_json::Value = serde_json::from_str(&d.ok(&["info", "--json"])).unwrap();
    assert_eq!(info["nr_cpus"], 8);
    assert_eq!(info["total_memory"], 16384);

    let domid = d.field("vm1", "domid");
    assert!(d.ok(&["reboot", "vm1"]).contains("Rebooted vm1"));
    assert_ne!(d.field("vm1", "domid"), domid, "a reboot makes a new domain");

    d.ok(&["suspend", "vm1"]);
    assert_eq!(d.field("vm1", "power_state"), "Suspended");
    assert!(list_row(&d.ok(&["list"]), "vm1").is_none(), "a suspended VM has no domain");
    assert_eq!(list_row(&d.ok(&["list", "--all"]), "vm1").unwrap()[3], "---s--");
    d.ok(&["resume", "vm1"]);
    assert_eq!((d.field("vm1", "power_state"), d.field("vm1", "uuid")), ("Running".to_owned(), uuid.clone()));

    d.ok(&["shutdown", "--wait", "vm1"]);
    assert_eq!(d.field("vm1", "power_state"), "Halted");
    d.ok(&["start", "--paused", "vm1"]);
    assert_eq!(d.field("vm1", "power_state"), "Paused");
    d.ok(&["unpause", "vm1"]);
    // Without --wait the command returns while the guest powers off.
    assert!(d.ok(&["shutdown", "vm1"]).contains("Shutting down vm1"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.field("vm1", "power_state") != "Halted" {
        assert!(Instant::now() < deadline, "vm1 did not halt");
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = d.fails(&["shutdown", "vm1"], 1);
    assert_eq!(err.trim(), "Error: VM_BAD_POWER_STATE: vm1 is halted, expected running");

    d.ok(&["start", "vm1"]);
    d.ok(&["shutdown", "--force", "--wait", "vm1"]);
    assert_eq!(d.field("vm1", "power_state"), "Halted");
    d.ok(&["start", "vm1"]);
    d.ok(&["destroy", "vm1"]);
    assert_eq!(d.field("vm1", "power_state"), "Halted");
    let err = d.fails(&["console-info", "vm1"], 1);
    assert!(err.contains("vm1 is halted"), "{err}");
    // Halted, a VM's settings change whole.
    d.ok(&["mem-set", "vm1", "1G"]);
    assert_eq!(d.field("vm1", "memory_static_max"), (1u64 << 30).to_string());
    d.ok(&["vcpu-set", "vm1", "6"]);
    assert_eq!((d.field("vm1", "VCPUs_max"), d.field("vm1", "VCPUs_at_startup")), ("6".to_owned(), "6".to_owned()));
    d.ok(&["delete", "vm1"]);
    assert!(d.vm("vm1").is_none());

    let out = d.ok(&["create", "--paused", cfg]);
    assert!(out.contains("Started vm1") && out.contains("paused"), "{out}");
    assert_eq!(d.field("vm1", "power_state"), "Paused");
    // The same config finds the same disks again: nothing new was registered or made.
    let s = d.session();
    let Value::Struct(vdis) = d.api_ok("VDI.get_all_records", &[s]) else { panic!() };
    let disks: Vec<String> = vdis
        .iter()
        .filter(|(_, r)| r.member("type") == Some(&Value::str("user")))
        .map(|(_, r)| format!("{:?}", r.member("name_label")))
        .collect();
    assert_eq!(disks.len(), 4, "root, data, extra and hot images: {disks:?}");
}

#[test]
fn new_then_delete_a_halted_vm_by_name() {
    let d = start();
    let cfg = d.write("small.cfg", "name = 'small'\nmemory = 64\n");
    d.ok(&["new", cfg.to_str().unwrap()]);
    assert_eq!(d.field("small", "power_state"), "Halted");
    assert_eq!(d.field("small", "memory_static_max"), (64u64 << 20).to_string());
    let err = d.fails(&["new", cfg.to_str().unwrap()], 1);
    assert!(err.contains("a VM named 'small' already exists"), "{err}");
    let out = d.ok(&["delete", "small"]);
    assert!(out.contains("Deleted small"), "{out}");
    assert!(d.vm("small").is_none());
    let err = d.fails(&["delete", "small"], 1);
    assert!(err.contains("no VM is named 'small'"), "{err}");
}

#[test]
fn create_shows_two_disks_and_two_vifs_in_list_long() {
    let d = start();
    let cfg = two_of_each(&d, "web");
    let out = d.ok(&["create", cfg.to_str().unwrap()]);
    assert!(out.contains("Started web"), "{out}");
    let long = d.ok(&["list", "--long"]);
    assert!(long.contains("web:\n"), "{long}");
    for needle in [
        "VBD_records:",
        "    xvda:",
        "    xvdb:",
        &format!("VDI_location: {}", d.path("web-root.img").display()),
        "VDI_virtual_size: 1073741824",
        "VIF_records:",
        "MAC: 00:16:3e:0a:0b:01",
        "network_bridge: xenbr0",
        "actions_after_crash: preserve",
        "currently_attached: true",
    ] {
        assert!(long.contains(needle), "{needle} not in:\n{long}");
    }
    let json: serde_json::Value = serde_json::from_str(&d.ok(&["list", "--long", "--json", "web"])).unwrap();
    let web = &json[0];
    assert_eq!(web["name_label"], "web");
    let vbds = web["VBD_records"].as_object().unwrap();
    assert_eq!(vbds.keys().collect::<Vec<_>>(), ["xvda", "xvdb"]);
    assert_eq!(vbds["xvda"]["bootable"], true);
    let vifs = web["VIF_records"].as_object().unwrap();
    assert_eq!(vifs.len(), 2);
    assert_eq!(vifs["0"]["MAC"], "00:16:3e:0a:0b:01");
    let mac1 = vifs["1"]["MAC"].as_str().unwrap();
    assert!(mac1.starts_with("00:16:3e:") && mac1 != "00:16:3e:0a:0b:01", "{mac1}");
    // The new disk is a file of the daemon's storage, the existing one is the user's own file.
    assert!(vbds["xvdb"]["VDI_location"].as_str().unwrap().starts_with(d.state.to_str().unwrap()));
    let rows: serde_json::Value = serde_json::from_str(&d.ok(&["list", "--json"])).unwrap();
    let web_row = rows.as_array().unwrap().iter().find(|r| r["name"] == "web").unwrap();
    assert_eq!(
        (web_row["state"].as_str(), web_row["memory_mib"].as_i64(), web_row["vcpus"].as_i64()),
        (Some("r-----"), Some(256), Some(2))
    );
}

#[test]
fn suspend_and_resume_keep_the_uuid() {
    let d = start();
    let cfg = d.write("s.cfg", "name = 'sleepy'\nmemory = 128\n");
    d.ok(&["create", cfg.to_str().unwrap()]);
    let uuid = d.field("sleepy", "uuid");
    d.ok(&["suspend", "sleepy"]);
    assert_eq!(d.field("sleepy", "power_state"), "Suspended");
    d.ok(&["resume", "--paused", &uuid]);
    assert_eq!((d.field("sleepy", "uuid"), d.field("sleepy", "power_state")), (uuid.clone(), "Paused".to_owned()));
    let row = list_row(&d.ok(&["list"]), "sleepy").unwrap();
    assert_eq!(row[4], "--p---");
    let json: serde_json::Value = serde_json::from_str(&d.ok(&["list", "--json", "sleepy"])).unwrap();
    assert_eq!(json[0]["uuid"], uuid.as_str());
}

#[test]
fn list_hides_halted_vms_unless_all() {
    let d = start();
    d.ok(&["new", d.write("a.cfg", "name = 'halted1'\n").to_str().unwrap()]);
    d.ok(&["create", d.write("b.cfg", "name = 'running1'\n").to_str().unwrap()]);
    let plain = d.ok(&["list"]);
    assert!(list_row(&plain, "running1").is_some() && list_row(&plain, "halted1").is_none(), "{plain}");
    let all = d.ok(&["list", "--all"]);
    assert_eq!(list_row(&all, "halted1").unwrap()[1..], ["128", "1", "------", "-"]);
    assert!(list_row(&all, "running1").is_some());
    // Named VMs show whatever their state.
    assert!(list_row(&d.ok(&["list", "halted1"]), "halted1").is_some());
    let header = plain.lines().next().unwrap().split_whitespace().collect::<Vec<_>>();
    assert_eq!(header, ["Name", "ID", "Mem", "VCPUs", "State", "Time(s)"]);
    let names: Vec<String> = plain.lines().skip(1).map(|l| l.split_whitespace().next().unwrap().to_owned()).collect();
    assert_eq!(names, ["Domain-0", "running1"]);
}

#[test]
fn unknown_and_ambiguous_vms() {
    let d = start();
    let err = d.fails(&["start", "ghost"], 1);
    assert!(err.contains("no VM is named 'ghost'"), "{err}");
    // The Xen-API allows two VMs of one name; the command line asks which one is meant.
    let s = d.session();
    let mut uuids = Vec::new();
    for _ in 0..2 {
        let rec = Value::Struct(vec![
            ("name_label".into(), Value::str("twin")),
            ("memory_static_max".into(), Value::str("134217728")),
            ("memory_dynamic_max".into(), Value::str("134217728")),
            ("memory_dynamic_min".into(), Value::str("134217728")),
        ]);
        let vm = d.api_ok("VM.create", &[s.clone(), rec]);
        uuids.push(d.api_ok("VM.get_uuid", &[s.clone(), vm]).as_str().unwrap().to_owned());
    }
    let err = d.fails(&["start", "twin"], 1);
    assert!(err.contains("'twin' is ambiguous: 2 VMs match"), "{err}");
    assert!(uuids.iter().all(|u| err.contains(u.as_str())), "{err}");
    d.ok(&["start", &uuids[1]]);
    let running = d.ok(&["list"]);
    assert_eq!(running.lines().filter(|l| l.starts_with("twin")).count(), 1);
    d.ok(&["delete", &uuids[0]]);
    d.ok(&["destroy", "twin"]);
}

#[test]
fn config_file_errors_name_the_place_and_leave_nothing_behind() {
    let d = start();
    let bad = d.write("bad.cfg", "name = 'b'\nmemory = 256\ndisk = [ 'file:/a,xvda,w'\n         'oops' 3 ]\n");
    let err = d.fails(&["new", bad.to_str().unwrap()], 1);
    assert!(err.contains(&format!("{}:4:17: expected ',' or ']' in the list, found a number", bad.display())), "{err}");
    let missing = d.write("missing.cfg", "name = 'm'\ndisk = [ 'file:/no/such/image.img,xvda,w' ]\n");
    let err = d.fails(&["new", missing.to_str().unwrap()], 1);
    assert!(err.contains("/no/such/image.img does not exist"), "{err}");
    assert!(d.vm("m").is_none(), "a failed new leaves no VM");
    let huge = d.write("huge.cfg", "name = 'huge'\nmemory = 1048576\n");
    let err = d.fails(&["create", huge.to_str().unwrap()], 1);
    assert!(err.contains("Error: HOST_NOT_ENOUGH_FREE_MEMORY: the host has"), "{err}");
    assert!(d.vm("huge").is_none(), "a create that cannot start leaves no VM");
    let out = d.run(&["new", d.write("w.cfg", "name = 'w'\ncolour = 'blue'\n").to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("w.cfg:2:1: unknown setting 'colour' is ignored"), "{}", text(&out.stderr));
    d.fails(&["new", d.path("absent.cfg").to_str().unwrap()], 1);
}

#[test]
fn credentials_and_reachability() {
    let d = start();
    let mut wrong =
        d.command(&["--user", "admin", "--password-stdin", "list"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wrong.stdin.take().unwrap().write_all(b"not the password\n").unwrap();
    let o = wrong.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = text(&o.stderr);
    assert!(
        err.contains("SESSION_AUTHENTICATION_FAILED") && err.contains("refused user admin") && err.contains("wrong user name or password"),
        "{err}"
    );

    let o = d
        .command(&["list"])
        .env("XENCIM_USER", "admin")
        .env("XENCIM_PASSWORD", d.password())
        .env_remove("XENCIM_STATE_DIR")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));

    // Away from the daemon's state directory there are no credentials to find.
    let o = d.command(&["list"]).env("XENCIM_STATE_DIR", d.path("elsewhere")).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o.stderr).contains("no password"), "{}", text(&o.stderr));

    let creds = d.home().join(".config/xencim/credentials");
    std::fs::create_dir_all(creds.parent().unwrap()).unwrap();
    std::fs::write(&creds, format!("user = \"admin\"\npassword = \"{}\"\n", d.password())).unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = d.fails(&["list"], 3);
    assert!(err.contains("refusing to use") && err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = d.command(&["list"]).env("XENCIM_STATE_DIR", d.path("elsewhere")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    std::fs::remove_file(&creds).unwrap();

    let err = d.fails(&["--server", "http://127.0.0.1:1/", "list"], 3);
    assert!(err.contains("cannot reach the Xen-API server at http://127.0.0.1:1/"), "{err}");
    // Options after the verb work as well as before it.
    let err = d.fails(&["list", "--server", "http://127.0.0.1:1/"], 3);
    assert!(err.contains("cannot reach"), "{err}");

    // HTTPS: the daemon's own certificate is trusted on its host; elsewhere it must be given.
    let tls = format!("https://{}/", d.xenapi_tls);
    assert!(d.ok(&["--server", &tls, "list"]).contains("Domain-0"));
    let pem = d.state.join("tls/server.pem");
    let o = d
        .command(&["list", "--server", &tls])
        .env("XENCIM_STATE_DIR", d.path("elsewhere"))
        .env("XENCIM_USER", "admin")
        .env("XENCIM_PASSWORD", d.password())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o.stderr).contains("certificate verify failed") && text(&o.stderr).contains("--ca-file"), "{}", text(&o.stderr));
    for extra in [vec!["--ca-file", pem.to_str().unwrap()], vec!["--insecure"]] {
        let mut args = vec!["list", "--server", &tls];
        args.extend(extra);
        let o = d
            .command(&args)
            .env("XENCIM_STATE_DIR", d.path("elsewhere"))
            .env("XENCIM_USER", "admin")
            .env("XENCIM_PASSWORD", d.password())
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
    }
}

#[test]
fn vdi_introduce_registers_files_for_admins_only() {
    let d = start();
    let s = d.session();
    let sr = d.api_ok("pool.get_default_SR", &[s.clone(), d.api_ok("pool.get_all", std::slice::from_ref(&s)).clone_first()]);
    let file = d.image("mine.img", 3 << 20);
    let introduce = |session: &Value, location: &str| {
        d.call(
            "VDI.introduce",
            &[
                session.clone(),
                Value::str(""),
                Value::str("mine"),
                Value::str(""),
                sr.clone(),
                Value::str("user"),
                Value::Bool(false),
                Value::Bool(false),
                Value::Struct(vec![]),
                Value::str(location),
            ],
        )
    };
    let error = |v: Value| match v.member("ErrorDescription") {
        Some(Value::Array(a)) => a.iter().map(|x| x.as_str().unwrap_or("").to_owned()).collect::<Vec<_>>(),
        _ => panic!("{v:?}"),
    };
    let ok = introduce(&s, file.to_str().unwrap());
    let vdi = ok.member("Value").unwrap_or_else(|| panic!("{ok:?}")).clone();
    let rec = d.api_ok("VDI.get_record", &[s.clone(), vdi.clone()]);
    assert_eq!(rec.member("virtual_size"), Some(&Value::str((3u64 << 20).to_string())));
    assert_eq!(rec.member("managed"), Some(&Value::Bool(false)));
    assert_eq!(rec.member("location"), Some(&Value::str(file.to_str().unwrap())));
    assert_eq!(error(introduce(&s, file.to_str().unwrap()))[0], "LOCATION_NOT_UNIQUE");
    assert_eq!(
        error(introduce(&s, "/no/such/file"))[..3],
        ["VDI_LOCATION_MISSING".to_owned(), sr.as_str().unwrap().to_owned(), "/no/such/file".to_owned()]
    );
    assert_eq!(error(introduce(&s, "relative.img"))[0], "INVALID_VALUE");
    d.api_ok("VDI.destroy", &[s.clone(), vdi]);
    assert!(file.exists(), "destroying an introduced VDI keeps the user's file");

    let mut add = Command::new(BIN)
        .args(["user", "add", "op", "--role", "vm-operator", "--password-stdin", "--state-dir"])
        .arg(&d.state)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"op password\n").unwrap();
    assert!(add.wait().unwrap().success());
    let op = d.api_ok("session.login_with_password", &[Value::str("op"), Value::str("op password")]);
    assert_eq!(error(introduce(&op, file.to_str().unwrap()))[0], "RBAC_PERMISSION_DENIED");
    // So a vm-operator defines VMs with new disks, not with files of the host.
    let cfg = d.write("op.cfg", &format!("name='opvm'\ndisk=['file:{},xvda,w']\n", file.display()));
    let o = d.command(&["new", cfg.to_str().unwrap()]).env("XENCIM_USER", "op").env("XENCIM_PASSWORD", "op password").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("Error: RBAC_PERMISSION_DENIED: VDI.introduce registers a file of the host"), "{}", text(&o.stderr));
    assert!(d.vm("opvm").is_none());
    let cfg = d.write("op2.cfg", &format!("name='opvm'\ndisk=['vdev=xvda, size=32M, target={}']\n", d.path("op-new.img").display()));
    let o = d.command(&["new", cfg.to_str().unwrap()]).env("XENCIM_USER", "op").env("XENCIM_PASSWORD", "op password").output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
}

trait First {
    fn clone_first(&self) -> Value;
}

impl First for Value {
    fn clone_first(&self) -> Value {
        match self {
            Value::Array(a) => a[0].clone(),
            other => panic!("not an array: {other:?}"),
        }
    }
}

#[test]
fn usage_help_man_and_completions() {
    let o = Command::new(BIN).args(["start"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "a usage error exits 2");
    let o = Command::new(BIN).args(["frobnicate"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let help = text(&Command::new(BIN).arg("--help").output().unwrap().stdout);
    assert!(help.contains("Exit codes") && help.contains("list") && help.contains("--password-stdin"), "{help}");
    for verb in [
        "new",
        "create",
        "delete",
        "start",
        "shutdown",
        "destroy",
        "reboot",
        "pause",
        "unpause",
        "suspend",
        "resume",
        "list",
        "mem-set",
        "vcpu-set",
        "block-attach",
        "block-detach",
        "network-attach",
        "network-detach",
        "console-info",
        "uptime",
        "info",
    ] {
        let o = Command::new(BIN).args([verb, "--help"]).output().unwrap();
        let h = text(&o.stdout);
        assert!(
            o.status.success() && h.contains("Example") && h.contains(&format!("xencim {verb}")) && h.contains("--server"),
            "{verb}:\n{h}"
        );
    }
    let man = Command::new(BIN).arg("man").output().unwrap();
    assert!(man.status.success() && text(&man.stdout).contains(".TH xencim"), "{}", text(&man.stdout));
    let dir = tempfile::tempdir().unwrap();
    assert!(Command::new(BIN).arg("man").arg(dir.path()).output().unwrap().status.success());
    assert!(dir.path().join("xencim.1").exists() && dir.path().join("xencim-block-attach.1").exists());
    let bash = Command::new(BIN).args(["completions", "bash"]).output().unwrap();
    assert!(bash.status.success() && text(&bash.stdout).contains("network-detach"));
    assert_eq!(Command::new(BIN).args(["completions", "tcsh"]).output().unwrap().status.code(), Some(2));
}
