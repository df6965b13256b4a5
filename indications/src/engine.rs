//! Turns the model's committed changes into lifecycle indications. For every VM or task a commit
//! touches, the generator computes the CIM instances the providers would serve right after that
//! commit (it observes commits in order, [`changes`]) and compares them with the ones it computed
//! last time: new → Created, gone → Deleted, different → Modified (with PreviousInstance). Disks and network ports are found through their VBD / VIF / VDI.
//! Comparing what a client would read, rather than translating field changes, keeps
//! SourceInstance identical to GetInstance and makes guest-initiated changes (the hypervisor's
//! events, applied as model commits) look like API-driven ones.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

use wbem::cim::{names_equal, CimDateTime, CimValue, Instance};
use xenapi::datamodel::{class, vbd, vdi, vif};
use xenapi::db::{Commit, Data, Db};
use xenapi::model::Model;
use xenapi::value::Value;

use crate::filter::SOURCE_NAMESPACE;
use crate::subscriptions::Subscriptions;

/// The CIM instances a model object is seen as, built by the providers.
pub trait ModelView: Send + Sync + 'static {
    /// A VM's Xen_ComputerSystem and its resource allocation setting data; `None` when the VM
    /// does not exist or is not a virtual system (a template, a snapshot).
    fn system(&self, data: &Data, vm_ref: &str) -> Option<SystemView>;
    /// A task's Xen_ConcreteJob; `None` when the task does not exist.
    fn job(&self, data: &Data, task_ref: &str) -> Option<Instance>;
}

pub struct SystemView {
    pub system: Instance,
    pub settings: Vec<Instance>,
}

/// Makes provider instances look like GetInstance's (the dispatcher's shaping).
pub type Shaper = Arc<dyn Fn(Instance) -> Instance + Send + Sync>;

/// Properties that change with the clock alone: not a modification.
const VOLATILE: [&str; 2] = ["OnTimeInMilliseconds", "ElapsedTime"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    System,
    Settings,
    Job,
}

