//! The methods of Xen_VirtualSystemManagementService (DSP1042): DefineSystem, DestroySystem,
//! ModifySystemSettings, AddResourceSettings, ModifyResourceSettings, RemoveResourceSettings.
//!
//! Each method first reads and checks everything the client sent (any problem is
//! CIM_ERR_INVALID_PARAMETER naming the property; a path that names nothing is
//! CIM_ERR_NOT_FOUND), then acts only through the model's operations. When the model refuses
//! (a running VM cannot be destroyed, vCPUs_max cannot change while it runs, ...) the method
//! returns 2 (Failed) and a finished job whose error carries the model's reason; what a method
//! made before the refusal is undone. DefineSystem with disks to create or copy returns 4096 and
//! the job that builds the VM.

use wbem::cim::{CimError, CimValue, Instance, ObjectPath};
use wbem::provider::{MethodOutput, MethodParams, OpContext};
use xenapi::datamodel::{class, vbd, vdi, vif, vm, NULL_REF};
use xenapi::db::{default_fields, Data};
use xenapi::devices;
use xenapi::error::{codes, ApiError, ApiResult};
use xenapi::lifecycle::{self, PowerState};
use xenapi::model::Model;
use xenapi::value::Value;
use xenapi::vm_ops;

use crate::host::{self, HostFacts};
use crate::input::{self, DiskIn, DiskKind, DiskSource, MemIn, NetIn, ProcIn, ResIn, SystemPatch};
use crate::jobs::{self, JobSpec, Owner};
use crate::names::{self, Dev, Obj, NS, VSMS};
use crate::pools;
use crate::settings::MIB;
use crate::util::invalid;
use crate::Ctx;

pub const RC_OK: u32 = 0;
pub const RC_FAILED: u32 = 2;
pub const RC_JOB_STARTED: u32 = 4096;

fn required<'a>(params: &'a MethodParams, name: &str) -> Result<&'a CimValue, CimError> {
    params.get(name).ok_or_else(|| CimError::invalid_parameter(format!("the {name} parameter is required")))
}

fn check_class(op: &OpContext, i: &Instance, base: &str, context: &str) -> Result<(), CimError> {
    if op.repository.is_a(NS, &i.class_name, base) {
        Ok(())
    } else {
        Err(CimError::invalid_parameter(format!("{context}: an instance of {} is not a {base}", i.class_name)))
    }
}

fn reference<'a>(value: &'a CimValue, param: &str) -> Result<&'a ObjectPath, CimError> {
    value.as_reference().ok_or_else(|| CimError::invalid_parameter(format!("{param} must be a reference")))
}

/// The VM ref of a configuration's path (a VSSD, also of templates).
fn config_ref(data: &Data, path: &ObjectPath, param: &str) -> Result<String, CimError> {
    match names::parse(path) {
        Some(Obj::Vssd(u)) => {
            data.by_uuid(class::VM, &u).cloned().ok_or_else(|| CimError::not_found(format!("{param}: no configuration {path}")))
        }
        _ => Err(CimError::invalid_parameter(format!("{param}: {path} is not a Xen_VirtualSystemSettingData path"))),
    }
}

/// The outcome of a method the model refused: 2 and a failed job with the reason.
fn refused(ctx: &Ctx, spec: &JobSpec, e: &ApiError) -> MethodOutput {
    jobs::with_job(MethodOutput::returning(RC_FAILED), jobs::failed(ctx, spec, e))
}

fn spec(method: &'static str, user: &str, affects: Option<String>, what: String) -> JobSpec {
    JobSpec { label: format!("{VSMS}.{method}"), description: format!("{what} by CIM user {user}"), method, owner: Owner::Vsms, affects }
}

pub fn invoke(ctx: &Ctx, op: &OpContext, method: &str, params: &MethodParams) -> Result<MethodOutput, CimError> {
    match method.to_ascii_lowercase().as_str() {
        "definesystem" => define_system(ctx, op, params),
        "destroysystem" => destroy_system(ctx, op, params),
        "modifysystemsettings" => modify_system_settings(ctx, op, params),
        "addresourcesettings" => add_resource_settings(ctx, op, params),
        "modifyresourcesettings" => modify_resource_settings(ctx, op, params),
        "removeresourcesettings" => remove_resource_settings(ctx, op, params),
        _ => Err(CimError::new(wbem::cim::CimStatus::MethodNotAvailable, format!("{VSMS}.{method} is not implemented"))),
    }
}

/// Everything DefineSystem will make, checked.
struct Plan {
    patch: SystemPatch,
    name: String,
    /// The VM to clone (ReferenceConfiguration).
    reference: Option<String>,
    proc: Option<ProcIn>,
    mem: Option<MemIn>,
    memory: [i64; 4],
    vcpus: i64,
    vcpus_max: i64,
    disks: Vec<DiskIn>,
    nets: Vec<NetIn>,
}

/// Sorts RASDs by resource and refuses a second processor or memory setting and devices that
/// clash with each other.
/// A VM's resources from a list of RASDs: processors, memory, disks, network ports.
type Sorted = (Option<ProcIn>, Option<MemIn>, Vec<DiskIn>, Vec<NetIn>);

