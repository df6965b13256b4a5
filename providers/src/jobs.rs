//! Jobs: Xen_ConcreteJob is the CIM view of a Xen-API task, every task, whichever door started
//! it. A CIM method that runs long creates a model task and runs the model operation in a
//! thread with that task, as the Xen-API door does for `Async.` calls, so both doors see the same
//! task, the same progress, the same outcome and the same removal after `task_retention_secs`.
//!
//! What a CIM job needs beyond the task record lives in the task's `other_config`, so it is model
//! state too: `applies_to` (the affected VM's ref, the key XenCenter uses), `xencim_cim_method`
//! (the CIM method that started it) and `xencim_cim_owner` (`vm` or `vsms`: whose method it was).

use wbem::cim::{CimError, CimValue, Instance, ObjectPath};
use wbem::provider::MethodOutput;
use xenapi::datamodel::{class, task};
use xenapi::db::{Data, Row};
use xenapi::error::{codes, ApiError, ApiResult};
use xenapi::model::Model;
use xenapi::value::Value;

use crate::names::{self, JOB};
use crate::util;
use crate::Ctx;

pub const KEY_APPLIES_TO: &str = "applies_to";
pub const KEY_METHOD: &str = "xencim_cim_method";
pub const KEY_OWNER: &str = "xencim_cim_owner";

/// Whose method started a job (CIM_OwningJobElement).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A VM's RequestStateChange.
    Vm(String),
    /// A method of the management service.
    Vsms,
}

/// What a new job records.
#[derive(Clone, Debug)]
pub struct JobSpec {
    /// The task's name_label, the same as the Xen-API door's (`Async.VM.start`).
    pub label: String,
    pub description: String,
    /// The CIM method, for ErrorCode and ElementEffects.
    pub method: &'static str,
    pub owner: Owner,
    /// The VM the job acts on, when it exists already.
    pub affects: Option<String>,
}

fn create_task(model: &Model, spec: &JobSpec) -> ApiResult<String> {
    let task_ref = xenapi::tasks::create(model, &spec.label, &spec.description, None)?;
    let mut other = vec![
        (KEY_METHOD.to_owned(), Value::str(spec.method)),
        (KEY_OWNER.to_owned(), Value::str(if spec.owner == Owner::Vsms { "vsms" } else { "vm" })),
    ];
    if let Some(vm) = &spec.affects {
        other.push((KEY_APPLIES_TO.to_owned(), Value::str(vm.clone())));
    }
    model.write(|tx| tx.set(class::task, &task_ref, task::OTHER_CONFIG, Value::Struct(other)))?;
    Ok(task_ref)
}

/// Records that a job affects `vm_ref` (a VM that DefineSystem made once the job runs).
pub fn set_affected(model: &Model, task_ref: &str, vm_ref: &str) {
    let _ = model.write(|tx| {
        tx.update(class::task, task_ref, task::OTHER_CONFIG, |v| {
            if let Value::Struct(m) = v {
                m.retain(|(k, _)| k != KEY_APPLIES_TO);
                m.push((KEY_APPLIES_TO.to_owned(), Value::str(vm_ref)));
            }
        })
    });
}

fn path_of_task(model: &Model, task_ref: &str) -> Result<ObjectPath, CimError> {
    let data = model.db.read();
    let row = data.row(class::task, task_ref).ok_or_else(|| CimError::failed("the job's task vanished at once"))?;
    Ok(names::job_path(row.str(task::UUID)))
}

/// Starts `work` as a model task in a thread; `work` gets the task's ref and returns the ref of
/// the VM it made, if any. The job's path comes back at once.
pub fn start<F>(ctx: &Ctx, spec: JobSpec, work: F) -> Result<ObjectPath, CimError>
where
    F: FnOnce(&Model, &str) -> ApiResult<Option<String>> + Send + 'static,
{
    let model = ctx.model.clone();
    let task_ref = create_task(&model, &spec).map_err(|e| CimError::failed(format!("creating the job's task: {e}")))?;
    let path = path_of_task(&model, &task_ref)?;
    let t = task_ref.clone();
    let spawned = std::thread::Builder::new().name("cim-job".into()).spawn(move || {
        let outcome = xenapi::tasks::checkpoint(&model, Some(&t)).and_then(|_| work(&model, &t)).map(|made| {
            if let Some(vm_ref) = &made {
                set_affected(&model, &t, vm_ref);
            }
            made.map(Value::Str).unwrap_or_else(Value::void)
        });
        xenapi::tasks::finish(&model, &t, &outcome);
    });
    if let Err(e) = spawned {
        xenapi::tasks::finish(&ctx.model, &task_ref, &Err(ApiError::internal(format!("cannot start a thread: {e}"))));
        return Err(CimError::failed(format!("cannot start the job: {e}")));
    }
    Ok(path)
}

