//! The VM power-state machine: which operation is allowed from which state (and the order in
//! which xapi checks it), `allowed_operations`, and the operations themselves, which mark the
//! VM busy, call the hypervisor without holding the registry, and record the outcome.

use crate::bootstrap::{now_xapi, xapi_time};
use crate::datamodel::{class, console, sr, vbd, vdi, vif, vm, vm_metrics, NULL_REF};
use crate::db::{default_fields, Data, Ref, Row, Tx};
use crate::error::{codes, ApiError, ApiResult};
use crate::model::{Model, WellKnown};
use crate::value::Value;
use hypervisor::{DiskConfig, DiskKind, DomainConfig, HypervisorError, NicConfig};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerState {
    Halted,
    Paused,
    Running,
    Suspended,
}

impl PowerState {
    pub fn parse(s: &str) -> PowerState {
        match s {
            "Paused" => PowerState::Paused,
            "Running" => PowerState::Running,
            "Suspended" => PowerState::Suspended,
            _ => PowerState::Halted,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            PowerState::Halted => "Halted",
            PowerState::Paused => "Paused",
            PowerState::Running => "Running",
            PowerState::Suspended => "Suspended",
        }
    }
    pub fn of(row: &Row) -> PowerState {
        PowerState::parse(row.str(vm::POWER_STATE))
    }
}

use PowerState::*;

/// Operations whose allowed-from states xapi checks, in xapi's order for the error text.
pub fn allowed_power_states(op: &str) -> Option<&'static [PowerState]> {
    Some(match op {
        "start"
        | "start_on"
        | "clone"
        | "copy"
        | "make_into_template"
        | "changing_static_range"
        | "changing_memory_limits"
        | "changing_VCPUs"
        | "provision" => &[Halted],
        "pause"
        | "suspend"
        | "clean_shutdown"
        | "clean_reboot"
        | "changing_VCPUs_live"
        | "send_sysrq"
        | "send_trigger"
        | "changing_memory_live" => &[Running],
        "unpause" => &[Paused],
        "resume" | "resume_on" => &[Suspended],
        "hard_shutdown" | "shutdown" => &[Paused, Suspended, Running],
        "hard_reboot" => &[Paused, Running],
        "destroy" => &[Halted, Suspended],
        "changing_dynamic_range" => &[Halted, Running],
        "snapshot" | "power_state_reset" => &[Halted, Paused, Running, Suspended],
        _ => return None,
    })
}

/// The operations xencim implements, the candidates for `allowed_operations`.
const VM_OPERATIONS: &[&str] = &[
    "start",
    "start_on",
    "pause",
    "unpause",
    "clean_shutdown",
    "hard_shutdown",
    "shutdown",
    "clean_reboot",
    "hard_reboot",
    "suspend",
    "resume",
    "resume_on",
    "power_state_reset",
    "clone",
    "copy",
    "snapshot",
    "destroy",
    "changing_dynamic_range",
    "changing_static_range",
    "changing_memory_limits",
    "changing_VCPUs",
    "changing_VCPUs_live",
    "send_sysrq",
    "make_into_template",
];

/// Operations that may run while another one is in progress (xapi lets a hard shutdown or
/// reboot cut through anything).
fn may_overlap(op: &str) -> bool {
    matches!(op, "hard_shutdown" | "hard_reboot" | "power_state_reset")
}

/// Operations a template allows.
fn template_allows(op: &str) -> bool {
    matches!(
        op,
        "clone"
            | "copy"
            | "provision"
            | "destroy"
            | "changing_static_range"
            | "changing_memory_limits"
            | "changing_VCPUs"
            | "changing_dynamic_range"
            | "snapshot"
    )
}