fn sort_resources(list: Vec<(String, ResIn)>) -> Result<Sorted, CimError> {
    let (mut proc, mut mem, mut disks, mut nets) = (None, None, Vec::<DiskIn>::new(), Vec::<NetIn>::new());
    for (context, r) in list {
        match r {
            ResIn::Proc(p) if proc.is_none() => proc = Some(p),
            ResIn::Mem(m) if mem.is_none() => mem = Some(m),
            ResIn::Proc(_) | ResIn::Mem(_) => {
                return Err(invalid(&context, "ResourceType", "repeats a processor or memory setting; a VM has one of each"))
            }
            ResIn::Disk(d) => {
                if let Some((name, slot)) = &d.device {
                    if disks.iter().any(|o| o.device.as_ref().is_some_and(|(_, s)| s == slot)) {
                        return Err(invalid(&context, "VirtualDevice", format!("{name} is given twice")));
                    }
                }
                disks.push(d);
            }
            ResIn::Net(n) => {
                if let Some(mac) = &n.mac {
                    if nets.iter().any(|o| o.mac.as_ref() == Some(mac)) {
                        return Err(invalid(&context, "Address", format!("{mac} is given twice")));
                    }
                }
                if let Some(dev) = &n.device {
                    if nets.iter().any(|o| o.device.as_ref() == Some(dev)) {
                        return Err(invalid(&context, "VirtualDevice", format!("vif{dev} is given twice")));
                    }
                }
                nets.push(n);
            }
        }
    }
    Ok((proc, mem, disks, nets))
}

fn read_resources(op: &OpContext, data: &Data, f: &HostFacts, value: Option<&CimValue>) -> Result<Vec<(String, ResIn)>, CimError> {
    let mut out = Vec::new();
    for (n, i) in input::embedded_list(&op.repository, value, "ResourceSettings")?.iter().enumerate() {
        let context = input::context("ResourceSettings", Some(n), i);
        check_class(op, i, "CIM_ResourceAllocationSettingData", &context)?;
        out.push((context.clone(), input::resource(data, f, i, &context)?));
    }
    Ok(out)
}

fn define_system(ctx: &Ctx, op: &OpContext, params: &MethodParams) -> Result<MethodOutput, CimError> {
    let model = &ctx.model;
    let plan = {
        let data = model.db.read();
        let f = host::facts(ctx, &data);
        let sys = input::embedded(&op.repository, required(params, "SystemSettings")?, "SystemSettings")?;
        let sys_context = input::context("SystemSettings", None, &sys);
        check_class(op, &sys, "CIM_VirtualSystemSettingData", &sys_context)?;
        let patch = input::system_patch(&sys, &sys_context)?;
        let name = patch.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| invalid(&sys_context, "ElementName", "is required"))?;
        if let Some(u) = &patch.uuid {
            if data.by_uuid(class::VM, u).is_some() {
                return Err(invalid(&sys_context, "UUID", format!("{u} is the uuid of an existing VM")));
            }
        }
        let reference = match params.get("ReferenceConfiguration") {
            Some(v) => Some(config_ref(&data, reference(v, "ReferenceConfiguration")?, "ReferenceConfiguration")?),
            None => None,
        };
        let (proc, mem, disks, nets) = sort_resources(read_resources(op, &data, &f, params.get("ResourceSettings"))?)?;
        let mem_context = "ResourceSettings (memory)";
        let memory = input::new_memory(&f, mem.as_ref().unwrap_or(&MemIn::default()), mem_context)?;
        let p = proc.clone().unwrap_or_default();
        let vcpus = p.vcpus.unwrap_or(1);
        let vcpus_max = p.max.unwrap_or(vcpus);
        if vcpus_max < vcpus {
            return Err(invalid(
                "ResourceSettings (processor)",
                "MaxVirtualQuantity",
                format!("{vcpus_max} is below VirtualQuantity {vcpus}"),
            ));
        }
        if vcpus_max > f.cpus.max(1) || vcpus_max > 64 {
            let prop = if p.max.is_some() { "MaxVirtualQuantity" } else { "VirtualQuantity" };
            return Err(invalid(
                "ResourceSettings (processor)",
                prop,
                format!("{vcpus_max} is more than ProcessorPool/0 has ({})", f.cpus),
            ));
        }
        Plan { patch, name, reference, proc, mem, memory, vcpus: vcpus as i64, vcpus_max: vcpus_max as i64, disks, nets }
    };
    let sp = spec("DefineSystem", &op.principal.user, None, format!("DefineSystem of {}", plan.name));
    let copies_disks = plan.reference.as_ref().is_some_and(|r| {
        let data = model.db.read();
        data.row(class::VM, r).is_some_and(|row| {
            row.strs(vm::VBDS)
                .iter()
                .filter_map(|b| data.row(class::VBD, b))
                .any(|b| b.str(vbd::TYPE) == "Disk" && b.str(vbd::VDI) != NULL_REF)
        })
    });
    if let Some(r) = &plan.reference {
        if let Err(e) = lifecycle::check_operation(&model.db.read(), r, "clone", &model.known) {
            return Ok(refused(ctx, &sp, &e));
        }
    }
    let slow = copies_disks || plan.disks.iter().any(|d| matches!(d.source, DiskSource::New { .. }));
    if slow {
        let job = jobs::start(ctx, sp, move |model, task| build(model, Some(task), &plan).map(Some))?;
        return Ok(MethodOutput::returning(RC_JOB_STARTED).with_out("Job", job));
    }
    match build(model, None, &plan) {
        Ok(vm_ref) => {
            let uuid = model.db.read().row(class::VM, &vm_ref).map(|r| r.str(vm::UUID).to_owned()).unwrap_or_default();
            Ok(MethodOutput::returning(RC_OK).with_out("ResultingSystem", names::vm_path(&uuid)))
        }
        Err(e) => Ok(refused(ctx, &sp, &e)),
    }
}

