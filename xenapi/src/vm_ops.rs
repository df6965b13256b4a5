//! VM messages other than power operations: create and destroy, clone/copy/snapshot, memory
//! and vCPU settings, and the queries built on the state machine.

use crate::bootstrap::now_xapi;
use crate::datamodel::{class, vbd, vdi, vif, vm, vm_metrics, NULL_REF};
use crate::db::{default_fields, Ref, Row, Tx};
use crate::error::{codes, ApiError, ApiResult};
use crate::lifecycle::{check_memory, check_operation, check_vcpus, discard_suspend_image, hv_error, PowerState};
use crate::model::Model;
use crate::value::Value;
use std::path::{Path, PathBuf};

/// `VM.create`: a new halted VM, with its metrics object.
pub fn create(model: &Model, mut fields: Vec<Value>) -> ApiResult<Ref> {
    let int = |f: &[Value], id: crate::datamodel::FieldId| if let Value::Int(i) = f[id.index()] { i } else { 0 };
    // Clients of every era omit fields; a VM must at least have one vCPU.
    let at_startup = int(&fields, vm::VCPUS_AT_STARTUP).max(1);
    let max = int(&fields, vm::VCPUS_MAX).max(at_startup);
    fields[vm::VCPUS_AT_STARTUP.index()] = Value::Int(at_startup);
    fields[vm::VCPUS_MAX.index()] = Value::Int(max);
    check_vcpus(max, at_startup)?;
    check_memory(
        int(&fields, vm::MEMORY_STATIC_MIN),
        int(&fields, vm::MEMORY_DYNAMIC_MIN),
        int(&fields, vm::MEMORY_DYNAMIC_MAX),
        int(&fields, vm::MEMORY_STATIC_MAX),
    )?;
    fields[vm::POWER_STATE.index()] = Value::str("Halted");
    fields[vm::DOMID.index()] = Value::Int(-1);
    fields[vm::IS_CONTROL_DOMAIN.index()] = Value::Bool(false);
    fields[vm::RESIDENT_ON.index()] = Value::str(NULL_REF);
    model.write(|tx| Ok(insert_vm(tx, fields)))
}

fn insert_vm(tx: &mut Tx, mut fields: Vec<Value>) -> Ref {
    let mut m = default_fields(class::VM_metrics);
    m[vm_metrics::INSTALL_TIME.index()] = Value::DateTime(now_xapi());
    m[vm_metrics::LAST_UPDATED.index()] = Value::DateTime(now_xapi());
    let metrics = tx.insert(class::VM_metrics, m);
    fields[vm::METRICS.index()] = Value::str(metrics);
    tx.insert(class::VM, fields)
}

/// `VM.destroy`: the VM and everything that only makes sense with it (VBDs, VIFs, consoles,
/// metrics, a suspend image). Disks (VDIs) stay, as in xapi.
pub fn destroy(model: &Model, vm_ref: &str) -> ApiResult<()> {
    model.write(|tx| {
        check_operation(tx.data(), vm_ref, "destroy", &model.known)?;
        let row = tx.data().expect(class::VM, vm_ref)?.clone();
        if PowerState::of(&row) == PowerState::Suspended {
            discard_suspend_image(tx, vm_ref)?;
        }
        for r in row.strs(vm::VBDS) {
            tx.remove(class::VBD, &r)?;
        }
        for r in row.strs(vm::VIFS) {
            tx.remove(class::VIF, &r)?;
        }
        for r in row.strs(vm::CONSOLES) {
            tx.remove(class::console, &r)?;
        }
        for (c, r) in [(class::VM_metrics, row.str(vm::METRICS)), (class::VM_guest_metrics, row.str(vm::GUEST_METRICS))] {
            if tx.data().row(c, r).is_some() {
                tx.remove(c, r)?;
            }
        }
        for snapshot in row.strs(vm::SNAPSHOTS) {
            tx.set(class::VM, &snapshot, vm::SNAPSHOT_OF, Value::str(NULL_REF))?;
        }
        for child in row.strs(vm::CHILDREN) {
            tx.set(class::VM, &child, vm::PARENT, Value::str(NULL_REF))?;
        }
        tx.remove(class::VM, vm_ref).map(|_| ())
    })
}

/// A disk copied for a new VM: the source VDI's row, the new VDI's UUID and its file.
type DiskCopy = (Row, String, PathBuf);

#[derive(Clone, Copy, PartialEq)]
pub enum CopyKind {
    Clone,
    Copy,
    Snapshot,
}