/// xapi's `check_operation_error`: the first reason why `op` may not run on `vm_ref` now.
pub fn check_operation(data: &Data, vm_ref: &str, op: &str, known: &WellKnown) -> ApiResult<()> {
    let row = data.expect(class::VM, vm_ref)?;
    if let Some(reason) = row.map_get(vm::BLOCKED_OPERATIONS, op) {
        return Err(ApiError::new(codes::OPERATION_BLOCKED, [vm_ref, reason]));
    }
    let state = PowerState::of(row);
    if let Some(allowed) = allowed_power_states(op) {
        if !allowed.contains(&state) {
            let expected = allowed.iter().map(|s| s.name().to_ascii_lowercase()).collect::<Vec<_>>().join(", ");
            return Err(ApiError::new(codes::VM_BAD_POWER_STATE, [vm_ref.to_owned(), expected, state.name().to_ascii_lowercase()]));
        }
    }
    if !may_overlap(op) {
        if let Some((task, running)) = row.map(vm::CURRENT_OPERATIONS).first() {
            return Err(ApiError::new(codes::OTHER_OPERATION_IN_PROGRESS, ["VM", vm_ref, running.as_str().unwrap_or(""), task]));
        }
    }
    if row.bool(vm::IS_A_TEMPLATE) && !template_allows(op) {
        return Err(ApiError::new(codes::VM_IS_TEMPLATE, [vm_ref, op]));
    }
    if row.bool(vm::IS_A_SNAPSHOT) && !matches!(op, "clone" | "copy" | "destroy" | "snapshot") {
        return Err(ApiError::operation_not_allowed(format!("VM {vm_ref} is a snapshot, which does not allow {op}")));
    }
    if vm_ref == known.dom0 && !matches!(op, "changing_dynamic_range" | "changing_VCPUs_live") {
        return Err(ApiError::operation_not_allowed("This operation is not allowed on dom0"));
    }
    Ok(())
}

pub fn allowed_operations(data: &Data, vm_ref: &str, known: &WellKnown) -> Vec<&'static str> {
    VM_OPERATIONS.iter().copied().filter(|op| check_operation(data, vm_ref, op, known).is_ok()).collect()
}

/// Maps a hypervisor refusal to the Xen-API error a client expects.
pub fn hv_error(vm_ref: &str, e: HypervisorError) -> ApiError {
    match e {
        HypervisorError::NotEnoughMemory { needed, available } => {
            ApiError::new(codes::HOST_NOT_ENOUGH_FREE_MEMORY, [needed.to_string(), available.to_string()])
        }
        HypervisorError::NotEnoughPcpus { vcpus, pcpus } => {
            ApiError::new(codes::HOST_NOT_ENOUGH_PCPUS, [vcpus.to_string(), pcpus.to_string()])
        }
        HypervisorError::ShutdownTimeout(t) => ApiError::new(codes::VM_SHUTDOWN_TIMEOUT, [vm_ref.to_owned(), t.to_string()]),
        HypervisorError::DeviceExists { device } => ApiError::new(codes::DEVICE_ALREADY_ATTACHED, [device]),
        HypervisorError::NoSuchDevice { device } => ApiError::new(codes::DEVICE_ALREADY_DETACHED, [device]),
        HypervisorError::Invalid(msg) => ApiError::new(codes::INVALID_VALUE, ["VM".to_owned(), msg]),
        other => ApiError::internal(format!("hypervisor: {other}")),
    }
}

/// Marks the VM busy with `op` (so concurrent operations are refused), runs `work` without
/// holding the registry, and always clears the mark, in the same transaction that records
/// the outcome.
pub fn with_operation<T>(
    model: &Model,
    vm_ref: &str,
    op: &'static str,
    task: Option<&str>,
    work: impl FnOnce(&Row) -> ApiResult<T>,
    record: impl FnOnce(&mut Tx, &T) -> ApiResult<()>,
) -> ApiResult<T> {
    let key = task.map(str::to_owned).unwrap_or_else(crate::db::new_ref);
    let snapshot = model.write(|tx| {
        check_operation(tx.data(), vm_ref, op, &model.known)?;
        tx.update(class::VM, vm_ref, vm::CURRENT_OPERATIONS, |v| {
            if let Value::Struct(m) = v {
                m.push((key.clone(), Value::str(op)));
            }
        })?;
        Ok(tx.data().expect(class::VM, vm_ref)?.clone())
    })?;
    let outcome = work(&snapshot);
    let clear = |tx: &mut Tx| {
        tx.update(class::VM, vm_ref, vm::CURRENT_OPERATIONS, |v| {
            if let Value::Struct(m) = v {
                m.retain(|(k, _)| *k != key);
            }
        })
    };
    match outcome {
        Ok(value) => {
            model.write(|tx| {
                clear(tx)?;
                record(tx, &value)
            })?;
            Ok(value)
        }
        Err(e) => {
            // The VM may have been destroyed meanwhile by a forced operation; nothing to clear then.
            let _ = model.write(|tx| if tx.data().row(class::VM, vm_ref).is_some() { clear(tx) } else { Ok(()) });
            Err(e)
        }
    }
}