fn new_vm_fields(plan: &Plan) -> Vec<Value> {
    let p = &plan.patch;
    let mut f = default_fields(class::VM);
    let mut set = |id: xenapi::datamodel::FieldId, v: Value| f[id.index()] = v;
    if let Some(u) = &p.uuid {
        set(vm::UUID, Value::str(u.clone()));
    }
    set(vm::NAME_LABEL, Value::str(plan.name.clone()));
    set(vm::NAME_DESCRIPTION, Value::str(p.description.clone().unwrap_or_default()));
    set(vm::USER_VERSION, Value::Int(1));
    let [smin, dmin, dmax, smax] = plan.memory;
    set(vm::MEMORY_STATIC_MIN, Value::Int(smin));
    set(vm::MEMORY_DYNAMIC_MIN, Value::Int(dmin));
    set(vm::MEMORY_DYNAMIC_MAX, Value::Int(dmax));
    set(vm::MEMORY_STATIC_MAX, Value::Int(smax));
    set(vm::MEMORY_TARGET, Value::Int(dmax));
    set(vm::VCPUS_MAX, Value::Int(plan.vcpus_max));
    set(vm::VCPUS_AT_STARTUP, Value::Int(plan.vcpus));
    set(vm::VCPUS_PARAMS, vcpus_params(&[], plan.proc.as_ref()));
    set(vm::ACTIONS_AFTER_SHUTDOWN, Value::str(p.on_shutdown.clone().unwrap_or_else(|| "destroy".into())));
    set(vm::ACTIONS_AFTER_REBOOT, Value::str(p.on_reboot.clone().unwrap_or_else(|| "restart".into())));
    set(vm::ACTIONS_AFTER_CRASH, Value::str(p.on_crash.clone().unwrap_or_else(|| "restart".into())));
    let hvm = p.hvm.unwrap_or(false);
    set(vm::DOMAIN_TYPE, Value::str(if hvm { "hvm" } else { "pv" }));
    set(vm::HVM_BOOT_POLICY, Value::str(if hvm { "BIOS order" } else { "" }));
    if hvm {
        set(vm::HVM_BOOT_PARAMS, Value::Struct(vec![("order".into(), Value::str(p.boot_order.clone().unwrap_or_else(|| "cd".into())))]));
    }
    for (field, v) in [
        (vm::PV_KERNEL, &p.kernel),
        (vm::PV_RAMDISK, &p.ramdisk),
        (vm::PV_ARGS, &p.cmdline),
        (vm::PV_BOOTLOADER, &p.bootloader),
        (vm::PV_BOOTLOADER_ARGS, &p.bootloader_args),
    ] {
        set(field, Value::str(v.clone().unwrap_or_default()));
    }
    set(vm::PLATFORM, Value::Struct(p.platform.iter().map(|(k, v)| ((*k).to_owned(), Value::str(v.clone()))).collect()));
    f
}

fn vcpus_params(current: &[(String, Value)], p: Option<&ProcIn>) -> Value {
    let mut m: Vec<(String, Value)> = current.to_vec();
    let mut put = |k: &str, v: String| {
        m.retain(|(key, _)| key != k);
        m.push((k.to_owned(), Value::str(v)));
    };
    if let Some(p) = p {
        if let Some(w) = p.weight {
            put("weight", w.to_string());
        }
        if let Some(c) = p.cap {
            put("cap", c.to_string());
        }
    }
    Value::Struct(m)
}

/// What a build made, for undoing it.
#[derive(Default)]
struct Made {
    vdis: Vec<String>,
    vm: Option<String>,
    /// VDIs the clone of a reference configuration made.
    clone_vdis: Vec<String>,
    /// VBDs and VIFs added to an existing VM.
    devices: Vec<(xenapi::datamodel::ClassId, String)>,
}

impl Made {
    fn undo(self, model: &Model) {
        for (c, r) in self.devices.iter().rev() {
            let attached = model
                .db
                .read()
                .row(*c, r)
                .is_some_and(|d| d.bool(if *c == class::VBD { vbd::CURRENTLY_ATTACHED } else { vif::CURRENTLY_ATTACHED }));
            if attached {
                let _ = devices::set_plugged(model, *c, r, false);
            }
            let _ = devices::device_destroy(model, *c, r);
        }
        if let Some(vm_ref) = &self.vm {
            if let Err(e) = vm_ops::destroy(model, vm_ref) {
                tracing::warn!(vm = %vm_ref, error = %e, "could not remove a half-made VM");
            }
        }
        for v in self.clone_vdis.iter().chain(&self.vdis) {
            if let Err(e) = devices::vdi_destroy(model, v) {
                tracing::warn!(vdi = %v, error = %e, "could not remove a disk made for a VM that failed");
            }
        }
    }
}

fn create_vdi(model: &Model, sr_ref: &str, size: u64, name: &str) -> ApiResult<String> {
    let mut f = default_fields(class::VDI);
    f[vdi::NAME_LABEL.index()] = Value::str(name);
    f[vdi::SR.index()] = Value::str(sr_ref);
    f[vdi::VIRTUAL_SIZE.index()] = Value::Int(i64::try_from(size).map_err(|_| ApiError::invalid_value("virtual_size", size))?);
    f[vdi::TYPE.index()] = Value::str("user");
    devices::vdi_create(model, f)
}

/// The VDIs a disk list needs that do not exist yet.
fn create_disks(model: &Model, vm_name: &str, disks: &[DiskIn], made: &mut Made) -> ApiResult<Vec<Option<String>>> {
    let mut vdis = Vec::new();
    for (n, d) in disks.iter().enumerate() {
        vdis.push(match &d.source {
            DiskSource::New { sr_ref, size, name } => {
                let name = if name.is_empty() {
                    format!("{vm_name} {}", d.device.as_ref().map(|(n, _)| n.clone()).unwrap_or_else(|| format!("disk {n}")))
                } else {
                    name.clone()
                };
                let r = create_vdi(model, sr_ref, *size, &name)?;
                made.vdis.push(r.clone());
                Some(r)
            }
            DiskSource::Existing(r) => Some(r.clone()),
            DiskSource::Empty => None,
        });
    }
    Ok(vdis)
}

