//! Virtual systems (DSP1057): Xen_ComputerSystem and its state model, the states a VM can be
//! asked to reach (Xen_EnabledLogicalElementCapabilities), and RequestStateChange.
//!
//! Every state property is computed from the VM record: `power_state` gives EnabledState, an
//! operation in `current_operations` gives the transitional states (Starting, Shutting Down)
//! and RequestedState, `allowed_operations` gives the requestable states.

use wbem::cim::{CimError, Instance};
use wbem::provider::MethodOutput;
use xenapi::datamodel::{class, vm, vm_metrics};
use xenapi::db::{Data, Row};
use xenapi::error::{codes, ApiError};
use xenapi::lifecycle::{self, PowerState};

use crate::jobs::{self, JobSpec, Owner};
use crate::names::{self, CS};
use crate::util;
use crate::Ctx;

/// RequestStateChange return values (CIM_EnabledLogicalElement ValueMap).
pub const RC_OK: u32 = 0;
pub const RC_TIMEOUT: u32 = 3;
pub const RC_FAILED: u32 = 4;
pub const RC_JOB_STARTED: u32 = 4096;
pub const RC_INVALID_TRANSITION: u32 = 4097;
pub const RC_BUSY: u32 = 4099;

/// The states RequestStateChange accepts, with the Xen-API operation each means.
pub const REQUESTABLE: [(u16, &str); 7] = [
    (2, "Enabled: start, unpause or resume"),
    (3, "Disabled: hard shutdown"),
    (4, "Shut Down: clean shutdown"),
    (6, "Offline: suspend"),
    (9, "Quiesce: pause"),
    (10, "Reboot: clean reboot"),
    (11, "Reset: hard reboot"),
];

/// Whether a VM record is a virtual system (templates and snapshots are only configurations).
pub fn is_system(row: &Row) -> bool {
    !row.bool(vm::IS_A_TEMPLATE) && !row.bool(vm::IS_A_SNAPSHOT)
}

fn current_ops(row: &Row) -> Vec<String> {
    row.map(vm::CURRENT_OPERATIONS).iter().filter_map(|(_, v)| v.as_str().map(str::to_owned)).collect()
}

/// The state an operation leads to, as EnabledState / RequestedState values.
fn target_of(op: &str) -> Option<u16> {
    Some(match op {
        "start" | "start_on" | "unpause" | "resume" | "resume_on" => 2,
        "hard_shutdown" => 3,
        // Not VM.shutdown: it may end as a hard shutdown, which is 3, not what 4 promises.
        "clean_shutdown" => 4,
        "suspend" => 6,
        "pause" => 9,
        "clean_reboot" => 10,
        "hard_reboot" => 11,
        _ => return None,
    })
}

pub fn enabled_state(row: &Row) -> u16 {
    let ops = current_ops(row);
    if ops.iter().any(|o| matches!(o.as_str(), "start" | "start_on" | "resume" | "resume_on")) {
        return 10;
    }
    if ops.iter().any(|o| matches!(o.as_str(), "clean_shutdown" | "hard_shutdown" | "shutdown")) {
        return 4;
    }
    match PowerState::of(row) {
        PowerState::Running => 2,
        PowerState::Halted => 3,
        PowerState::Paused => 9,
        PowerState::Suspended => 6,
    }
}

/// The target of the operation in progress. Otherwise the state the VM is in: the model keeps no
/// record of the last request (either door may have made it), and CIM_EnabledLogicalElement says
/// RequestedState and EnabledState are the same once a requested change has taken place, which
/// is what consoles compare to see a transition done.
pub fn requested_state(row: &Row) -> u16 {
    transitioning_to(row).unwrap_or_else(|| match PowerState::of(row) {
        PowerState::Running => 2,
        PowerState::Halted => 3,
        PowerState::Suspended => 6,
        PowerState::Paused => 9,
    })
}

/// The target of the operation in progress, if any.
pub fn transitioning_to(row: &Row) -> Option<u16> {
    current_ops(row).iter().find_map(|o| target_of(o))
}

/// The states RequestStateChange can reach now, from `allowed_operations`.
pub fn states_supported(row: &Row) -> Vec<u16> {
    let mut states: Vec<u16> = row.strs(vm::ALLOWED_OPERATIONS).iter().filter_map(|o| target_of(o)).collect();
    states.sort_unstable();
    states.dedup();
    states
}

fn operational_status(row: &Row) -> Vec<u16> {
    let mut s = vec![match PowerState::of(row) {
        PowerState::Running | PowerState::Paused => 2,
        PowerState::Halted => 10,
        PowerState::Suspended => 15,
    }];
    match enabled_state(row) {
        10 => s.push(8),
        4 => s.push(9),
        _ => {}
    }
    s
}

fn metrics<'a>(data: &'a Data, row: &Row) -> Option<&'a Row> {
    data.row(class::VM_metrics, row.str(vm::METRICS))
}