fn uuid_of(row: &Row) -> uuid::Uuid {
    uuid::Uuid::parse_str(row.str(vm::UUID)).unwrap_or_default()
}

/// The disk image of a VDI: its location is the path of its backing file.
pub fn vdi_path(data: &Data, vdi_ref: &str) -> Option<PathBuf> {
    data.row(class::VDI, vdi_ref).map(|r| PathBuf::from(r.str(vdi::LOCATION)))
}

pub fn disk_config(data: &Data, vbd_row: &Row) -> DiskConfig {
    let vdi_ref = vbd_row.str(vbd::VDI);
    let empty = vbd_row.bool(vbd::EMPTY) || vdi_ref == NULL_REF;
    DiskConfig {
        device: device_name(vbd_row),
        path: if empty { None } else { vdi_path(data, vdi_ref) },
        read_only: vbd_row.str(vbd::MODE) == "RO",
        kind: match vbd_row.str(vbd::TYPE) {
            "CD" => DiskKind::Cdrom,
            "Floppy" => DiskKind::Floppy,
            _ => DiskKind::Disk,
        },
        bootable: vbd_row.bool(vbd::BOOTABLE),
    }
}

/// VBD.device, or the name xapi derives from userdevice (0 -> xvda).
pub fn device_name(vbd_row: &Row) -> String {
    let device = vbd_row.str(vbd::DEVICE);
    if !device.is_empty() {
        return device.to_owned();
    }
    let userdevice = vbd_row.str(vbd::USERDEVICE);
    match userdevice.parse::<u32>() {
        Ok(n) => format!("xvd{}", char::from(b'a' + (n % 26) as u8)),
        // A device name given as userdevice (`xvdb`, `hdc`) is the device itself.
        Err(_) if !userdevice.is_empty() => userdevice.to_owned(),
        Err(_) => "xvda".to_owned(),
    }
}

pub fn nic_config(data: &Data, vif_row: &Row) -> NicConfig {
    let bridge = data
        .row(class::network, vif_row.str(vif::NETWORK))
        .map(|n| n.str(crate::datamodel::network::BRIDGE).to_owned())
        .unwrap_or_default();
    NicConfig {
        device: vif_row.str(vif::DEVICE).to_owned(),
        mac: vif_row.str(vif::MAC).to_owned(),
        bridge,
        mtu: vif_row.int(vif::MTU).max(68) as u32,
    }
}

/// What the hypervisor needs to build the VM's domain, from the VM and its devices.
pub fn domain_config(data: &Data, vm_ref: &str) -> ApiResult<DomainConfig> {
    let row = data.expect(class::VM, vm_ref)?;
    let opt_path = |s: &str| if s.is_empty() { None } else { Some(PathBuf::from(s)) };
    let disks = row.strs(vm::VBDS).iter().filter_map(|r| data.row(class::VBD, r)).map(|b| disk_config(data, b)).collect();
    let mut vifs: Vec<&Row> = row.strs(vm::VIFS).iter().filter_map(|r| data.row(class::VIF, r)).collect();
    vifs.sort_by_key(|v| v.str(vif::DEVICE).parse::<u32>().unwrap_or(u32::MAX));
    Ok(DomainConfig {
        uuid: uuid_of(row),
        name: row.str(vm::NAME_LABEL).to_owned(),
        memory_static_max: row.int(vm::MEMORY_STATIC_MAX).max(0) as u64,
        memory_target: row.int(vm::MEMORY_DYNAMIC_MAX).max(0) as u64,
        vcpus_max: row.int(vm::VCPUS_MAX).max(0) as u32,
        vcpus_at_startup: row.int(vm::VCPUS_AT_STARTUP).max(0) as u32,
        kernel: opt_path(row.str(vm::PV_KERNEL)),
        ramdisk: opt_path(row.str(vm::PV_RAMDISK)),
        cmdline: row.str(vm::PV_ARGS).to_owned(),
        disks,
        nics: vifs.into_iter().map(|v| nic_config(data, v)).collect(),
    })
}

