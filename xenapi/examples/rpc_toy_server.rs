//! A Xen-API door over a toy dispatcher, for poking at the wire with real clients without the
//! model: one user `root`/`secret`, one VM, sessions checked like xapi checks them.
//!
//! `cargo run -p xenapi --example rpc_toy_server [ADDR:PORT] [--tls DIR]` then, in Python,
//! `XenAPI.Session('http://ADDR:PORT/').xenapi.login_with_password('root', 'secret')`.
//! With `--tls DIR` it serves HTTPS with a self-signed certificate kept in DIR.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use xenapi::rpc::{CallContext, Dispatch, Outcome};
use xenapi::value::Value;

#[derive(Default)]
struct Toy {
    sessions: Mutex<HashSet<String>>,
    next: Mutex<u64>,
}

fn failure(desc: &[&str]) -> Outcome {
    Outcome::Failure(desc.iter().map(|s| s.to_string()).collect())
}

impl Dispatch for Toy {
    fn call(&self, method: &str, params: Vec<Value>, _ctx: &CallContext) -> Outcome {
        let arg = |i: usize| params.get(i).and_then(Value::as_str).unwrap_or("").to_owned();
        match method {
            "system.listMethods" => {
                return Outcome::Bare(Value::from(vec!["session.login_with_password", "session.logout", "VM.get_all_records"]))
            }
            "session.login_with_password" | "session.slave_local_login_with_password" => {
                if arg(0) != "root" || arg(1) != "secret" {
                    return failure(&["SESSION_AUTHENTICATION_FAILED", &arg(0), "Authentication failure"]);
                }
                let mut n = self.next.lock().unwrap();
                *n += 1;
                let s = format!("OpaqueRef:toy-session-{n}");
                self.sessions.lock().unwrap().insert(s.clone());
                return Outcome::Success(Value::Str(s));
            }
            _ => {}
        }
        let session = arg(0);
        if !self.sessions.lock().unwrap().contains(&session) {
            return failure(&["SESSION_INVALID", &session]);
        }
        match method.replace('_', ".").as_str() {
            "session.logout" | "session.local.logout" => {
                self.sessions.lock().unwrap().remove(&session);
                Outcome::Success(Value::void())
            }
            "VM.get.all.records" => Outcome::Success(Value::Struct(vec![(
                "OpaqueRef:vm1".into(),
                Value::Struct(vec![
                    ("uuid".into(), Value::str("11111111-2222-3333-4444-555555555555")),
                    ("name_label".into(), Value::str("vm1 <&>")),
                    ("power_state".into(), Value::str("Halted")),
                    ("memory_static_max".into(), Value::Int(268435456)),
                    ("VCPUs_max".into(), Value::Int(2)),
                    ("is_a_template".into(), Value::Bool(false)),
                    ("start_time".into(), Value::DateTime("20240102T03:04:05Z".into())),
                    ("progress".into(), Value::Float(0.25)),
                    ("other_config".into(), Value::Struct(vec![("k".into(), Value::str("v"))])),
                    ("VBDs".into(), Value::Array(vec![])),
                ]),
            )])),
            "echo" => Outcome::Success(Value::Array(params[1..].to_vec())),
            _ => failure(&["MESSAGE_METHOD_UNKNOWN", method]),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.iter().find(|a| !a.starts_with("--") && a.contains(':')).cloned().unwrap_or("127.0.0.1:0".into());
    let tls = match args.iter().position(|a| a == "--tls") {
        Some(i) => {
            let dir = std::path::PathBuf::from(args.get(i + 1).expect("--tls DIR"));
            let (cert, key) = httpd::ensure_self_signed(&dir, "localhost")?;
            println!("certificate {}", cert.display());
            Some(httpd::TlsAcceptor::from_pem_files(&cert, &key)?)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}{}", listener.local_addr()?, if tls.is_some() { " (TLS)" } else { "" });
    let shutdown = httpd::Shutdown::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.trigger();
    });
    let handler = xenapi::rpc::handler(Arc::new(Toy::default()));
    httpd::serve(listener, tls, handler, httpd::Limits::default(), shutdown).await;
    Ok(())
}
