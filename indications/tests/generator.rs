//! The generator against the model's registry: every commit is diffed against the registry as
//! that commit left it, however far behind the thread that sends the indications is.

use std::sync::Arc;

use indications::engine::{changes, Change, Family, Lifecycle, ModelView, SystemView};
use wbem::cim::{CimValue, Instance};
use xenapi::datamodel::{class, task, vm};
use xenapi::db::{default_fields, Data, Db};
use xenapi::store::Store;
use xenapi::value::Value;

/// VMs and tasks as two small CIM instances: the VM's power state and the task's status.
struct View;

impl ModelView for View {
    fn system(&self, data: &Data, vm_ref: &str) -> Option<SystemView> {
        let row = data.row(class::VM, vm_ref)?;
        let state: u16 = if row.str(vm::POWER_STATE) == "Running" { 2 } else { 3 };
        Some(SystemView { system: Instance::new("Xen_ComputerSystem").with("Name", vm_ref).with("EnabledState", state), settings: vec![] })
    }

    fn job(&self, data: &Data, task_ref: &str) -> Option<Instance> {
        let row = data.row(class::task, task_ref)?;
        let state: u16 = if row.str(task::STATUS) == "success" { 7 } else { 4 };
        Some(Instance::new("Xen_ConcreteJob").with("InstanceID", task_ref).with("JobState", state))
    }
}

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("xencim.db")).unwrap();
    (dir, Db::open(store).unwrap())
}

fn state(i: &Instance, name: &str) -> i128 {
    i.value(name).and_then(CimValue::as_integer).unwrap()
}

fn summary(c: &Change) -> (Family, Lifecycle, i128, Option<i128>) {
    let name = if c.family == Family::Job { "JobState" } else { "EnabledState" };
    (c.family, c.kind, state(&c.source, name), c.previous.as_ref().map(|p| state(p, name)))
}

#[test]
fn a_receiver_behind_the_commits_still_gets_every_state() {
    let (_dir, db) = db();
    let stream = changes(&db, Arc::new(View));
    // What an Async.VM.start does, all committed before the receiver looks (a loaded machine):
    // a halted VM, a pending task, the VM running, the task finished.
    let mut f = default_fields(class::VM);
    f[vm::POWER_STATE.index()] = Value::str("Halted");
    let vm_ref = db.write(|tx| Ok(tx.insert(class::VM, f))).unwrap();
    let mut f = default_fields(class::task);
    f[task::STATUS.index()] = Value::str("pending");
    let task_ref = db.write(|tx| Ok(tx.insert(class::task, f))).unwrap();
    db.write(|tx| tx.set(class::VM, &vm_ref, vm::POWER_STATE, Value::str("Running"))).unwrap();
    db.write(|tx| tx.set(class::task, &task_ref, task::STATUS, Value::str("success"))).unwrap();
    db.write(|tx| tx.remove(class::task, &task_ref).map(|_| ())).unwrap();

    let got: Vec<Vec<_>> = stream.try_iter().map(|batch| batch.iter().map(summary).collect()).collect();
    assert_eq!(
        got,
        vec![
            vec![(Family::System, Lifecycle::Created, 3, None)],
            vec![(Family::Job, Lifecycle::Created, 4, None)],
            vec![(Family::System, Lifecycle::Modified, 2, Some(3))],
            vec![(Family::Job, Lifecycle::Modified, 7, Some(4))],
            vec![(Family::Job, Lifecycle::Deleted, 7, None)],
        ]
    );
}

#[test]
fn what_existed_before_is_the_baseline() {
    let (_dir, db) = db();
    let vm_ref = db.write(|tx| Ok(tx.insert(class::VM, default_fields(class::VM)))).unwrap();
    let stream = changes(&db, Arc::new(View));
    db.write(|tx| tx.set(class::VM, &vm_ref, vm::NAME_LABEL, Value::str("renamed"))).unwrap();
    db.write(|tx| tx.set(class::VM, &vm_ref, vm::POWER_STATE, Value::str("Running"))).unwrap();
    let got: Vec<Vec<_>> = stream.try_iter().map(|batch| batch.iter().map(summary).collect()).collect();
    // No Created for the VM that was there; the rename changes nothing this view shows.
    assert_eq!(got, vec![vec![(Family::System, Lifecycle::Modified, 2, Some(3))]]);
}