fn add_vbd(model: &Model, vm_ref: &str, d: &DiskIn, vdi_ref: Option<&str>, bootable: bool) -> ApiResult<String> {
    let mut f = default_fields(class::VBD);
    f[vbd::VM.index()] = Value::str(vm_ref);
    f[vbd::VDI.index()] = Value::str(vdi_ref.unwrap_or(NULL_REF));
    match &d.device {
        Some((name, slot)) => {
            f[vbd::USERDEVICE.index()] = Value::str(slot.to_string());
            f[vbd::DEVICE.index()] = Value::str(name.clone());
        }
        None => f[vbd::USERDEVICE.index()] = Value::str("autodetect"),
    }
    f[vbd::BOOTABLE.index()] = Value::Bool(bootable);
    f[vbd::MODE.index()] = Value::str(if d.read_only { "RO" } else { "RW" });
    f[vbd::TYPE.index()] = Value::str(d.kind.vbd_type());
    f[vbd::UNPLUGGABLE.index()] = Value::Bool(true);
    devices::vbd_create(model, f)
}

fn add_vif(model: &Model, vm_ref: &str, n: &NetIn) -> ApiResult<String> {
    let mut f = default_fields(class::VIF);
    f[vif::VM.index()] = Value::str(vm_ref);
    f[vif::NETWORK.index()] = Value::str(n.network_ref.clone());
    f[vif::MAC.index()] = Value::str(n.mac.clone().unwrap_or_default());
    f[vif::DEVICE.index()] = Value::str(n.device.clone().unwrap_or_default());
    devices::vif_create(model, f)
}

/// Builds the VM of a plan; on any failure removes everything it made.
fn build(model: &Model, task: Option<&str>, plan: &Plan) -> ApiResult<String> {
    let mut made = Made::default();
    match build_steps(model, task, plan, &mut made) {
        Ok(vm_ref) => Ok(vm_ref),
        Err(e) => {
            made.undo(model);
            Err(e)
        }
    }
}

fn build_steps(model: &Model, task: Option<&str>, plan: &Plan, made: &mut Made) -> ApiResult<String> {
    let vdis = create_disks(model, &plan.name, &plan.disks, made)?;
    xenapi::tasks::checkpoint(model, task)?;
    let vm_ref = match &plan.reference {
        Some(source) => {
            let before: Vec<String> = model.db.read().rows(class::VDI).map(|(r, _)| r.clone()).collect();
            let new = vm_ops::duplicate(model, source, &plan.name, vm_ops::CopyKind::Clone, None)?;
            made.vm = Some(new.clone());
            made.clone_vdis = model.db.read().rows(class::VDI).map(|(r, _)| r.clone()).filter(|r| !before.contains(r)).collect();
            if model.db.read().row(class::VM, &new).is_some_and(|r| r.bool(vm::IS_A_TEMPLATE)) {
                vm_ops::set_is_a_template(model, &new, false)?;
            }
            let patch = SystemPatch { name: None, ..plan.patch.clone() };
            apply_patch(model, &new, &patch)?;
            if let Some(p) = &plan.proc {
                apply_proc(model, &new, p)?;
            }
            if let Some(m) = &plan.mem {
                apply_mem(model, &new, m)?;
            }
            new
        }
        None => {
            let new = vm_ops::create(model, new_vm_fields(plan))?;
            made.vm = Some(new.clone());
            new
        }
    };
    if let Some(t) = task {
        jobs::set_affected(model, t, &vm_ref);
    }
    let first_disk = plan.disks.iter().position(|d| d.kind == DiskKind::Disk);
    for (n, (d, v)) in plan.disks.iter().zip(&vdis).enumerate() {
        xenapi::tasks::checkpoint(model, task)?;
        add_vbd(model, &vm_ref, d, v.as_deref(), d.bootable.unwrap_or(Some(n) == first_disk && plan.reference.is_none()))?;
    }
    for n in &plan.nets {
        add_vif(model, &vm_ref, n)?;
    }
    Ok(vm_ref)
}

/// Applies a settings patch to an existing VM (its uuid cannot change).
fn apply_patch(model: &Model, vm_ref: &str, p: &SystemPatch) -> ApiResult<()> {
    model.write(|tx| {
        let row = tx.data().expect(class::VM, vm_ref)?.clone();
        let set_str = |tx: &mut xenapi::db::Tx, f: xenapi::datamodel::FieldId, v: &Option<String>| match v {
            Some(v) => tx.set(class::VM, vm_ref, f, Value::str(v.clone())),
            None => Ok(()),
        };
        set_str(tx, vm::NAME_LABEL, &p.name)?;
        set_str(tx, vm::NAME_DESCRIPTION, &p.description)?;
        set_str(tx, vm::PV_KERNEL, &p.kernel)?;
        set_str(tx, vm::PV_RAMDISK, &p.ramdisk)?;
        set_str(tx, vm::PV_ARGS, &p.cmdline)?;
        set_str(tx, vm::PV_BOOTLOADER, &p.bootloader)?;
        set_str(tx, vm::PV_BOOTLOADER_ARGS, &p.bootloader_args)?;
        set_str(tx, vm::ACTIONS_AFTER_SHUTDOWN, &p.on_shutdown)?;
        set_str(tx, vm::ACTIONS_AFTER_REBOOT, &p.on_reboot)?;
        set_str(tx, vm::ACTIONS_AFTER_CRASH, &p.on_crash)?;
        if let Some(hvm) = p.hvm {
            tx.set(class::VM, vm_ref, vm::DOMAIN_TYPE, Value::str(if hvm { "hvm" } else { "pv" }))?;
            let policy = if hvm { "BIOS order" } else { "" };
            tx.set(class::VM, vm_ref, vm::HVM_BOOT_POLICY, Value::str(policy))?;
        }
        let map_put = |tx: &mut xenapi::db::Tx, f: xenapi::datamodel::FieldId, pairs: Vec<(String, String)>| {
            if pairs.is_empty() {
                return Ok(());
            }
            let mut m: Vec<(String, Value)> = row.map(f).to_vec();
            for (k, v) in pairs {
                m.retain(|(key, _)| *key != k);
                m.push((k, Value::str(v)));
            }
            tx.set(class::VM, vm_ref, f, Value::Struct(m))
        };
        map_put(tx, vm::PLATFORM, p.platform.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())?;
        map_put(tx, vm::HVM_BOOT_PARAMS, p.boot_order.iter().map(|o| ("order".to_owned(), o.clone())).collect())?;
        Ok(())
    })
}