/// The memory and vCPU settings must be consistent before a VM can run.
pub fn check_boot_constraints(row: &Row, vm_ref: &str) -> ApiResult<()> {
    check_memory(
        row.int(vm::MEMORY_STATIC_MIN),
        row.int(vm::MEMORY_DYNAMIC_MIN),
        row.int(vm::MEMORY_DYNAMIC_MAX),
        row.int(vm::MEMORY_STATIC_MAX),
    )?;
    if row.int(vm::MEMORY_STATIC_MAX) <= 0 {
        return Err(ApiError::new(codes::VM_MEMORY_SIZE_TOO_LOW, [vm_ref]));
    }
    check_vcpus(row.int(vm::VCPUS_MAX), row.int(vm::VCPUS_AT_STARTUP))
}

pub fn check_memory(static_min: i64, dynamic_min: i64, dynamic_max: i64, static_max: i64) -> ApiResult<()> {
    if !(0 <= static_min && static_min <= dynamic_min && dynamic_min <= dynamic_max && dynamic_max <= static_max) {
        return Err(ApiError::new(
            codes::MEMORY_CONSTRAINT_VIOLATION,
            ["Memory limits must satisfy: static_min \u{2264} dynamic_min \u{2264} dynamic_max \u{2264} static_max"],
        ));
    }
    Ok(())
}

pub fn check_vcpus(max: i64, at_startup: i64) -> ApiResult<()> {
    if max < 1 {
        return Err(ApiError::invalid_value("VCPUs_max", max));
    }
    if at_startup < 1 || at_startup > max {
        return Err(ApiError::invalid_value("VCPUs_at_startup", at_startup));
    }
    Ok(())
}

/// Records that the VM's domain runs (or is paused) with `domid`.
fn record_running(
    tx: &mut Tx,
    known: &WellKnown,
    vm_ref: &str,
    domid: u32,
    paused: bool,
    info: Option<hypervisor::DomainInfo>,
) -> ApiResult<()> {
    tx.set(class::VM, vm_ref, vm::POWER_STATE, Value::str(if paused { "Paused" } else { "Running" }))?;
    tx.set(class::VM, vm_ref, vm::DOMID, Value::Int(domid as i64))?;
    tx.set(class::VM, vm_ref, vm::RESIDENT_ON, Value::str(known.host.clone()))?;
    let row = tx.data().expect(class::VM, vm_ref)?.clone();
    for vbd_ref in row.strs(vm::VBDS) {
        tx.set(class::VBD, &vbd_ref, vbd::CURRENTLY_ATTACHED, Value::Bool(true))?;
    }
    for vif_ref in row.strs(vm::VIFS) {
        tx.set(class::VIF, &vif_ref, vif::CURRENTLY_ATTACHED, Value::Bool(true))?;
    }
    if row.strs(vm::CONSOLES).is_empty() {
        let mut c = default_fields(class::console);
        c[console::PROTOCOL.index()] = Value::str("vt100");
        c[console::LOCATION.index()] = Value::str(format!("xencim-console://{}", row.str(vm::UUID)));
        c[console::VM.index()] = Value::str(vm_ref);
        tx.insert(class::console, c);
    }
    let metrics = row.str(vm::METRICS).to_owned();
    if tx.data().row(class::VM_metrics, &metrics).is_some() {
        let info = info.as_ref();
        tx.set(
            class::VM_metrics,
            &metrics,
            vm_metrics::START_TIME,
            Value::DateTime(info.map(|i| xapi_time(i.start_time)).unwrap_or_else(now_xapi)),
        )?;
        tx.set(
            class::VM_metrics,
            &metrics,
            vm_metrics::VCPUS_NUMBER,
            Value::Int(info.map(|i| i.vcpus as i64).unwrap_or(row.int(vm::VCPUS_AT_STARTUP))),
        )?;
        tx.set(
            class::VM_metrics,
            &metrics,
            vm_metrics::MEMORY_ACTUAL,
            Value::Int(info.map(|i| i.memory_actual as i64).unwrap_or(row.int(vm::MEMORY_DYNAMIC_MAX))),
        )?;
        tx.set(class::VM_metrics, &metrics, vm_metrics::STATE, Value::Array(vec![Value::str(if paused { "paused" } else { "running" })]))?;
        tx.set(class::VM_metrics, &metrics, vm_metrics::LAST_UPDATED, Value::DateTime(now_xapi()))?;
    }
    Ok(())
}