/// Milliseconds since the domain started; 0 when it does not run.
pub fn on_time_ms(data: &Data, row: &Row) -> u64 {
    match PowerState::of(row) {
        PowerState::Running | PowerState::Paused => {
            metrics(data, row).map(|m| util::since(m.str(vm_metrics::START_TIME)).as_millis() as u64).unwrap_or(0)
        }
        _ => 0,
    }
}

pub fn cs_instance(data: &Data, row: &Row) -> Instance {
    let uuid = row.str(vm::UUID);
    let mut i = Instance::new(CS)
        .with("CreationClassName", CS)
        .with("Name", uuid)
        .with("UUID", uuid)
        .with("ElementName", row.str(vm::NAME_LABEL))
        .with("Caption", row.str(vm::NAME_LABEL))
        .with("Description", row.str(vm::NAME_DESCRIPTION))
        .with("NameFormat", "Other")
        .with("EnabledState", enabled_state(row))
        .with("RequestedState", requested_state(row))
        .with("TransitioningToState", transitioning_to(row).unwrap_or(12))
        .with("EnabledDefault", if row.map_get(vm::OTHER_CONFIG, "auto_poweron") == Some("true") { 2u16 } else { 3u16 })
        .with("AvailableRequestedStates", states_supported(row))
        .with("HealthState", 5u16)
        .with("OperationalStatus", operational_status(row))
        .with("OnTimeInMilliseconds", on_time_ms(data, row))
        .with("Dedicated", vec![0u16])
        .with("OtherIdentifyingInfo", vec![uuid])
        .with("IdentifyingDescriptions", vec!["Xen-API VM uuid"]);
    if row.bool(vm::IS_CONTROL_DOMAIN) {
        i.set("Roles", vec!["control domain"]);
    }
    if let Some(t) = metrics(data, row).and_then(|m| {
        let last = m.str(vm_metrics::LAST_UPDATED);
        util::timestamp(last).or_else(|| util::timestamp(m.str(vm_metrics::INSTALL_TIME)))
    }) {
        i.set("TimeOfLastStateChange", t);
    }
    i.with_path(names::vm_path(uuid))
}

pub fn elec_instance(row: &Row) -> Instance {
    let uuid = row.str(vm::UUID);
    Instance::new(names::ELEC)
        .with("InstanceID", uuid)
        .with("ElementName", format!("State capabilities of {}", row.str(vm::NAME_LABEL)))
        .with("RequestedStatesSupported", states_supported(row))
        .with("ElementNameEditSupported", false)
        .with_path(names::elec_path(uuid))
}

/// The VM ref of a virtual system's uuid, or CIM_ERR_NOT_FOUND.
pub fn system_ref(data: &Data, uuid: &str) -> Result<String, CimError> {
    data.by_uuid(class::VM, uuid)
        .filter(|r| data.row(class::VM, r).is_some_and(is_system))
        .cloned()
        .ok_or_else(|| CimError::not_found(format!("no virtual system with uuid {uuid}")))
}

/// The return value for a model error of a state change.
pub fn return_code(e: &ApiError) -> u32 {
    match e.code.as_str() {
        codes::VM_BAD_POWER_STATE
        | codes::OPERATION_BLOCKED
        | codes::OPERATION_NOT_ALLOWED
        | codes::VM_IS_TEMPLATE
        | codes::VM_HAS_NO_SUSPEND_VDI => RC_INVALID_TRANSITION,
        codes::OTHER_OPERATION_IN_PROGRESS => RC_BUSY,
        codes::VM_SHUTDOWN_TIMEOUT => RC_TIMEOUT,
        _ => RC_FAILED,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Start,
    Unpause,
    Resume,
    HardShutdown,
    CleanShutdown,
    Suspend,
    Pause,
    CleanReboot,
    HardReboot,
}

impl Action {
    /// The operation name of the model's state machine (and of the Xen-API task label).
    fn op(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Unpause => "unpause",
            Action::Resume => "resume",
            Action::HardShutdown => "hard_shutdown",
            Action::CleanShutdown => "clean_shutdown",
            Action::Suspend => "suspend",
            Action::Pause => "pause",
            Action::CleanReboot => "clean_reboot",
            Action::HardReboot => "hard_reboot",
        }
    }

    /// The operations that wait for a guest or move a memory image run as a job (4096); the
    /// others finish within the call.
    fn long(self) -> bool {
        matches!(self, Action::Start | Action::Resume | Action::CleanShutdown | Action::Suspend | Action::CleanReboot)
    }

    fn run(self, model: &xenapi::model::Model, task: Option<&str>, vm_ref: &str) -> Result<(), ApiError> {
        match self {
            Action::Start => lifecycle::start(model, task, vm_ref, false),
            Action::Unpause => lifecycle::unpause(model, task, vm_ref),
            Action::Resume => lifecycle::resume(model, task, vm_ref, false),
            Action::HardShutdown => lifecycle::hard_shutdown(model, task, vm_ref),
            Action::CleanShutdown => lifecycle::clean_shutdown(model, task, vm_ref),
            Action::Suspend => lifecycle::suspend(model, task, vm_ref),
            Action::Pause => lifecycle::pause(model, task, vm_ref),
            Action::CleanReboot => lifecycle::reboot(model, task, vm_ref, true),
            Action::HardReboot => lifecycle::reboot(model, task, vm_ref, false),
        }
    }
}

