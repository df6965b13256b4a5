//! Where the time of `VM.get_all_records` goes with 10,000 VMs: building the record values
//! versus encoding them. Prints figures.
use std::sync::Arc;
use std::time::Instant;
use xenapi::datamodel::{class, vm};
use xenapi::db::default_fields;
use xenapi::model::{Model, ModelConfig};
use xenapi::value::Value;

fn rss() -> String {
    std::fs::read_to_string("/proc/self/status").unwrap().lines().find(|l| l.starts_with("VmRSS")).unwrap_or("").to_owned()
}

fn main() {
    println!("RSS at start: {}", rss());
    let dir = tempfile::tempdir().unwrap();
    let hv = Arc::new(hypervisor::sim::SimHypervisor::new(hypervisor::sim::SimConfig {
        state_dir: dir.path().join("sim"),
        ..Default::default()
    }));
    let auth = Arc::new(xenapi::sessions::LocalAuthenticator::new(dir.path().join("xencim.db")));
    let model = Model::open(ModelConfig::new(dir.path().to_path_buf()), hv, auth).unwrap();
    println!("RSS with the model open: {}", rss());
    let t = Instant::now();
    for chunk in 0..10 {
        model
            .write(|tx| {
                for i in 0..1000 {
                    let mut f = default_fields(class::VM);
                    f[vm::NAME_LABEL.index()] = Value::str(format!("vm-{chunk}-{i}"));
                    tx.insert(class::VM, f);
                }
                Ok(())
            })
            .unwrap();
    }
    println!("insert 10,000 VMs: {:?}", t.elapsed());
    xenapi::housekeeping::release_free_memory();
    println!("RSS with 10,000 VMs: {}", rss());
    for _ in 0..3 {
        let t = Instant::now();
        let v = xenapi::accessors::generic(&model, class::VM.def(), "get_all_records", vec![]).unwrap();
        let built = t.elapsed();
        let t = Instant::now();
        let bytes = xenapi::rpc::xmlrpc::response_bytes(&xenapi::rpc::Outcome::Success(v));
        let encoded = t.elapsed();
        let t = Instant::now();
        drop(bytes);
        println!("build {built:?}, encode {encoded:?}, drop {:?}", t.elapsed());
    }
}