/// A job that ended at once in Exception with the model's error: how a method that returns a
/// failure code hands the reason to its caller (a method response cannot carry both a return
/// value and an error).
pub fn failed(ctx: &Ctx, spec: &JobSpec, e: &ApiError) -> Option<ObjectPath> {
    let task_ref = create_task(&ctx.model, spec).ok()?;
    xenapi::tasks::finish(&ctx.model, &task_ref, &Err(e.clone()));
    path_of_task(&ctx.model, &task_ref).ok()
}

/// A method's output with its Job out parameter, when there is a job.
pub fn with_job(out: MethodOutput, job: Option<ObjectPath>) -> MethodOutput {
    match job {
        Some(j) => out.with_out("Job", j),
        None => out,
    }
}

/// CIM_ConcreteJob.JobState of a task status.
pub fn job_state(status: &str) -> u16 {
    match status {
        "pending" => 4,
        "cancelling" => 6,
        "success" => 7,
        "cancelled" => 8,
        _ => 10,
    }
}

fn error_of(row: &Row) -> Option<ApiError> {
    let info = row.strs(task::ERROR_INFO);
    let (code, args) = info.split_first()?;
    Some(ApiError { code: code.clone(), args: args.to_vec() })
}

/// ErrorCode of a failed job: the return value its method would have given had it failed
/// within the call.
fn error_code(row: &Row, e: &ApiError) -> u16 {
    match row.map_get(task::OTHER_CONFIG, KEY_METHOD) {
        Some("RequestStateChange") => crate::system::return_code(e) as u16,
        _ => 2,
    }
}

pub fn job_instance(data: &Data, row: &Row, retention: std::time::Duration) -> Instance {
    let uuid = row.str(task::UUID);
    let status = row.str(task::STATUS);
    let created = row.str(task::CREATED);
    let finished = row.str(task::FINISHED);
    let done = !matches!(status, "pending" | "cancelling");
    let elapsed = match (util::parse_xapi_time(created), util::parse_xapi_time(finished)) {
        (Some(c), Some(f)) if done => (f - c).to_std().unwrap_or_default(),
        _ => util::since(created),
    };
    let mut i = Instance::new(JOB)
        .with("InstanceID", uuid)
        .with("Name", row.str(task::NAME_LABEL))
        .with("ElementName", row.str(task::NAME_LABEL))
        .with("Description", row.str(task::NAME_DESCRIPTION))
        .with("JobState", job_state(status))
        .with("JobStatus", status)
        .with("PercentComplete", (row.float(task::PROGRESS).clamp(0.0, 1.0) * 100.0).round() as u16)
        .with("ElapsedTime", util::interval(elapsed))
        .with("DeleteOnCompletion", true)
        .with("TimeBeforeRemoval", util::interval(retention))
        .with("LocalOrUtcTime", 2u16)
        .with(
            "OperationalStatus",
            match status {
                "success" | "cancelled" => vec![2u16, 17],
                "failure" => vec![6u16, 17],
                _ => vec![2u16],
            },
        );
    if let Some(t) = util::timestamp(created) {
        i.set("TimeSubmitted", t);
        i.set("StartTime", t);
        i.set("TimeOfLastStateChange", t);
    }
    if done {
        if let Some(t) = util::timestamp(finished) {
            i.set("TimeOfLastStateChange", t);
        }
        match error_of(row) {
            Some(e) if status == "failure" => {
                i.set("ErrorCode", error_code(row, &e));
                i.set("ErrorDescription", util::describe_error(data, &e));
            }
            Some(e) => i.set("ErrorDescription", util::describe_error(data, &e)),
            None => i.set("ErrorCode", 0u16),
        }
    }
    i.with_path(names::job_path(uuid))
}