fn destroy_system(ctx: &Ctx, op: &OpContext, params: &MethodParams) -> Result<MethodOutput, CimError> {
    let model = &ctx.model;
    let path = reference(required(params, "AffectedSystem")?, "AffectedSystem")?;
    let (vm_ref, uuid) = {
        let data = model.db.read();
        let uuid = match names::parse(path) {
            Some(Obj::Vm(u)) => u,
            _ => return Err(CimError::invalid_parameter(format!("AffectedSystem: {path} is not a Xen_ComputerSystem path"))),
        };
        (crate::system::system_ref(&data, &uuid)?, uuid)
    };
    match vm_ops::destroy(model, &vm_ref) {
        Ok(()) => Ok(MethodOutput::returning(RC_OK)),
        Err(e) => Ok(refused(ctx, &spec("DestroySystem", &op.principal.user, Some(vm_ref), format!("DestroySystem of {uuid}")), &e)),
    }
}

fn modify_system_settings(ctx: &Ctx, op: &OpContext, params: &MethodParams) -> Result<MethodOutput, CimError> {
    let model = &ctx.model;
    let sys = input::embedded(&op.repository, required(params, "SystemSettings")?, "SystemSettings")?;
    let context = input::context("SystemSettings", None, &sys);
    check_class(op, &sys, "CIM_VirtualSystemSettingData", &context)?;
    let id = crate::util::text(&sys, "InstanceID").ok_or_else(|| invalid(&context, "InstanceID", "is required to name the VM"))?;
    let path = names::vssd_path(id.strip_prefix("Xen:").unwrap_or(&id));
    let vm_ref = {
        let data = model.db.read();
        match id.strip_prefix("Xen:").map(|u| u.to_ascii_lowercase()) {
            Some(_) => config_ref(&data, &path, "SystemSettings")?,
            None => return Err(invalid(&context, "InstanceID", format!("'{id}' is not Xen:<uuid>"))),
        }
    };
    let patch = input::system_patch(&sys, &context)?;
    let current = model.db.read().row(class::VM, &vm_ref).map(|r| r.str(vm::UUID).to_owned()).unwrap_or_default();
    if patch.uuid.as_ref().is_some_and(|u| *u != current) {
        return Err(invalid(&context, "UUID", "cannot change"));
    }
    if patch.name.as_deref() == Some("") {
        return Err(invalid(&context, "ElementName", "cannot be empty"));
    }
    match apply_patch(model, &vm_ref, &patch) {
        Ok(()) => Ok(MethodOutput::returning(RC_OK)),
        Err(e) => Ok(refused(
            ctx,
            &spec("ModifySystemSettings", &op.principal.user, Some(vm_ref), format!("ModifySystemSettings of {current}")),
            &e,
        )),
    }
}

fn state_allows_devices(model: &Model, vm_ref: &str) -> ApiResult<PowerState> {
    let data = model.db.read();
    let state = PowerState::of(data.expect(class::VM, vm_ref)?);
    match state {
        PowerState::Halted | PowerState::Running => Ok(state),
        other => {
            Err(ApiError::new(codes::VM_BAD_POWER_STATE, [vm_ref.to_owned(), "halted, running".into(), other.name().to_ascii_lowercase()]))
        }
    }
}