/// Records that the VM has no domain any more (Halted or Suspended).
pub fn record_stopped(tx: &mut Tx, vm_ref: &str, state: PowerState) -> ApiResult<()> {
    tx.set(class::VM, vm_ref, vm::POWER_STATE, Value::str(state.name()))?;
    tx.set(class::VM, vm_ref, vm::DOMID, Value::Int(-1))?;
    tx.set(class::VM, vm_ref, vm::RESIDENT_ON, Value::str(NULL_REF))?;
    let row = tx.data().expect(class::VM, vm_ref)?.clone();
    for vbd_ref in row.strs(vm::VBDS) {
        tx.set(class::VBD, &vbd_ref, vbd::CURRENTLY_ATTACHED, Value::Bool(false))?;
    }
    for vif_ref in row.strs(vm::VIFS) {
        tx.set(class::VIF, &vif_ref, vif::CURRENTLY_ATTACHED, Value::Bool(false))?;
    }
    for console_ref in row.strs(vm::CONSOLES) {
        tx.remove(class::console, &console_ref)?;
    }
    let metrics = row.str(vm::METRICS).to_owned();
    if tx.data().row(class::VM_metrics, &metrics).is_some() {
        tx.set(class::VM_metrics, &metrics, vm_metrics::MEMORY_ACTUAL, Value::Int(0))?;
        tx.set(class::VM_metrics, &metrics, vm_metrics::VCPUS_NUMBER, Value::Int(0))?;
        tx.set(class::VM_metrics, &metrics, vm_metrics::STATE, Value::Array(vec![]))?;
        tx.set(class::VM_metrics, &metrics, vm_metrics::LAST_UPDATED, Value::DateTime(now_xapi()))?;
    }
    Ok(())
}

pub fn start(model: &Model, task: Option<&str>, vm_ref: &str, paused: bool) -> ApiResult<()> {
    let config = {
        let data = model.db.read();
        let row = data.expect(class::VM, vm_ref)?;
        check_operation(&data, vm_ref, "start", &model.known)?;
        check_boot_constraints(row, vm_ref)?;
        domain_config(&data, vm_ref)?
    };
    with_operation(
        model,
        vm_ref,
        "start",
        task,
        |_| model.hv.start(&config, paused).map_err(|e| hv_error(vm_ref, e)),
        |tx, domid| record_running(tx, &model.known, vm_ref, *domid, paused, model.hv.info(config.uuid)),
    )
    .map(|_| ())
}

pub fn pause(model: &Model, task: Option<&str>, vm_ref: &str) -> ApiResult<()> {
    with_operation(
        model,
        vm_ref,
        "pause",
        task,
        |row| model.hv.pause(uuid_of(row)).map_err(|e| hv_error(vm_ref, e)),
        |tx, _| {
            tx.set(class::VM, vm_ref, vm::POWER_STATE, Value::str("Paused"))?;
            set_metrics_state(tx, vm_ref, "paused")
        },
    )
}

pub fn unpause(model: &Model, task: Option<&str>, vm_ref: &str) -> ApiResult<()> {
    with_operation(
        model,
        vm_ref,
        "unpause",
        task,
        |row| model.hv.unpause(uuid_of(row)).map_err(|e| hv_error(vm_ref, e)),
        |tx, _| {
            tx.set(class::VM, vm_ref, vm::POWER_STATE, Value::str("Running"))?;
            set_metrics_state(tx, vm_ref, "running")
        },
    )
}

fn set_metrics_state(tx: &mut Tx, vm_ref: &str, state: &str) -> ApiResult<()> {
    let metrics = tx.data().expect(class::VM, vm_ref)?.str(vm::METRICS).to_owned();
    if tx.data().row(class::VM_metrics, &metrics).is_some() {
        tx.set(class::VM_metrics, &metrics, vm_metrics::STATE, Value::Array(vec![Value::str(state)]))?;
    }
    Ok(())
}

