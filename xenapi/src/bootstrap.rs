//! The objects a host has from its first start: one pool, one host with its CPUs and metrics,
//! the control domain (dom0), a local file SR and a default network, and the roles. On every
//! start the host's facts are refreshed from the hypervisor.

use crate::datamodel::{class, host, host_cpu, host_metrics, network, pbd, pif, pool, role, sr, vm, vm_metrics, ClassId, FieldId};
use crate::db::{default_fields, Db, Ref, Tx};
use crate::model::{ModelConfig, WellKnown};
use crate::value::Value;
use hypervisor::Hypervisor;

/// The Xen-API version this server speaks (xapi 2.21 era messages).
pub const API_VERSION_MAJOR: i64 = 2;
pub const API_VERSION_MINOR: i64 = 21;
/// xend used this UUID for dom0, and libxen/xm-test look it up.
pub const DOM0_UUID: &str = "00000000-0000-0000-0000-000000000000";

pub fn now_xapi() -> String {
    chrono::Utc::now().format("%Y%m%dT%H:%M:%SZ").to_string()
}

pub fn xapi_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).unwrap_or_default().format("%Y%m%dT%H:%M:%SZ").to_string()
}

pub(crate) fn map(pairs: &[(&str, String)]) -> Value {
    Value::Struct(pairs.iter().map(|(k, v)| ((*k).to_owned(), Value::Str(v.clone()))).collect())
}

fn set(fields: &mut [Value], f: FieldId, v: impl Into<Value>) {
    fields[f.index()] = v.into();
}

fn first(data: &crate::db::Data, c: ClassId) -> Option<Ref> {
    data.rows(c).next().map(|(r, _)| r.clone())
}

pub fn ensure_well_known(db: &Db, hv: &dyn Hypervisor, config: &ModelConfig) -> anyhow::Result<WellKnown> {
    let info = hv.host_info();
    let known = db
        .write(|tx| {
            let existing = first(tx.data(), class::host);
            let known = match existing {
                Some(host_ref) => find_known(tx, host_ref),
                None => create_well_known(tx, &info),
            };
            refresh_host(tx, &known, &info)?;
            Ok(known)
        })
        .map_err(|e| anyhow::anyhow!("creating the host objects: {e}"))?;
    let sr_uuid = db.read().expect(class::SR, &known.local_sr).map(|r| r.str(sr::UUID).to_owned()).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::create_dir_all(config.sr_dir(&sr_uuid))?;
    Ok(known)
}

fn find_known(tx: &mut Tx, host_ref: Ref) -> WellKnown {
    let d = tx.data();
    let pool = first(d, class::pool).unwrap_or_default();
    let dom0 = d.rows(class::VM).find(|(_, r)| r.bool(vm::IS_CONTROL_DOMAIN)).map(|(r, _)| r.clone()).unwrap_or_default();
    let local_sr = d.row(class::pool, &pool).map(|p| p.str(pool::DEFAULT_SR).to_owned()).unwrap_or_default();
    let default_network = d
        .rows(class::network)
        .find(|(_, n)| n.map_get(network::OTHER_CONFIG, "xencim_default") == Some("true"))
        .map(|(r, _)| r.clone())
        .unwrap_or_default();
    WellKnown { pool, host: host_ref, dom0, local_sr, default_network }
}