fn add_resource_settings(ctx: &Ctx, op: &OpContext, params: &MethodParams) -> Result<MethodOutput, CimError> {
    let model = &ctx.model;
    let path = reference(required(params, "AffectedConfiguration")?, "AffectedConfiguration")?;
    let (vm_ref, uuid, name, resources) = {
        let data = model.db.read();
        let f = host::facts(ctx, &data);
        let vm_ref = config_ref(&data, path, "AffectedConfiguration")?;
        let row = data.row(class::VM, &vm_ref).expect("config_ref checked the row");
        let list = read_resources(op, &data, &f, Some(required(params, "ResourceSettings")?))?;
        if list.is_empty() {
            return Err(CimError::invalid_parameter("ResourceSettings is empty"));
        }
        for (context, r) in &list {
            if matches!(r, ResIn::Proc(_) | ResIn::Mem(_)) {
                return Err(invalid(
                    context,
                    "ResourceType",
                    "names a resource a VM has exactly one setting of; change it with ModifyResourceSettings",
                ));
            }
        }
        (vm_ref.clone(), row.str(vm::UUID).to_owned(), row.str(vm::NAME_LABEL).to_owned(), sort_resources(list)?)
    };
    let (_, _, disks, nets) = resources;
    let sp = spec("AddResourceSettings", &op.principal.user, Some(vm_ref.clone()), format!("AddResourceSettings to {uuid}"));
    let mut made = Made::default();
    let result = (|| -> ApiResult<Vec<ObjectPath>> {
        let state = state_allows_devices(model, &vm_ref)?;
        let vdis = create_disks(model, &name, &disks, &mut made)?;
        let mut out = Vec::new();
        for (d, v) in disks.iter().zip(&vdis) {
            let r = add_vbd(model, &vm_ref, d, v.as_deref(), d.bootable.unwrap_or(false))?;
            made.devices.push((class::VBD, r.clone()));
            if state == PowerState::Running {
                devices::set_plugged(model, class::VBD, &r, true)?;
            }
            let device = model.db.read().row(class::VBD, &r).map(lifecycle::device_name).unwrap_or_default();
            out.push(names::rasd_path(&uuid, &Dev::Disk(device)));
        }
        for n in &nets {
            let r = add_vif(model, &vm_ref, n)?;
            made.devices.push((class::VIF, r.clone()));
            if state == PowerState::Running {
                devices::set_plugged(model, class::VIF, &r, true)?;
            }
            let mac = model.db.read().row(class::VIF, &r).map(|v| v.str(vif::MAC).to_ascii_lowercase()).unwrap_or_default();
            out.push(names::rasd_path(&uuid, &Dev::Net(mac)));
        }
        Ok(out)
    })();
    match result {
        Ok(paths) => Ok(MethodOutput::returning(RC_OK).with_out("ResultingResourceSettings", ref_array(paths))),
        Err(e) => {
            made.undo(model);
            Ok(refused(ctx, &sp, &e))
        }
    }
}

pub fn ref_array(paths: Vec<ObjectPath>) -> CimValue {
    let values: Vec<CimValue> = paths.into_iter().map(CimValue::Reference).collect();
    CimValue::Array(wbem::cim::CimArray::from_values(wbem::cim::CimType::Reference, values).expect("references only"))
}

/// A quantity the client sent back unchanged: equal to the current value, or to it as the RASD
/// shows it (rounded down to whole MiB).
fn unchanged(given: u64, current: i64) -> bool {
    let current = current.max(0) as u64;
    given == current || given == current / MIB as u64 * MIB as u64
}

/// Processor settings on an existing VM: the vCPU count changes live on a running VM (up to
/// VCPUs_max), the maximum only while halted, as the model allows.
fn apply_proc(model: &Model, vm_ref: &str, p: &ProcIn) -> ApiResult<()> {
    let row = model.db.read().expect(class::VM, vm_ref)?.clone();
    let halted = PowerState::of(&row) == PowerState::Halted;
    let (cur_max, cur_n) = (row.int(vm::VCPUS_MAX), row.int(vm::VCPUS_AT_STARTUP));
    let want_n = p.vcpus.map(|v| v as i64).filter(|v| *v != cur_n);
    // A maximum sent back unchanged follows a count that outgrows it.
    let want_max = p.max.map(|v| v as i64).filter(|v| *v != cur_max).or(want_n.filter(|n| *n > cur_max));
    if halted {
        // The count must stay within the maximum at every step.
        if let Some(n) = want_n.filter(|n| *n < cur_n) {
            vm_ops::set_vcpus_at_startup(model, vm_ref, n)?;
        }
        if let Some(m) = want_max {
            vm_ops::set_vcpus_max(model, vm_ref, m)?;
        }
        if let Some(n) = want_n.filter(|n| *n > cur_n) {
            vm_ops::set_vcpus_at_startup(model, vm_ref, n)?;
        }
    } else {
        if let Some(m) = want_max {
            vm_ops::set_vcpus_max(model, vm_ref, m)?;
        }
        if let Some(n) = want_n {
            vm_ops::set_vcpus_number_live(model, vm_ref, n)?;
        }
    }
    if p.weight.is_some() || p.cap.is_some() {
        model.write(|tx| {
            let current = tx.data().expect(class::VM, vm_ref)?.map(vm::VCPUS_PARAMS).to_vec();
            tx.set(class::VM, vm_ref, vm::VCPUS_PARAMS, vcpus_params(&current, Some(p)))
        })?;
    }
    Ok(())
}

/// Memory settings on an existing VM. A property sent back unchanged follows the ones that
/// changed (raising VirtualQuantity above Limit raises Limit too); the model then decides
/// whether the change may happen now: the dynamic range changes live on a running VM (the
/// balloon moves), the static maximum only while halted.
fn apply_mem(model: &Model, vm_ref: &str, m: &MemIn) -> ApiResult<()> {
    let row = model.db.read().expect(class::VM, vm_ref)?.clone();
    let cur =
        [row.int(vm::MEMORY_STATIC_MIN), row.int(vm::MEMORY_DYNAMIC_MIN), row.int(vm::MEMORY_DYNAMIC_MAX), row.int(vm::MEMORY_STATIC_MAX)];
    let q = match m.quantity {
        Some(q) if !unchanged(q, cur[2]) => q as i64,
        _ => cur[2],
    };
    let res = match m.reservation {
        Some(r) if !unchanged(r, cur[1]) => r as i64,
        _ => cur[1].min(q),
    };
    let lim = match m.limit {
        Some(l) if !unchanged(l, cur[3]) => l as i64,
        _ => cur[3].max(q),
    };
    let new = [cur[0].min(res), res, q, lim];
    if new == cur {
        return Ok(());
    }
    let op = if new[0] != cur[0] || new[3] != cur[3] { "changing_static_range" } else { "changing_dynamic_range" };
    vm_ops::set_memory(model, vm_ref, op, |_| new)
}