/// A sparse-aware file copy: runs of zeros become holes, so empty disks stay cheap.
pub fn copy_sparse(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut input = std::fs::File::open(src)?;
    let len = input.metadata()?.len();
    let mut output = std::fs::File::create(dst)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|b| *b == 0) {
            output.seek(SeekFrom::Current(n as i64))?;
        } else {
            output.write_all(&buf[..n])?;
        }
    }
    output.set_len(len)?;
    output.sync_all()
}

/// `VM.clone`, `VM.copy` and `VM.snapshot`: a new VM with the same settings and devices, and
/// copies of its disks (CDs keep their media).
pub fn duplicate(model: &Model, vm_ref: &str, new_name: &str, kind: CopyKind, target_sr: Option<&str>) -> ApiResult<Ref> {
    let op = match kind {
        CopyKind::Clone => "clone",
        CopyKind::Copy => "copy",
        CopyKind::Snapshot => "snapshot",
    };
    // Plan the disk copies under a read lock, copy without any lock, then commit.
    let (row, disks) = {
        let data = model.db.read();
        check_operation(&data, vm_ref, op, &model.known)?;
        if let Some(sr_ref) = target_sr {
            data.expect(class::SR, sr_ref)?;
        }
        let row = data.expect(class::VM, vm_ref)?.clone();
        let mut disks = Vec::new();
        for vbd_ref in row.strs(vm::VBDS) {
            let b = data.expect(class::VBD, &vbd_ref)?.clone();
            let vdi_row = data.row(class::VDI, b.str(vbd::VDI)).cloned();
            disks.push((b, vdi_row));
        }
        (row, disks)
    };
    let sr_ref = target_sr.map(str::to_owned).unwrap_or_else(|| model.known.local_sr.clone());
    let sr_uuid = model.db.read().expect(class::SR, &sr_ref)?.str(crate::datamodel::sr::UUID).to_owned();
    let mut copies: Vec<(Row, Option<DiskCopy>)> = Vec::new();
    let mut made: Vec<PathBuf> = Vec::new();
    for (b, vdi_row) in disks {
        let copy = match vdi_row {
            Some(v) if b.str(vbd::TYPE) == "Disk" => {
                let new_uuid = uuid::Uuid::new_v4().to_string();
                let dst = model.config.sr_dir(&sr_uuid).join(format!("{new_uuid}.img"));
                let src = PathBuf::from(v.str(vdi::LOCATION));
                if let Err(e) = copy_sparse(&src, &dst) {
                    for p in &made {
                        let _ = std::fs::remove_file(p);
                    }
                    return Err(ApiError::new(codes::SR_BACKEND_FAILURE, ["copy".to_owned(), src.display().to_string(), e.to_string()]));
                }
                made.push(dst.clone());
                Some((v, new_uuid, dst))
            }
            _ => None,
        };
        copies.push((b, copy));
    }
    let result = model.write(|tx| {
        let mut f = row.fields.to_vec();
        let fresh = default_fields(class::VM);
        for id in [
            vm::UUID,
            vm::ALLOWED_OPERATIONS,
            vm::CURRENT_OPERATIONS,
            vm::CONSOLES,
            vm::VBDS,
            vm::VIFS,
            vm::SNAPSHOTS,
            vm::CHILDREN,
            vm::GUEST_METRICS,
            vm::SUSPEND_VDI,
            vm::SNAPSHOT_TIME,
            vm::SNAPSHOT_OF,
            vm::PARENT,
            vm::IS_A_SNAPSHOT,
            vm::BLOCKED_OPERATIONS,
        ] {
            f[id.index()] = fresh[id.index()].clone();
        }
        f[vm::NAME_LABEL.index()] = Value::str(new_name);
        f[vm::POWER_STATE.index()] = Value::str("Halted");
        f[vm::DOMID.index()] = Value::Int(-1);
        f[vm::RESIDENT_ON.index()] = Value::str(NULL_REF);
        if kind == CopyKind::Snapshot {
            f[vm::IS_A_SNAPSHOT.index()] = Value::Bool(true);
            f[vm::IS_A_TEMPLATE.index()] = Value::Bool(true);
            f[vm::SNAPSHOT_OF.index()] = Value::str(vm_ref);
            f[vm::SNAPSHOT_TIME.index()] = Value::DateTime(now_xapi());
        }
        let new_vm = insert_vm(tx, f);
        for (b, copy) in &copies {
            let vdi_ref = match copy {
                Some((v, new_uuid, dst)) => {
                    let mut vf = v.fields.to_vec();
                    let fresh = default_fields(class::VDI);
                    for id in [vdi::ALLOWED_OPERATIONS, vdi::CURRENT_OPERATIONS, vdi::VBDS, vdi::SNAPSHOTS, vdi::CRASH_DUMPS] {
                        vf[id.index()] = fresh[id.index()].clone();
                    }
                    vf[vdi::UUID.index()] = Value::str(new_uuid.clone());
                    vf[vdi::SR.index()] = Value::str(sr_ref.clone());
                    vf[vdi::LOCATION.index()] = Value::str(dst.display().to_string());
                    if kind == CopyKind::Snapshot {
                        vf[vdi::IS_A_SNAPSHOT.index()] = Value::Bool(true);
                        vf[vdi::SNAPSHOT_OF.index()] = Value::str(b.str(vbd::VDI));
                        vf[vdi::SNAPSHOT_TIME.index()] = Value::DateTime(now_xapi());
                    }
                    tx.insert(class::VDI, vf)
                }
                None => b.str(vbd::VDI).to_owned(),
            };
            let mut bf = b.fields.to_vec();
            let fresh = default_fields(class::VBD);
            for id in [vbd::UUID, vbd::ALLOWED_OPERATIONS, vbd::CURRENT_OPERATIONS, vbd::CURRENTLY_ATTACHED, vbd::METRICS] {
                bf[id.index()] = fresh[id.index()].clone();
            }
            bf[vbd::VM.index()] = Value::str(new_vm.clone());
            bf[vbd::VDI.index()] = Value::str(vdi_ref);
            tx.insert(class::VBD, bf);
        }
        for vif_ref in row.strs(vm::VIFS) {
            let v = tx.data().expect(class::VIF, &vif_ref)?.clone();
            let mut vf = v.fields.to_vec();
            let fresh = default_fields(class::VIF);
            for id in [vif::UUID, vif::ALLOWED_OPERATIONS, vif::CURRENT_OPERATIONS, vif::CURRENTLY_ATTACHED] {
                vf[id.index()] = fresh[id.index()].clone();
            }
            if v.bool(vif::MAC_AUTOGENERATED) {
                vf[vif::MAC.index()] = Value::str(crate::devices::random_mac());
            }
            vf[vif::VM.index()] = Value::str(new_vm.clone());
            tx.insert(class::VIF, vf);
        }
        Ok(new_vm)
    });
    if result.is_err() {
        for p in &made {
            let _ = std::fs::remove_file(p);
        }
    }
    result
}