pub fn clean_shutdown(model: &Model, task: Option<&str>, vm_ref: &str) -> ApiResult<()> {
    let timeout = model.config.clean_shutdown_timeout.as_secs().max(1);
    with_operation(
        model,
        vm_ref,
        "clean_shutdown",
        task,
        |row| model.hv.clean_shutdown(uuid_of(row), timeout).map_err(|e| hv_error(vm_ref, e)),
        |tx, _| record_stopped(tx, vm_ref, Halted),
    )
}

pub fn hard_shutdown(model: &Model, task: Option<&str>, vm_ref: &str) -> ApiResult<()> {
    with_operation(
        model,
        vm_ref,
        "hard_shutdown",
        task,
        |row| match PowerState::of(row) {
            Suspended => Ok(()),
            _ => model
                .hv
                .hard_shutdown(uuid_of(row))
                .or_else(|e| if matches!(e, HypervisorError::NoSuchDomain(_)) { Ok(()) } else { Err(e) })
                .map_err(|e| hv_error(vm_ref, e)),
        },
        |tx, _| {
            discard_suspend_image(tx, vm_ref)?;
            record_stopped(tx, vm_ref, Halted)
        },
    )
}

/// `VM.shutdown`: a clean shutdown when the guest can answer, a hard one otherwise.
pub fn shutdown(model: &Model, task: Option<&str>, vm_ref: &str) -> ApiResult<()> {
    let state = PowerState::of(model.db.read().expect(class::VM, vm_ref)?);
    if state == Running {
        match clean_shutdown(model, task, vm_ref) {
            Err(e) if e.code == codes::VM_SHUTDOWN_TIMEOUT => {}
            other => return other,
        }
    } else {
        check_operation(&model.db.read(), vm_ref, "shutdown", &model.known)?;
    }
    hard_shutdown(model, task, vm_ref)
}

pub fn reboot(model: &Model, task: Option<&str>, vm_ref: &str, clean: bool) -> ApiResult<()> {
    let op = if clean { "clean_reboot" } else { "hard_reboot" };
    let timeout = model.config.clean_shutdown_timeout.as_secs().max(1);
    with_operation(
        model,
        vm_ref,
        op,
        task,
        |row| model.hv.reboot(uuid_of(row), clean, timeout).map_err(|e| hv_error(vm_ref, e)),
        |tx, domid| {
            let info = model.hv.info(uuid_of(tx.data().expect(class::VM, vm_ref)?));
            record_running(tx, &model.known, vm_ref, *domid, false, info)
        },
    )
    .map(|_| ())
}

/// The suspend image of a VM lives in a VDI of type `suspend` on the pool's suspend SR.
pub fn suspend(model: &Model, task: Option<&str>, vm_ref: &str) -> ApiResult<()> {
    let (sr_ref, sr_uuid) = {
        let data = model.db.read();
        let sr_row = data.expect(class::SR, &model.known.local_sr)?;
        (model.known.local_sr.clone(), sr_row.str(sr::UUID).to_owned())
    };
    let vdi_uuid = uuid::Uuid::new_v4().to_string();
    let image = model.config.sr_dir(&sr_uuid).join(format!("{vdi_uuid}.suspend"));
    with_operation(
        model,
        vm_ref,
        "suspend",
        task,
        |row| model.hv.suspend(uuid_of(row), &image).map_err(|e| hv_error(vm_ref, e)),
        |tx, _| {
            let size = std::fs::metadata(&image).map(|m| m.len() as i64).unwrap_or(0);
            let name = format!("Suspend image of {}", tx.data().expect(class::VM, vm_ref)?.str(vm::NAME_LABEL));
            let mut f = default_fields(class::VDI);
            f[vdi::UUID.index()] = Value::str(vdi_uuid.clone());
            f[vdi::NAME_LABEL.index()] = Value::str(name);
            f[vdi::SR.index()] = Value::str(sr_ref.clone());
            f[vdi::TYPE.index()] = Value::str("suspend");
            f[vdi::VIRTUAL_SIZE.index()] = Value::Int(size);
            f[vdi::PHYSICAL_UTILISATION.index()] = Value::Int(size);
            f[vdi::LOCATION.index()] = Value::str(image.display().to_string());
            f[vdi::MANAGED.index()] = Value::Bool(true);
            let vdi_ref = tx.insert(class::VDI, f);
            tx.set(class::VM, vm_ref, vm::SUSPEND_VDI, Value::str(vdi_ref))?;
            record_stopped(tx, vm_ref, Suspended)
        },
    )
}

