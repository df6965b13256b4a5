//! What the model does when a domain changes on its own: a guest that powers off, reboots or
//! crashes becomes Halted or is started again, as its `actions_after_*` fields say.

use crate::datamodel::{class, vm};
use crate::db::Ref;
use crate::lifecycle::{record_stopped, PowerState};
use crate::model::Model;
use crate::value::Value;
use hypervisor::{DomainEvent, ShutdownReason};
use std::sync::Arc;

pub fn spawn(model: &Arc<Model>) {
    let Some(events) = model.hv.take_events() else {
        tracing::warn!("the hypervisor's event channel was already taken; guest-initiated changes will not be seen");
        return;
    };
    let weak = Arc::downgrade(model);
    std::thread::Builder::new()
        .name("domain-events".into())
        .spawn(move || {
            while let Ok(event) = events.recv() {
                let Some(model) = weak.upgrade() else { break };
                handle(&model, event);
            }
        })
        .expect("spawn the domain event thread");
}

fn vm_by_uuid(model: &Model, uuid: uuid::Uuid) -> Option<Ref> {
    model.db.read().by_uuid(class::VM, &uuid.to_string()).cloned()
}

/// Whether the guest's exit means "start it again", per the VM's policy for that exit.
fn restarts(model: &Model, vm_ref: &str, reason: ShutdownReason) -> bool {
    let data = model.db.read();
    let Some(row) = data.row(class::VM, vm_ref) else { return false };
    match reason {
        ShutdownReason::Poweroff => row.str(vm::ACTIONS_AFTER_SHUTDOWN) == "restart",
        ShutdownReason::Reboot => row.str(vm::ACTIONS_AFTER_REBOOT) != "destroy",
        ShutdownReason::Crash => matches!(row.str(vm::ACTIONS_AFTER_CRASH), "restart" | "coredump_and_restart" | "rename_restart"),
    }
}

pub fn handle(model: &Model, event: DomainEvent) {
    match event {
        DomainEvent::Shutdown { uuid, domid, reason } => {
            let Some(vm_ref) = vm_by_uuid(model, uuid) else { return };
            tracing::info!(vm = %vm_ref, domid, ?reason, "the domain ended on its own");
            let stopped = model.write(|tx| {
                let row = tx.data().expect(class::VM, &vm_ref)?;
                // An operation of ours may have ended the domain already.
                if row.int(vm::DOMID) != domid as i64 || !matches!(PowerState::of(row), PowerState::Running | PowerState::Paused) {
                    return Ok(false);
                }
                record_stopped(tx, &vm_ref, PowerState::Halted)?;
                Ok(true)
            });
            if matches!(stopped, Ok(true)) && restarts(model, &vm_ref, reason) {
                if let Err(e) = crate::lifecycle::start(model, None, &vm_ref, false) {
                    tracing::error!(vm = %vm_ref, error = %e, "could not restart the VM after its guest exited");
                }
            }
        }
        DomainEvent::Paused { uuid, .. } | DomainEvent::Resumed { uuid, .. } => {
            let paused = matches!(event, DomainEvent::Paused { .. });
            let Some(vm_ref) = vm_by_uuid(model, uuid) else { return };
            let _ = model.write(|tx| {
                let row = tx.data().expect(class::VM, &vm_ref)?;
                let from = if paused { PowerState::Running } else { PowerState::Paused };
                if PowerState::of(row) == from {
                    tx.set(class::VM, &vm_ref, vm::POWER_STATE, Value::str(if paused { "Paused" } else { "Running" }))?;
                }
                Ok(())
            });
        }
    }
}