fn changed_text(i: &Instance, prop: &str, current: &str) -> bool {
    crate::util::text(i, prop).is_some_and(|v| !v.eq_ignore_ascii_case(current))
}

/// Disk settings on an existing VM: Bootable, the name and the size of its image (the model
/// resizes only an image no running VM uses); where it comes from and its device stay.
fn apply_disk(model: &Model, vm_ref: &str, device: &str, i: &Instance, context: &str) -> Result<ApiResult<()>, CimError> {
    let (vbd_ref, vdi_ref, size) = {
        let data = model.db.read();
        let row = data.row(class::VM, vm_ref).ok_or_else(|| CimError::not_found("the VM went away"))?;
        let b = crate::settings::find_vbd(&data, row, device)
            .ok_or_else(|| CimError::not_found(format!("{context}: the VM has no disk {device}")))?;
        let vbd_ref = row
            .strs(vm::VBDS)
            .into_iter()
            .find(|r| data.row(class::VBD, r).is_some_and(|x| lifecycle::device_name(x) == device))
            .unwrap_or_default();
        let vdi_ref = b.str(vbd::VDI).to_owned();
        let v = data.row(class::VDI, &vdi_ref);
        let size = v.map(|v| v.int(vdi::VIRTUAL_SIZE)).unwrap_or(0);
        let pool = crate::settings::disk_pool(&data, b).map(|p| p.id()).unwrap_or_default();
        let location = v.map(|v| v.str(vdi::LOCATION).to_owned()).unwrap_or_default();
        for (prop, current) in [("PoolID", pool.as_str()), ("VirtualDevice", device), ("Address", location.as_str())] {
            if changed_text(i, prop, current) {
                return Err(invalid(context, prop, "cannot change; remove the disk and add another"));
            }
        }
        if let Some(first) = crate::util::texts(i, "HostResource").first() {
            if *first != location {
                return Err(invalid(context, "HostResource", "cannot change; remove the disk and add another"));
            }
        }
        (vbd_ref, vdi_ref, size)
    };
    let new_size = {
        let units = crate::util::text(i, "VirtualQuantityUnits")
            .filter(|u| !u.eq_ignore_ascii_case("count"))
            .or_else(|| crate::util::text(i, "AllocationUnits"))
            .unwrap_or_else(|| crate::settings::DISK_UNITS.into());
        let mult = crate::util::byte_units(&units)
            .ok_or_else(|| invalid(context, "VirtualQuantityUnits", format!("'{units}' is not a unit of bytes")))?;
        crate::util::uint(i, "VirtualQuantity", context)?
            .map(|q| q.checked_mul(mult).ok_or_else(|| invalid(context, "VirtualQuantity", "is too large")))
            .transpose()?
    };
    let bootable = crate::util::boolean(i, "Bootable", context)?;
    let label = crate::util::text(i, "ElementName");
    Ok((|| {
        if let Some(b) = bootable {
            model.write(|tx| tx.set(class::VBD, &vbd_ref, vbd::BOOTABLE, Value::Bool(b)))?;
        }
        if let Some(s) = new_size.filter(|s| *s as i64 != size) {
            if vdi_ref == NULL_REF {
                return Err(ApiError::new(codes::VDI_MISSING, [NULL_REF, vdi_ref.as_str()]));
            }
            devices::vdi_resize(model, &vdi_ref, s as i64)?;
        }
        if let Some(l) = label.filter(|l| !l.is_empty() && vdi_ref != NULL_REF) {
            model.write(|tx| tx.set(class::VDI, &vdi_ref, vdi::NAME_LABEL, Value::str(l)))?;
        }
        Ok(())
    })())
}

fn check_net(model: &Model, vm_ref: &str, mac: &str, i: &Instance, context: &str) -> Result<(), CimError> {
    let data = model.db.read();
    let row = data.row(class::VM, vm_ref).ok_or_else(|| CimError::not_found("the VM went away"))?;
    let v = crate::settings::find_vif(&data, row, mac)
        .ok_or_else(|| CimError::not_found(format!("{context}: the VM has no network port {mac}")))?;
    let pool = crate::settings::net_pool(&data, v).map(|p| p.id()).unwrap_or_default();
    for (prop, current) in [("Address", v.str(vif::MAC)), ("PoolID", pool.as_str())] {
        if changed_text(i, prop, current) {
            return Err(invalid(context, prop, "cannot change; remove the port and add another"));
        }
    }
    Ok(())
}