impl Family {
    fn class(self, kind: Lifecycle) -> &'static str {
        match (self, kind) {
            (Family::System, Lifecycle::Created) => "Xen_ComputerSystemCreatedIndication",
            (Family::System, Lifecycle::Deleted) => "Xen_ComputerSystemDeletedIndication",
            (Family::System, Lifecycle::Modified) => "Xen_ComputerSystemModifiedIndication",
            (Family::Settings, Lifecycle::Created) => "Xen_ResourceAllocationSettingDataCreatedIndication",
            (Family::Settings, Lifecycle::Deleted) => "Xen_ResourceAllocationSettingDataDeletedIndication",
            (Family::Settings, Lifecycle::Modified) => "Xen_ResourceAllocationSettingDataModifiedIndication",
            (Family::Job, Lifecycle::Created) => "Xen_ConcreteJobCreatedIndication",
            (Family::Job, Lifecycle::Deleted) => "Xen_ConcreteJobDeletedIndication",
            (Family::Job, Lifecycle::Modified) => "Xen_ConcreteJobModifiedIndication",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lifecycle {
    Created,
    Deleted,
    Modified,
}

/// One change as an indication is about to describe it.
#[derive(Debug, Clone)]
pub struct Change {
    pub family: Family,
    pub kind: Lifecycle,
    pub source: Instance,
    pub previous: Option<Instance>,
}

fn same(a: &Instance, b: &Instance) -> bool {
    if a.properties.len() != b.properties.len() || !names_equal(&a.class_name, &b.class_name) {
        return false;
    }
    a.properties.iter().all(|p| VOLATILE.iter().any(|v| names_equal(v, &p.name)) || b.value(&p.name) == p.value.as_ref())
}

fn id_of(i: &Instance) -> String {
    i.path.as_ref().map(|p| p.local().to_wbem_uri()).unwrap_or_else(|| i.class_name.clone())
}

#[derive(Default)]
struct CachedVm {
    system: Option<Instance>,
    settings: BTreeMap<String, Instance>,
}

/// The last seen CIM view of every VM and task, and the diff against the current one.
pub struct Generator {
    view: Arc<dyn ModelView>,
    vms: HashMap<String, CachedVm>,
    jobs: HashMap<String, Instance>,
}

fn diff(family: Family, before: Option<&Instance>, after: Option<&Instance>, out: &mut Vec<Change>) {
    match (before, after) {
        (None, Some(a)) => out.push(Change { family, kind: Lifecycle::Created, source: a.clone(), previous: None }),
        (Some(b), None) => out.push(Change { family, kind: Lifecycle::Deleted, source: b.clone(), previous: None }),
        (Some(b), Some(a)) if !same(b, a) => {
            out.push(Change { family, kind: Lifecycle::Modified, source: a.clone(), previous: Some(b.clone()) })
        }
        _ => {}
    }
}

fn field_str(fields: &Option<Arc<Vec<Value>>>, f: xenapi::datamodel::FieldId) -> Option<String> {
    fields.as_ref().and_then(|v| v.get(f.index())).and_then(|v| v.as_str()).map(str::to_owned)
}

impl Generator {
    pub fn new(view: Arc<dyn ModelView>) -> Generator {
        Generator { view, vms: HashMap::new(), jobs: HashMap::new() }
    }

    /// Takes the current view of every VM and task as the baseline (no indications).
    pub fn prime(&mut self, data: &Data) {
        let vms: Vec<String> = data.rows(class::VM).map(|(r, _)| r.clone()).collect();
        for r in vms {
            let mut sink = Vec::new();
            self.refresh_vm(data, &r, &mut sink);
        }
        let tasks: Vec<String> = data.rows(class::task).map(|(r, _)| r.clone()).collect();
        for r in tasks {
            let mut sink = Vec::new();
            self.refresh_job(data, &r, &mut sink);
        }
    }

    /// The VMs and tasks a commit touches.
    pub fn affected(data: &Data, commit: &Commit) -> (Vec<String>, Vec<String>) {
        let mut vms = Vec::new();
        let mut tasks = Vec::new();
        let mut seen = HashSet::new();
        let mut add = |vms: &mut Vec<String>, r: String| {
            if !r.is_empty() && r != "OpaqueRef:NULL" && seen.insert(r.clone()) {
                vms.push(r);
            }
        };
        for c in &commit.changes {
            let vm_field = |f| [field_str(&c.before, f), field_str(&c.after, f)];
            match c.class {
                k if k == class::VM => add(&mut vms, c.reference.clone()),
                k if k == class::VBD => vm_field(vbd::VM).into_iter().flatten().for_each(|r| add(&mut vms, r)),
                k if k == class::VIF => vm_field(vif::VM).into_iter().flatten().for_each(|r| add(&mut vms, r)),
                k if k == class::VDI => {
                    let vbds: Vec<String> = data
                        .row(class::VDI, &c.reference)
                        .map(|row| row.list(vdi::VBDS).iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default();
                    for b in vbds {
                        if let Some(row) = data.row(class::VBD, &b) {
                            add(&mut vms, row.str(vbd::VM).to_owned());
                        }
                    }
                }
                k if k == class::task => tasks.push(c.reference.clone()),
                _ => {}
            }
        }
        (vms, tasks)
    }

    pub fn refresh_vm(&mut self, data: &Data, vm_ref: &str, out: &mut Vec<Change>) {
        let now = self.view.system(data, vm_ref);
        let cached = self.vms.remove(vm_ref).unwrap_or_default();
        diff(Family::System, cached.system.as_ref(), now.as_ref().map(|v| &v.system), out);
        let mut settings = BTreeMap::new();
        if let Some(v) = &now {
            for s in &v.settings {
                settings.insert(id_of(s), s.clone());
            }
        }
        // Settings of a VM that went away are deleted after the VM's own indication.
        for (id, s) in &settings {
            diff(Family::Settings, cached.settings.get(id), Some(s), out);
        }
        for (id, s) in &cached.settings {
            if !settings.contains_key(id) {
                diff(Family::Settings, Some(s), None, out);
            }
        }
        if let Some(v) = now {
            self.vms.insert(vm_ref.to_string(), CachedVm { system: Some(v.system), settings });
        }
    }

    pub fn refresh_job(&mut self, data: &Data, task_ref: &str, out: &mut Vec<Change>) {
        let now = self.view.job(data, task_ref);
        let before = self.jobs.remove(task_ref);
        diff(Family::Job, before.as_ref(), now.as_ref(), out);
        if let Some(n) = now {
            self.jobs.insert(task_ref.to_string(), n);
        }
    }

    /// The changes one commit made, as the CIM view sees them.
    pub fn commit(&mut self, data: &Data, commit: &Commit) -> Vec<Change> {
        let (vms, tasks) = Generator::affected(data, commit);
        let mut out = Vec::new();
        for r in vms {
            self.refresh_vm(data, &r, &mut out);
        }
        for r in tasks {
            self.refresh_job(data, &r, &mut out);
        }
        out
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The indication instance for a change (IndicationIdentifier unique for this daemon run).
pub fn indication(change: &Change, boot: &str, shape: &Shaper) -> Instance {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let source = shape(change.source.clone());
    let mut i = Instance::new(change.family.class(change.kind))
        .with("IndicationIdentifier", format!("xencim:{boot}:{n}"))
        .with("IndicationTime", CimDateTime::now())
        .with("PerceivedSeverity", 2u16);
    if let Some(p) = &source.path {
        i.set("SourceInstanceModelPath", p.to_wbem_uri());
    }
    i.set("SourceInstance", CimValue::Instance(Box::new(source)));
    if let Some(prev) = &change.previous {
        i.set("PreviousInstance", CimValue::Instance(Box::new(shape(prev.clone()))));
    }
    i
}

/// The changes of every commit from now on, as the CIM view sees them, one batch per commit that
/// changed something, in commit order. The generator observes the commits ([`Db::observe`]):
/// it diffs each against the registry as that commit left it, so however far behind the
/// receiver is, a state that a later commit replaced is still reported (a task created and
/// finished before the receiver got to it is Created pending, then Modified to its end, not
/// Created finished and nothing more).
pub fn changes(db: &Db, view: Arc<dyn ModelView>) -> Receiver<Vec<Change>> {
    let (tx, rx) = channel();
    db.observe(move |data| {
        let mut generator = Generator::new(view);
        generator.prime(data);
        let mut receiving = true;
        Box::new(move |data: &Data, commit: &Commit| {
            if !receiving {
                return;
            }
            let changes = generator.commit(data, commit);
            if !changes.is_empty() && tx.send(changes).is_err() {
                receiving = false;
            }
        })
    });
    rx
}

/// Generates indications from the model's commits and offers them to the subscriptions, on a
/// thread of its own.
pub fn start(model: Arc<Model>, view: Arc<dyn ModelView>, subscriptions: Arc<Subscriptions>, shape: Shaper) -> std::io::Result<()> {
    let changes = changes(&model.db, view);
    let boot = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    std::thread::Builder::new().name("indications".into()).spawn(move || {
        while let Ok(batch) = changes.recv() {
            if !subscriptions.any_enabled() {
                continue;
            }
            for c in &batch {
                let i = indication(c, &boot, &shape);
                subscriptions.deliver(SOURCE_NAMESPACE, &i);
            }
        }
        tracing::info!("model commit stream closed; indication generator stopped");
    })?;
    Ok(())
}