/// The embedded CIM_Error of a failed job (GetError).
pub fn cim_error(data: &Data, row: &Row, e: &ApiError) -> Instance {
    let error_type: u16 = match e.code.as_str() {
        codes::VM_BAD_POWER_STATE | codes::OPERATION_NOT_ALLOWED | codes::OPERATION_BLOCKED | codes::VM_IS_TEMPLATE => 10,
        codes::HOST_NOT_ENOUGH_FREE_MEMORY | codes::HOST_NOT_ENOUGH_PCPUS => 9,
        _ => 4,
    };
    let mut i = Instance::new("CIM_Error")
        .with("ErrorType", error_type)
        .with("OwningEntity", "Xen-API")
        .with("MessageID", e.code.as_str())
        .with("Message", util::describe_error(data, e))
        .with("MessageArguments", e.args.clone())
        .with("PerceivedSeverity", 4u16)
        .with("ProbableCause", 0u16)
        .with("CIMStatusCode", 1u32)
        .with("CIMStatusCodeDescription", "CIM_ERR_FAILED");
    if let Some(vm) = row.map_get(task::OTHER_CONFIG, KEY_APPLIES_TO) {
        if let Some(vm_row) = data.row(class::VM, vm) {
            i.set("ErrorSource", names::vm_path(vm_row.str(xenapi::datamodel::vm::UUID)).to_string());
            i.set("ErrorSourceFormat", 2u16);
        }
    }
    i
}

/// The task ref of a job's uuid, or CIM_ERR_NOT_FOUND.
pub fn task_ref(data: &Data, uuid: &str) -> Result<String, CimError> {
    data.by_uuid(class::task, uuid)
        .cloned()
        .ok_or_else(|| CimError::not_found(format!("no job {uuid} (finished jobs go after TimeBeforeRemoval)")))
}

/// Xen_ConcreteJob methods: GetError, RequestStateChange (4 Terminate, 5 Kill) and the
/// deprecated KillJob, both of which cancel the task.
pub fn invoke(ctx: &Ctx, uuid: &str, method: &str, requested: Option<u16>) -> Result<MethodOutput, CimError> {
    let model = &ctx.model;
    let task_ref = task_ref(&model.db.read(), uuid)?;
    match method.to_ascii_lowercase().as_str() {
        "geterror" => {
            let data = model.db.read();
            let row = data.row(class::task, &task_ref).ok_or_else(|| CimError::not_found(format!("no job {uuid}")))?;
            let mut out = MethodOutput::returning(0u32);
            if row.str(task::STATUS) == "failure" {
                if let Some(e) = error_of(row) {
                    out = out.with_out("Error", CimValue::Instance(Box::new(cim_error(&data, row, &e))));
                }
            }
            Ok(out)
        }
        "requeststatechange" => match requested {
            Some(4 | 5) => Ok(MethodOutput::returning(match xenapi::tasks::cancel(model, &task_ref) {
                Ok(()) => 0u32,
                Err(_) => crate::system::RC_INVALID_TRANSITION,
            })),
            Some(2 | 3 | 6) => Ok(MethodOutput::returning(crate::system::RC_INVALID_TRANSITION)),
            Some(other) => Err(CimError::invalid_parameter(format!("RequestedState {other} is not a job state (4 Terminate, 5 Kill)"))),
            None => Err(CimError::invalid_parameter("RequestStateChange needs RequestedState")),
        },
        "killjob" => Ok(MethodOutput::returning(if xenapi::tasks::cancel(model, &task_ref).is_ok() { 0u32 } else { 4 })),
        _ => Err(CimError::new(wbem::cim::CimStatus::MethodNotAvailable, format!("{JOB} has no method {method}"))),
    }
}

/// DeleteInstance of a finished job removes its task (as `task.destroy`); a running one stays.
pub fn delete(ctx: &Ctx, uuid: &str) -> Result<(), CimError> {
    let model = &ctx.model;
    let (task_ref, status) = {
        let data = model.db.read();
        let r = task_ref(&data, uuid)?;
        let status = data.row(class::task, &r).map(|t| t.str(task::STATUS).to_owned()).unwrap_or_default();
        (r, status)
    };
    if matches!(status.as_str(), "pending" | "cancelling") {
        return Err(CimError::failed(format!("job {uuid} is still running; cancel it with RequestStateChange(4) first")));
    }
    xenapi::tasks::destroy(model, &task_ref).map_err(|e| CimError::failed(e.to_string()))
}