fn modify_resource_settings(ctx: &Ctx, op: &OpContext, params: &MethodParams) -> Result<MethodOutput, CimError> {
    let model = &ctx.model;
    let list = input::embedded_list(&op.repository, Some(required(params, "ResourceSettings")?), "ResourceSettings")?;
    // Read everything first, so that a bad instance late in the list changes nothing.
    let mut work = Vec::new();
    {
        let data = model.db.read();
        let f = host::facts(ctx, &data);
        for (n, i) in list.iter().enumerate() {
            let context = input::context("ResourceSettings", Some(n), i);
            check_class(op, i, "CIM_ResourceAllocationSettingData", &context)?;
            let id =
                crate::util::text(i, "InstanceID").ok_or_else(|| invalid(&context, "InstanceID", "is required to name the setting"))?;
            let (uuid, dev) = match names::parse_rasd_id(&i.class_name, &id) {
                Some(Obj::Rasd(u, d)) => (u, d),
                Some(Obj::TemplateRasd(..)) => {
                    return Err(invalid(&context, "InstanceID", "names a template setting, which cannot change"))
                }
                _ => return Err(invalid(&context, "InstanceID", format!("'{id}' is not the InstanceID of a {}", i.class_name))),
            };
            let vm_ref = data.by_uuid(class::VM, &uuid).cloned().ok_or_else(|| CimError::not_found(format!("{context}: no VM {uuid}")))?;
            let (res, _) = input::resource_of(i, &context)?;
            if res != dev.res() {
                return Err(invalid(&context, "ResourceType", "does not fit the setting InstanceID names"));
            }
            // Disks and ports are read against their current state when applied.
            let parsed = match &dev {
                Dev::Proc(_) | Dev::Mem => Some(input::resource(&data, &f, i, &context)?),
                Dev::Disk(_) | Dev::Net(_) => None,
            };
            if let Some(ResIn::Mem(m)) = &parsed {
                let (min, max) = (pools::MEMORY_MIN_MIB * MIB as u64, f.memory_total);
                for (prop, v) in [("VirtualQuantity", m.quantity), ("Limit", m.limit)] {
                    if v.is_some_and(|v| v < min || v > max) {
                        let why = format!("is outside what MemoryPool/0 can allocate ({} to {} MiB)", min / MIB as u64, max / MIB as u64);
                        return Err(invalid(&context, prop, why));
                    }
                }
            }
            work.push((context, vm_ref, uuid, dev, i, parsed));
        }
    }
    let mut out = Vec::new();
    for (context, vm_ref, uuid, dev, i, parsed) in work {
        let outcome = match (&dev, parsed) {
            (Dev::Proc(_), Some(ResIn::Proc(p))) => apply_proc(model, &vm_ref, &p),
            (Dev::Mem, Some(ResIn::Mem(m))) => apply_mem(model, &vm_ref, &m),
            (Dev::Disk(d), _) => apply_disk(model, &vm_ref, d, i, &context)?,
            (Dev::Net(mac), _) => check_net(model, &vm_ref, mac, i, &context).map(|_| Ok(()))?,
            _ => unreachable!("parsed above"),
        };
        if let Err(e) = outcome {
            return Ok(refused(
                ctx,
                &spec("ModifyResourceSettings", &op.principal.user, Some(vm_ref), format!("ModifyResourceSettings of {context}")),
                &e,
            ));
        }
        out.push(names::rasd_path(&uuid, &dev));
    }
    Ok(MethodOutput::returning(RC_OK).with_out("ResultingResourceSettings", ref_array(out)))
}

fn remove_resource_settings(ctx: &Ctx, op: &OpContext, params: &MethodParams) -> Result<MethodOutput, CimError> {
    let model = &ctx.model;
    let refs: Vec<ObjectPath> = match required(params, "ResourceSettings")? {
        CimValue::Array(a) => a
            .elements()
            .iter()
            .enumerate()
            .map(|(n, e)| {
                e.as_ref()
                    .and_then(CimValue::as_reference)
                    .cloned()
                    .ok_or_else(|| CimError::invalid_parameter(format!("ResourceSettings[{n}] is not a reference")))
            })
            .collect::<Result<_, _>>()?,
        CimValue::Reference(p) => vec![p.clone()],
        _ => return Err(CimError::invalid_parameter("ResourceSettings must be references to resource settings")),
    };
    let mut work = Vec::new();
    {
        let data = model.db.read();
        for (n, p) in refs.iter().enumerate() {
            let context = format!("ResourceSettings[{n}]");
            let (uuid, dev) = match names::parse(p) {
                Some(Obj::Rasd(u, d)) => (u, d),
                _ => return Err(CimError::invalid_parameter(format!("{context}: {p} is not the path of a VM's resource setting"))),
            };
            let vm_ref = data.by_uuid(class::VM, &uuid).cloned().ok_or_else(|| CimError::not_found(format!("{context}: no VM {uuid}")))?;
            let row = data.row(class::VM, &vm_ref).expect("by_uuid row");
            let device = match &dev {
                Dev::Proc(_) | Dev::Mem => {
                    return Err(CimError::invalid_parameter(format!("{context}: a VM's processor and memory settings cannot be removed")))
                }
                Dev::Disk(d) => {
                    let r =
                        row.strs(vm::VBDS).into_iter().find(|r| data.row(class::VBD, r).is_some_and(|b| lifecycle::device_name(b) == *d));
                    (class::VBD, r.ok_or_else(|| CimError::not_found(format!("{context}: the VM has no disk {d}")))?)
                }
                Dev::Net(mac) => {
                    let r = row
                        .strs(vm::VIFS)
                        .into_iter()
                        .find(|r| data.row(class::VIF, r).is_some_and(|v| v.str(vif::MAC).eq_ignore_ascii_case(mac)));
                    (class::VIF, r.ok_or_else(|| CimError::not_found(format!("{context}: the VM has no network port {mac}")))?)
                }
            };
            work.push((vm_ref, device));
        }
    }
    for (vm_ref, (c, r)) in work {
        let outcome = state_allows_devices(model, &vm_ref).and_then(|state| {
            let attached = model
                .db
                .read()
                .row(c, &r)
                .is_some_and(|d| d.bool(if c == class::VBD { vbd::CURRENTLY_ATTACHED } else { vif::CURRENTLY_ATTACHED }));
            if attached && state == PowerState::Running {
                devices::set_plugged(model, c, &r, false)?;
            }
            devices::device_destroy(model, c, &r)
        });
        if let Err(e) = outcome {
            return Ok(refused(
                ctx,
                &spec("RemoveResourceSettings", &op.principal.user, Some(vm_ref), "RemoveResourceSettings".into()),
                &e,
            ));
        }
    }
    Ok(MethodOutput::returning(RC_OK))
}