fn create_well_known(tx: &mut Tx, info: &hypervisor::HostInfo) -> WellKnown {
    let host_ref = crate::db::new_ref();
    let dom0_ref = crate::db::new_ref();

    let mut m = default_fields(class::host_metrics);
    set(&mut m, host_metrics::LIVE, true);
    let metrics_ref = tx.insert(class::host_metrics, m);

    let mut h = default_fields(class::host);
    set(&mut h, host::NAME_LABEL, info.hostname.clone());
    set(&mut h, host::METRICS, metrics_ref);
    set(&mut h, host::CONTROL_DOMAIN, dom0_ref.clone());
    tx.insert_with_ref(class::host, host_ref.clone(), h);

    for n in 0..info.cpu_count {
        let mut c = default_fields(class::host_cpu);
        set(&mut c, host_cpu::HOST, host_ref.clone());
        set(&mut c, host_cpu::NUMBER, n as i64);
        set(&mut c, host_cpu::VENDOR, info.cpu_vendor.clone());
        set(&mut c, host_cpu::MODELNAME, info.cpu_model_name.clone());
        set(&mut c, host_cpu::SPEED, info.cpu_speed_mhz as i64);
        set(&mut c, host_cpu::FLAGS, info.cpu_flags.clone());
        tx.insert(class::host_cpu, c);
    }

    let mut vmm = default_fields(class::VM_metrics);
    set(&mut vmm, vm_metrics::VCPUS_NUMBER, 1i64);
    let dom0_metrics = tx.insert(class::VM_metrics, vmm);
    let mut d = default_fields(class::VM);
    set(&mut d, vm::UUID, DOM0_UUID);
    set(&mut d, vm::NAME_LABEL, "Domain-0");
    set(&mut d, vm::NAME_DESCRIPTION, "The control domain");
    set(&mut d, vm::POWER_STATE, "Running");
    set(&mut d, vm::IS_CONTROL_DOMAIN, true);
    set(&mut d, vm::DOMID, 0i64);
    set(&mut d, vm::RESIDENT_ON, host_ref.clone());
    set(&mut d, vm::METRICS, dom0_metrics);
    set(&mut d, vm::VCPUS_MAX, 1i64);
    set(&mut d, vm::VCPUS_AT_STARTUP, 1i64);
    set(&mut d, vm::USER_VERSION, 1i64);
    set(&mut d, vm::DOMAIN_TYPE, "pv");
    tx.insert_with_ref(class::VM, dom0_ref.clone(), d);

    let mut s = default_fields(class::SR);
    set(&mut s, sr::NAME_LABEL, "Local storage");
    set(&mut s, sr::NAME_DESCRIPTION, "Sparse image files in the xencim state directory");
    set(&mut s, sr::TYPE, "file");
    set(&mut s, sr::CONTENT_TYPE, "user");
    set(&mut s, sr::PHYSICAL_SIZE, 1i64 << 40);
    let sr_ref = tx.insert(class::SR, s);
    let mut p = default_fields(class::PBD);
    set(&mut p, pbd::HOST, host_ref.clone());
    set(&mut p, pbd::SR, sr_ref.clone());
    set(&mut p, pbd::CURRENTLY_ATTACHED, true);
    tx.insert(class::PBD, p);

    let mut n = default_fields(class::network);
    set(&mut n, network::NAME_LABEL, "Pool-wide network associated with eth0");
    set(&mut n, network::BRIDGE, "xenbr0");
    set(&mut n, network::MTU, 1500i64);
    set(&mut n, network::OTHER_CONFIG, map(&[("xencim_default", "true".into())]));
    let net_ref = tx.insert(class::network, n);
    let mut pf = default_fields(class::PIF);
    set(&mut pf, pif::DEVICE, "eth0");
    set(&mut pf, pif::NETWORK, net_ref.clone());
    set(&mut pf, pif::HOST, host_ref.clone());
    set(&mut pf, pif::MAC, "00:16:3e:00:00:01");
    set(&mut pf, pif::MTU, 1500i64);
    set(&mut pf, pif::VLAN, -1i64);
    set(&mut pf, pif::PHYSICAL, true);
    set(&mut pf, pif::CURRENTLY_ATTACHED, true);
    set(&mut pf, pif::MANAGEMENT, true);
    set(&mut pf, pif::IP_CONFIGURATION_MODE, "Static");
    set(&mut pf, pif::IP, "127.0.0.1");
    set(&mut pf, pif::NETMASK, "255.0.0.0");
    tx.insert(class::PIF, pf);

    let mut pl = default_fields(class::pool);
    set(&mut pl, pool::MASTER, host_ref.clone());
    set(&mut pl, pool::DEFAULT_SR, sr_ref.clone());
    set(&mut pl, pool::SUSPEND_IMAGE_SR, sr_ref.clone());
    set(&mut pl, pool::CRASH_DUMP_SR, sr_ref.clone());
    let pool_ref = tx.insert(class::pool, pl);

    for (name, description) in [
        ("pool-admin", "Everything, including users, networks and storage"),
        ("vm-operator", "Reads everything; creates, drives and changes VMs and their devices and disks"),
        ("read-only", "Reads everything, changes nothing"),
    ] {
        let mut r = default_fields(class::role);
        set(&mut r, role::NAME_LABEL, name);
        set(&mut r, role::NAME_DESCRIPTION, description);
        tx.insert(class::role, r);
    }
    WellKnown { pool: pool_ref, host: host_ref, dom0: dom0_ref, local_sr: sr_ref, default_network: net_ref }
}