fn ints(row: &Row) -> [i64; 4] {
    [row.int(vm::MEMORY_STATIC_MIN), row.int(vm::MEMORY_DYNAMIC_MIN), row.int(vm::MEMORY_DYNAMIC_MAX), row.int(vm::MEMORY_STATIC_MAX)]
}

/// Any change of the four memory settings: checked against the state machine and the
/// constraint, applied to a running domain's balloon when the dynamic range changes.
pub fn set_memory(model: &Model, vm_ref: &str, op: &'static str, edit: impl Fn([i64; 4]) -> [i64; 4]) -> ApiResult<()> {
    let (row, new) = {
        let data = model.db.read();
        check_operation(&data, vm_ref, op, &model.known)?;
        let row = data.expect(class::VM, vm_ref)?.clone();
        let new = edit(ints(&row));
        check_memory(new[0], new[1], new[2], new[3])?;
        (row, new)
    };
    if PowerState::of(&row) == PowerState::Running && new[2] != ints(&row)[2] && vm_ref != model.known.dom0 {
        let uuid = uuid::Uuid::parse_str(row.str(vm::UUID)).unwrap_or_default();
        model.hv.set_memory_target(uuid, new[2] as u64).map_err(|e| hv_error(vm_ref, e))?;
    }
    model.write(|tx| {
        for (f, v) in [vm::MEMORY_STATIC_MIN, vm::MEMORY_DYNAMIC_MIN, vm::MEMORY_DYNAMIC_MAX, vm::MEMORY_STATIC_MAX].into_iter().zip(new) {
            tx.set(class::VM, vm_ref, f, Value::Int(v))?;
        }
        tx.set(class::VM, vm_ref, vm::MEMORY_TARGET, Value::Int(new[2]))?;
        if PowerState::of(&row) == PowerState::Running {
            let metrics = row.str(vm::METRICS);
            if tx.data().row(class::VM_metrics, metrics).is_some() {
                tx.set(class::VM_metrics, metrics, vm_metrics::MEMORY_ACTUAL, Value::Int(new[2]))?;
            }
        }
        Ok(())
    })
}