pub fn resume(model: &Model, task: Option<&str>, vm_ref: &str, paused: bool) -> ApiResult<()> {
    let (config, image) = {
        let data = model.db.read();
        let row = data.expect(class::VM, vm_ref)?;
        check_operation(&data, vm_ref, "resume", &model.known)?;
        let image = vdi_path(&data, row.str(vm::SUSPEND_VDI)).ok_or_else(|| ApiError::new(codes::VM_HAS_NO_SUSPEND_VDI, [vm_ref]))?;
        (domain_config(&data, vm_ref)?, image)
    };
    with_operation(
        model,
        vm_ref,
        "resume",
        task,
        |_| model.hv.resume(&config, &image, paused).map_err(|e| hv_error(vm_ref, e)),
        |tx, domid| {
            // The image goes only once the domain runs again.
            discard_suspend_image(tx, vm_ref)?;
            record_running(tx, &model.known, vm_ref, *domid, paused, model.hv.info(config.uuid))
        },
    )
    .map(|_| ())
}

/// Removes the suspend VDI of a VM, and its file.
pub fn discard_suspend_image(tx: &mut Tx, vm_ref: &str) -> ApiResult<()> {
    let vdi_ref = tx.data().expect(class::VM, vm_ref)?.str(vm::SUSPEND_VDI).to_owned();
    if let Some(path) = vdi_path(tx.data(), &vdi_ref) {
        tx.remove(class::VDI, &vdi_ref)?;
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a suspend image");
        }
    }
    tx.set(class::VM, vm_ref, vm::SUSPEND_VDI, Value::str(NULL_REF))
}

/// `VM.power_state_reset`: forget the domain (xapi uses it after a host crash).
pub fn power_state_reset(model: &Model, vm_ref: &str) -> ApiResult<()> {
    model.write(|tx| {
        check_operation(tx.data(), vm_ref, "power_state_reset", &model.known)?;
        let row = tx.data().expect(class::VM, vm_ref)?;
        if PowerState::of(row) == Suspended {
            discard_suspend_image(tx, vm_ref)?;
        }
        tx.set(class::VM, vm_ref, vm::CURRENT_OPERATIONS, Value::Struct(vec![]))?;
        record_stopped(tx, vm_ref, Halted)
    })
}

/// On start: a VM recorded as running whose domain is gone is Halted; a live domain's state
/// is taken as the truth. Suspended VMs keep their images.
pub fn reconcile(model: &Model) -> anyhow::Result<()> {
    let vms: Vec<(Ref, Row)> =
        model.db.read().rows(class::VM).filter(|(r, _)| **r != model.known.dom0).map(|(r, row)| (r.clone(), row.clone())).collect();
    let live: Vec<_> = vms.iter().map(|(_, row)| model.hv.info(uuid_of(row))).collect();
    let mut halted = 0;
    model
        .db
        .write(|tx| {
            for ((vm_ref, row), live) in vms.iter().zip(live) {
                if !row.map(vm::CURRENT_OPERATIONS).is_empty() {
                    tx.set(class::VM, vm_ref, vm::CURRENT_OPERATIONS, Value::Struct(vec![]))?;
                }
                let state = PowerState::of(row);
                match (live, state) {
                    (None, Running | Paused) => {
                        halted += 1;
                        record_stopped(tx, vm_ref, Halted)?;
                    }
                    (Some(info), _) => {
                        if state == Suspended {
                            discard_suspend_image(tx, vm_ref)?;
                        }
                        let paused = info.state == hypervisor::RunState::Paused;
                        record_running(tx, &model.known, vm_ref, info.domid, paused, Some(info))?;
                    }
                    _ => {}
                }
                // Written only when it differs, so an unchanged store is not rewritten.
                let ops = allowed_operations(tx.data(), vm_ref, &model.known);
                tx.set(class::VM, vm_ref, vm::ALLOWED_OPERATIONS, Value::Array(ops.into_iter().map(Value::str).collect()))?;
            }
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("reconciling power states: {e}"))?;
    tracing::info!(vms = vms.len(), halted, "power states reconciled with the hypervisor");
    Ok(())
}