/// Facts that the hypervisor knows better than the store: memory, CPUs, versions.
fn refresh_host(tx: &mut Tx, known: &WellKnown, info: &hypervisor::HostInfo) -> crate::error::ApiResult<()> {
    let h = &known.host;
    tx.set(class::host, h, host::HOSTNAME, Value::str(info.hostname.clone()))?;
    tx.set(class::host, h, host::ADDRESS, Value::str("127.0.0.1"))?;
    tx.set(class::host, h, host::ENABLED, Value::Bool(true))?;
    tx.set(class::host, h, host::API_VERSION_MAJOR, Value::Int(API_VERSION_MAJOR))?;
    tx.set(class::host, h, host::API_VERSION_MINOR, Value::Int(API_VERSION_MINOR))?;
    tx.set(class::host, h, host::API_VERSION_VENDOR, Value::str("xencim"))?;
    let version = env!("CARGO_PKG_VERSION").to_owned();
    tx.set(
        class::host,
        h,
        host::SOFTWARE_VERSION,
        map(&[
            ("product_brand", "xencim".into()),
            ("product_version", version.clone()),
            ("xapi", format!("{API_VERSION_MAJOR}.{API_VERSION_MINOR}")),
            ("hypervisor", info.backend.into()),
            ("hypervisor_version", info.backend_version.clone()),
        ]),
    )?;
    tx.set(class::host, h, host::API_VERSION_VENDOR_IMPLEMENTATION, map(&[("xencim", version)]))?;
    tx.set(class::host, h, host::CAPABILITIES, Value::Array(vec![Value::str("xen-3.0-x86_64"), Value::str("hvm-3.0-x86_64")]))?;
    tx.set(class::host, h, host::SCHED_POLICY, Value::str("credit"))?;
    tx.set(
        class::host,
        h,
        host::CPU_INFO,
        map(&[
            ("cpu_count", info.cpu_count.to_string()),
            ("vendor", info.cpu_vendor.clone()),
            ("modelname", info.cpu_model_name.clone()),
            ("speed", info.cpu_speed_mhz.to_string()),
            ("flags", info.cpu_flags.clone()),
        ]),
    )?;
    let metrics = tx.data().expect(class::host, h)?.str(host::METRICS).to_owned();
    tx.set(class::host_metrics, &metrics, host_metrics::MEMORY_TOTAL, Value::Int(info.memory_total as i64))?;
    tx.set(class::host_metrics, &metrics, host_metrics::MEMORY_FREE, Value::Int(info.memory_free as i64))?;
    tx.set(class::host_metrics, &metrics, host_metrics::LIVE, Value::Bool(true))?;
    tx.set(class::host_metrics, &metrics, host_metrics::LAST_UPDATED, Value::DateTime(now_xapi()))?;
    let dom0_mem = (info.memory_total.saturating_sub(info.memory_free)).min(1 << 30) as i64;
    for f in [vm::MEMORY_STATIC_MAX, vm::MEMORY_DYNAMIC_MAX, vm::MEMORY_DYNAMIC_MIN, vm::MEMORY_STATIC_MIN, vm::MEMORY_TARGET] {
        tx.set(class::VM, &known.dom0, f, Value::Int(dom0_mem))?;
    }
    Ok(())
}
