//! Encode throughput of the Xen-API door: a `VM.get_all_records` answer of 10,000 VMs with about
//! 100 fields each, written as XML-RPC and as JSON-RPC. Prints timings; asserts nothing.
//!
//! `cargo run --release -p xenapi --example rpc_encode [VMS]`

use std::time::{Duration, Instant};

use xenapi::rpc::{jsonrpc, xmlrpc, Outcome};
use xenapi::value::Value;

fn uuid(i: usize, salt: u32) -> String {
    format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", i as u32 ^ salt, i % 0xffff, i % 0xfff, salt % 0xfff, i * 7919)
}

/// A record shaped like a VM's: mostly short strings and refs, some ints, bools, floats,
/// datetimes, sets and maps.
fn record(i: usize) -> Value {
    let mut m: Vec<(String, Value)> = Vec::with_capacity(100);
    m.push(("uuid".into(), Value::Str(uuid(i, 1))));
    m.push(("name_label".into(), Value::Str(format!("vm-{i:05}"))));
    m.push(("name_description".into(), Value::Str(format!("Test VM number {i} <bench> & friends"))));
    m.push((
        "power_state".into(),
        Value::str(match i % 3 {
            0 => "Running",
            _ => "Halted",
        }),
    ));
    m.push(("allowed_operations".into(), Value::from(vec!["start", "clone", "destroy", "export"])));
    m.push(("current_operations".into(), Value::Struct(vec![])));
    m.push(("user_version".into(), Value::Int(1)));
    m.push(("is_a_template".into(), Value::Bool(false)));
    m.push(("is_control_domain".into(), Value::Bool(false)));
    m.push(("resident_on".into(), Value::Str(format!("OpaqueRef:{}", uuid(0, 9)))));
    for k in ["memory_overhead", "memory_target", "memory_static_max", "memory_dynamic_max", "memory_dynamic_min", "memory_static_min"] {
        m.push((k.into(), Value::Int(268_435_456 + i as i64 * 4096)));
    }
    m.push(("VCPUs_params".into(), Value::Struct(vec![("weight".into(), Value::str("256")), ("cap".into(), Value::str("0"))])));
    m.push(("VCPUs_max".into(), Value::Int(4)));
    m.push(("VCPUs_at_startup".into(), Value::Int(2)));
    for k in ["actions_after_shutdown", "actions_after_reboot", "actions_after_crash"] {
        m.push((k.into(), Value::str("destroy")));
    }
    m.push(("consoles".into(), Value::from(vec![format!("OpaqueRef:{}", uuid(i, 2))])));
    m.push(("VIFs".into(), Value::from(vec![format!("OpaqueRef:{}", uuid(i, 3))])));
    m.push(("VBDs".into(), Value::from(vec![format!("OpaqueRef:{}", uuid(i, 4)), format!("OpaqueRef:{}", uuid(i, 5))])));
    m.push((
        "other_config".into(),
        Value::Struct(vec![("install-methods".into(), Value::str("cdrom,nfs,http,ftp")), ("mac_seed".into(), Value::Str(uuid(i, 6)))]),
    ));
    m.push(("start_time".into(), Value::DateTime("20240102T03:04:05Z".into())));
    m.push(("progress".into(), Value::Float(0.5)));
    m.push(("domid".into(), Value::Int(i as i64)));
    m.push(("PV_args".into(), Value::str("console=hvc0 root=/dev/xvda1 ro")));
    // Pad to ~100 fields with the typical mix.
    let mut n = 0;
    while m.len() < 100 {
        let v = match n % 5 {
            0 => Value::str("OpaqueRef:NULL"),
            1 => Value::Int(n as i64 * 1000),
            2 => Value::Bool(n & 1 == 0),
            3 => Value::Str(format!("value {n} of vm {i}")),
            _ => Value::Struct(vec![]),
        };
        m.push((format!("field_{n}"), v));
        n += 1;
    }
    Value::Struct(m)
}

fn time<F: FnMut() -> usize>(runs: usize, mut f: F) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut size = 0;
    for _ in 0..runs {
        let t = Instant::now();
        size = f();
        best = best.min(t.elapsed());
    }
    (best, size)
}

fn report(what: &str, d: Duration, bytes: usize) {
    let mb = bytes as f64 / 1e6;
    println!("{what:<28} {:>8.1} ms  {:>7.1} MB  {:>7.0} MB/s", d.as_secs_f64() * 1e3, mb, mb / d.as_secs_f64());
}

fn main() {
    let vms: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let t = Instant::now();
    let all = Value::Struct((0..vms).map(|i| (format!("OpaqueRef:{}", uuid(i, 0)), record(i))).collect());
    println!("built {vms} records of 100 fields in {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    let outcome = Outcome::Success(all);

    let (d, n) = time(5, || xmlrpc::response_bytes(&outcome).len());
    report("XML-RPC encode (best of 5)", d, n);
    // The same into a buffer that is already mapped: what is left once page faults are gone.
    let mut warm = Vec::new();
    let (d, n) = time(5, || {
        warm.clear();
        xmlrpc::write_response(&mut warm, &outcome);
        warm.len()
    });
    report("XML-RPC into a warm buffer", d, n);
    let (d, n) = time(5, || jsonrpc::response_bytes(jsonrpc::Version::V2, &serde_json::json!(1), &outcome).len());
    report("JSON-RPC encode (best of 5)", d, n);

    let doc = xmlrpc::response_bytes(&outcome);
    let (d, n) = time(3, || {
        xmlrpc::parse_response(&doc).expect("own output parses");
        doc.len()
    });
    report("XML-RPC decode (best of 3)", d, n);
}
