//! The real binary over real sockets: start on ephemeral ports, speak XML-RPC with the
//! project's own codec, stop with SIGTERM, start again over the same state.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xenapi::rpc::xmlrpc::{call_bytes, parse_response};
use xenapi::value::Value;

struct Daemon {
    child: Child,
    addr: String,
}

fn start(state: &Path) -> Daemon {
    let listeners = state.join("listeners.json");
    let _ = std::fs::remove_file(&listeners);
    let child = Command::new(env!("CARGO_BIN_EXE_xencim"))
        .args(["serve", "--state-dir"])
        .arg(state)
        .args(["--xenapi", "127.0.0.1:0", "--xenapi-tls", "127.0.0.1:0", "--cim-http", "127.0.0.1:0", "--cim-https", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start xencim");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !listeners.exists() {
        assert!(Instant::now() < deadline, "xencim did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(20));
    let text = std::fs::read_to_string(&listeners).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    Daemon { child, addr: json["xenapi"].as_str().unwrap().to_owned() }
}

impl Daemon {
    fn call(&self, method: &str, params: &[Value]) -> Value {
        let body = call_bytes(method, params);
        let mut conn = TcpStream::connect(&self.addr).unwrap();
        write!(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
            .unwrap();
        conn.write_all(&body).unwrap();
        let mut response = Vec::new();
        conn.read_to_end(&mut response).unwrap();
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(response.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&response));
        parse_response(&response[split..]).unwrap()
    }

    fn ok(&self, method: &str, params: &[Value]) -> Value {
        let v = self.call(method, params);
        assert_eq!(v.member("Status"), Some(&Value::str("Success")), "{method}: {v:?}");
        v.member("Value").unwrap().clone()
    }

    fn stop(mut self) -> i32 {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

fn password(state: &Path) -> String {
    std::fs::read_to_string(state.join("initial-admin-password")).unwrap().trim().to_owned()
}

fn temp_state() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    (dir, state)
}

#[test]
fn a_vm_survives_a_restart_and_sigterm_stops_cleanly() {
    let (_dir, state) = temp_state();
    let d = start(&state);
    let pw = password(&state);
    let s = d.ok("session.login_with_password", &[Value::str("admin"), Value::str(pw.clone())]);
    let record = Value::Struct(vec![
        ("name_label".into(), Value::str("kept")),
        ("memory_static_max".into(), Value::str("268435456")),
        ("memory_dynamic_max".into(), Value::str("268435456")),
        ("memory_dynamic_min".into(), Value::str("268435456")),
    ]);
    let vm = d.ok("VM.create", &[s.clone(), record]);
    d.ok("VM.start", &[s.clone(), vm.clone(), Value::Bool(false), Value::Bool(false)]);
    assert_eq!(d.ok("VM.get_power_state", &[s.clone(), vm.clone()]), Value::str("Running"));
    assert_eq!(d.stop(), 0, "SIGTERM must stop the daemon cleanly");

    let d = start(&state);
    let s = d.ok("session.login_with_password", &[Value::str("admin"), Value::str(pw)]);
    assert_eq!(d.ok("VM.get_name_label", &[s.clone(), vm.clone()]), Value::str("kept"));
    // The sim's domain ended with the old process: the model reconciled it to Halted.
    assert_eq!(d.ok("VM.get_power_state", &[s.clone(), vm.clone()]), Value::str("Halted"));
    let failure = d.call("VM.pause", &[s, vm.clone()]);
    assert_eq!(failure.member("Status"), Some(&Value::str("Failure")));
    assert_eq!(
        failure.member("ErrorDescription"),
        Some(&Value::Array(vec![Value::str("VM_BAD_POWER_STATE"), vm, Value::str("running"), Value::str("halted")]))
    );
    d.stop();
}

#[test]
fn users_added_from_the_command_line_can_log_in_at_once() {
    let (_dir, state) = temp_state();
    let d = start(&state);
    let mut add = Command::new(env!("CARGO_BIN_EXE_xencim"))
        .args(["user", "add", "carol", "--role", "read-only", "--password-stdin", "--state-dir"])
        .arg(&state)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"carols secret\n").unwrap();
    assert!(add.wait().unwrap().success());
    let s = d.ok("session.login_with_password", &[Value::str("carol"), Value::str("carols secret")]);
    let vms = d.ok("VM.get_all", std::slice::from_ref(&s));
    let Value::Array(vms) = vms else { panic!("VM.get_all is an array") };
    let denied = d.call("VM.start", &[s, vms[0].clone(), Value::Bool(false), Value::Bool(false)]);
    let Some(Value::Array(desc)) = denied.member("ErrorDescription") else { panic!("{denied:?}") };
    assert_eq!(desc[0], Value::str("RBAC_PERMISSION_DENIED"));
    let wrong = d.call("session.login_with_password", &[Value::str("carol"), Value::str("nope")]);
    let Some(Value::Array(desc)) = wrong.member("ErrorDescription") else { panic!("{wrong:?}") };
    assert_eq!(desc[..2], [Value::str("SESSION_AUTHENTICATION_FAILED"), Value::str("carol")]);
    d.stop();
}