/// What a requested state means from the current power state: nothing to do (already there),
/// or an action.
fn plan(requested: u16, state: PowerState) -> Result<Option<Action>, CimError> {
    use PowerState::*;
    Ok(Some(match (requested, state) {
        (2, Running) | (3 | 4, Halted) | (6, Suspended) | (9, Paused) => return Ok(None),
        (2, Halted) => Action::Start,
        (2, Paused) => Action::Unpause,
        (2, Suspended) => Action::Resume,
        (3, _) => Action::HardShutdown,
        (4, _) => Action::CleanShutdown,
        (6, _) => Action::Suspend,
        (9, _) => Action::Pause,
        (10, _) => Action::CleanReboot,
        (11, _) => Action::HardReboot,
        (other, _) => {
            let known: Vec<String> = REQUESTABLE.iter().map(|(s, _)| s.to_string()).collect();
            return Err(CimError::invalid_parameter(format!(
                "RequestedState {other} is not supported for a virtual system; it takes {}",
                known.join(", ")
            )));
        }
    }))
}

/// Xen_ComputerSystem.RequestStateChange. Already in the requested state: 0. A transition the
/// model refuses: 4097 (4099 when another operation runs), with a finished job whose error
/// carries the model's reason. Long transitions: 4096 and the job of the model task that runs
/// them; the others: 0 once done.
pub fn request_state_change(ctx: &Ctx, user: &str, uuid: &str, requested: Option<u16>) -> Result<MethodOutput, CimError> {
    let requested = requested.ok_or_else(|| CimError::invalid_parameter("RequestStateChange needs RequestedState"))?;
    let model = &ctx.model;
    let (vm_ref, action, name) = {
        let data = model.db.read();
        let vm_ref = system_ref(&data, uuid)?;
        let row = data.row(class::VM, &vm_ref).expect("system_ref checked the row");
        let Some(action) = plan(requested, PowerState::of(row))? else {
            return Ok(MethodOutput::returning(RC_OK));
        };
        (vm_ref, action, row.str(vm::NAME_LABEL).to_owned())
    };
    let spec = JobSpec {
        label: format!("Async.VM.{}", action.op()),
        description: format!("{CS}.RequestStateChange({requested}) of {name} ({uuid}) by CIM user {user}"),
        method: "RequestStateChange",
        owner: Owner::Vm(vm_ref.clone()),
        affects: Some(vm_ref.clone()),
    };
    let precheck = {
        let data = model.db.read();
        lifecycle::check_operation(&data, &vm_ref, action.op(), &model.known).and_then(|_| match action {
            Action::Start => lifecycle::check_boot_constraints(data.row(class::VM, &vm_ref).expect("checked"), &vm_ref),
            _ => Ok(()),
        })
    };
    if let Err(e) = precheck {
        let job = jobs::failed(ctx, &spec, &e);
        return Ok(jobs::with_job(MethodOutput::returning(return_code(&e)), job));
    }
    if action.long() {
        let job = jobs::start(ctx, spec, move |model, task| action.run(model, Some(task), &vm_ref).map(|_| None))?;
        return Ok(MethodOutput::returning(RC_JOB_STARTED).with_out("Job", job));
    }
    match action.run(model, None, &vm_ref) {
        Ok(()) => Ok(MethodOutput::returning(RC_OK)),
        Err(e) => {
            let job = jobs::failed(ctx, &spec, &e);
            Ok(jobs::with_job(MethodOutput::returning(return_code(&e)), job))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_model_operations() {
        use PowerState::*;
        assert_eq!(plan(2, Halted).unwrap(), Some(Action::Start));
        assert_eq!(plan(2, Paused).unwrap(), Some(Action::Unpause));
        assert_eq!(plan(2, Suspended).unwrap(), Some(Action::Resume));
        assert_eq!(plan(2, Running).unwrap(), None);
        assert_eq!(plan(3, Halted).unwrap(), None);
        assert_eq!(plan(4, Running).unwrap(), Some(Action::CleanShutdown));
        assert_eq!(plan(9, Halted).unwrap(), Some(Action::Pause));
        assert_eq!(plan(11, Paused).unwrap(), Some(Action::HardReboot));
        let e = plan(7, Running).unwrap_err();
        assert!(e.description.contains("RequestedState 7"), "{e}");
        assert!(Action::Start.long() && Action::Suspend.long() && !Action::Pause.long() && !Action::HardShutdown.long());
    }

    #[test]
    fn model_errors_map_to_return_codes() {
        let e = |c: &str| ApiError::new(c, Vec::<String>::new());
        assert_eq!(return_code(&e(codes::VM_BAD_POWER_STATE)), RC_INVALID_TRANSITION);
        assert_eq!(return_code(&e(codes::OTHER_OPERATION_IN_PROGRESS)), RC_BUSY);
        assert_eq!(return_code(&e(codes::HOST_NOT_ENOUGH_FREE_MEMORY)), RC_FAILED);
    }
}