pub fn set_vcpus_max(model: &Model, vm_ref: &str, value: i64) -> ApiResult<()> {
    model.write(|tx| {
        check_operation(tx.data(), vm_ref, "changing_VCPUs", &model.known)?;
        let at_startup = tx.data().expect(class::VM, vm_ref)?.int(vm::VCPUS_AT_STARTUP);
        if value < 1 || value < at_startup || value > 64 {
            return Err(ApiError::invalid_value("VCPUs_max", value));
        }
        tx.set(class::VM, vm_ref, vm::VCPUS_MAX, Value::Int(value))
    })
}

pub fn set_vcpus_at_startup(model: &Model, vm_ref: &str, value: i64) -> ApiResult<()> {
    model.write(|tx| {
        let row = tx.data().expect(class::VM, vm_ref)?;
        check_vcpus(row.int(vm::VCPUS_MAX), value)?;
        tx.set(class::VM, vm_ref, vm::VCPUS_AT_STARTUP, Value::Int(value))
    })
}

pub fn set_vcpus_number_live(model: &Model, vm_ref: &str, n: i64) -> ApiResult<()> {
    let row = {
        let data = model.db.read();
        check_operation(&data, vm_ref, "changing_VCPUs_live", &model.known)?;
        data.expect(class::VM, vm_ref)?.clone()
    };
    if n < 1 || n > row.int(vm::VCPUS_MAX) {
        return Err(ApiError::invalid_value("nvcpu", n));
    }
    let uuid = uuid::Uuid::parse_str(row.str(vm::UUID)).unwrap_or_default();
    model.hv.set_vcpus(uuid, n as u32).map_err(|e| hv_error(vm_ref, e))?;
    model.write(|tx| {
        tx.set(class::VM, vm_ref, vm::VCPUS_AT_STARTUP, Value::Int(n))?;
        let metrics = row.str(vm::METRICS);
        if tx.data().row(class::VM_metrics, metrics).is_some() {
            tx.set(class::VM_metrics, metrics, vm_metrics::VCPUS_NUMBER, Value::Int(n))?;
        }
        Ok(())
    })
}

pub fn set_is_a_template(model: &Model, vm_ref: &str, value: bool) -> ApiResult<()> {
    model.write(|tx| {
        if value {
            check_operation(tx.data(), vm_ref, "make_into_template", &model.known)?;
        } else {
            tx.data().expect(class::VM, vm_ref)?;
        }
        tx.set(class::VM, vm_ref, vm::IS_A_TEMPLATE, Value::Bool(value))
    })
}

pub fn send_sysrq(model: &Model, vm_ref: &str, key: &str) -> ApiResult<()> {
    let row = {
        let data = model.db.read();
        check_operation(&data, vm_ref, "send_sysrq", &model.known)?;
        data.expect(class::VM, vm_ref)?.clone()
    };
    let mut chars = key.chars();
    let (Some(k), None) = (chars.next(), chars.next()) else {
        return Err(ApiError::invalid_value("key", key));
    };
    let uuid = uuid::Uuid::parse_str(row.str(vm::UUID)).unwrap_or_default();
    model.hv.send_sysrq(uuid, k).map_err(|e| hv_error(vm_ref, e))
}

/// Device slots not yet taken, as `VM.get_allowed_VBD_devices` / `get_allowed_VIF_devices`.
pub fn allowed_devices(model: &Model, vm_ref: &str, vbds: bool) -> ApiResult<Value> {
    let data = model.db.read();
    let row = data.expect(class::VM, vm_ref)?;
    let used: Vec<String> = if vbds {
        row.strs(vm::VBDS).iter().filter_map(|r| data.row(class::VBD, r)).map(|b| b.str(vbd::USERDEVICE).to_owned()).collect()
    } else {
        row.strs(vm::VIFS).iter().filter_map(|r| data.row(class::VIF, r)).map(|v| v.str(vif::DEVICE).to_owned()).collect()
    };
    let slots = if vbds { 16 } else { 7 };
    Ok(Value::Array((0..slots).map(|n| n.to_string()).filter(|n| !used.contains(n)).map(Value::Str).collect()))
}
