//! The associations of the profiles, in DMTF direction, computed from the model: a VM's
//! (SystemDevice, SettingsDefineState, VirtualSystemSettingDataComponent, ElementSettingData,
//! HostedDependency with the host as Antecedent, ServiceAffectsElement, ElementCapabilities,
//! ElementAllocatedFromPool, ResourceAllocationFromPool), the host's (HostedService,
//! HostedResourcePool, ElementCapabilities, SettingsDefineCapabilities) and a job's
//! (AffectedJobElement, OwningJobElement).

use wbem::cim::{CimValue, Instance, ObjectPath};
use xenapi::datamodel::{class, task, vm};
use xenapi::db::{Data, Row};

use crate::host::HostFacts;
use crate::jobs::{KEY_APPLIES_TO, KEY_METHOD, KEY_OWNER};
use crate::names::{self, *};
use crate::system::is_system;
use crate::{devices, pools, settings};

/// One association instance: its class, its two ends (role and path), other properties.
pub struct Link {
    pub class: &'static str,
    pub ends: [(&'static str, ObjectPath); 2],
    pub extra: Vec<(&'static str, CimValue)>,
}

impl Link {
    fn new(class: &'static str, a: (&'static str, ObjectPath), b: (&'static str, ObjectPath)) -> Link {
        Link { class, ends: [a, b], extra: Vec::new() }
    }

    fn with(mut self, name: &'static str, value: impl Into<CimValue>) -> Link {
        self.extra.push((name, value.into()));
        self
    }

    pub fn touches(&self, object: &ObjectPath) -> bool {
        self.ends.iter().any(|(_, p)| wbem::provider::same_instance(p, object))
    }

    pub fn into_instance(self) -> Instance {
        let mut i = Instance::new(self.class);
        for (role, path) in self.ends {
            i.set(role, path);
        }
        for (name, value) in self.extra {
            i.set(name, value);
        }
        i
    }
}

/// Which association classes to produce.
pub type Want<'a> = &'a dyn Fn(&str) -> bool;

/// The associations of one VM record (a template's or snapshot's: only its settings).
pub fn vm_links(data: &Data, f: &HostFacts, row: &Row, want: Want) -> Vec<Link> {
    let uuid = row.str(vm::UUID);
    let mut out = Vec::new();
    let vssd = names::vssd_path(uuid);
    let rasds = settings::rasd_devs(data, row);
    if want(VSSD_COMPONENT) {
        for d in &rasds {
            out.push(Link::new(VSSD_COMPONENT, ("GroupComponent", vssd.clone()), ("PartComponent", names::rasd_path(uuid, d))));
        }
        if settings::console_instance(data, row).is_some() {
            out.push(Link::new(VSSD_COMPONENT, ("GroupComponent", vssd.clone()), ("PartComponent", names::console_rasd_path(uuid))));
        }
    }
    if want(ALLOCATION_FROM_POOL) {
        for d in &rasds {
            if let Some(p) = settings::pool_of(data, row, d) {
                out.push(Link::new(ALLOCATION_FROM_POOL, ("Antecedent", names::pool_path(&p)), ("Dependent", names::rasd_path(uuid, d))));
            }
        }
    }
    if !is_system(row) {
        return out;
    }
    let cs = names::vm_path(uuid);
    let devs = devices::device_devs(data, row);
    // A processor device belongs to the one processor setting; the others match by suffix.
    let setting_of = |d: &Dev| if let Dev::Proc(_) = d { Dev::Proc(None) } else { d.clone() };
    if want(SYSTEM_DEVICE) {
        for d in &devs {
            out.push(Link::new(SYSTEM_DEVICE, ("GroupComponent", cs.clone()), ("PartComponent", names::device_path(uuid, d))));
        }
    }
    for assoc in [SETTINGS_DEFINE_STATE, ELEMENT_SETTING_DATA] {
        if !want(assoc) {
            continue;
        }
        let flags = |l: Link| {
            if assoc == ELEMENT_SETTING_DATA {
                l.with("IsDefault", 1u16).with("IsCurrent", 1u16).with("IsNext", 1u16)
            } else {
                l
            }
        };
        out.push(flags(Link::new(assoc, ("ManagedElement", cs.clone()), ("SettingData", vssd.clone()))));
        for d in &devs {
            out.push(flags(Link::new(
                assoc,
                ("ManagedElement", names::device_path(uuid, d)),
                ("SettingData", names::rasd_path(uuid, &setting_of(d))),
            )));
        }
    }
    if want(HOSTED_DEPENDENCY) {
        out.push(Link::new(HOSTED_DEPENDENCY, ("Antecedent", names::host_path(&f.name)), ("Dependent", cs.clone())));
    }
    if want(SERVICE_AFFECTS) {
        out.push(
            Link::new(SERVICE_AFFECTS, ("AffectedElement", cs.clone()), ("AffectingElement", names::vsms_path(&f.name)))
                .with("ElementEffects", vec![5u16]),
        );
    }
    if want(ELEMENT_CAPABILITIES) {
        out.push(Link::new(ELEMENT_CAPABILITIES, ("ManagedElement", cs.clone()), ("Capabilities", names::elec_path(uuid))));
    }
    if want(ALLOCATED_FROM_POOL) {
        for d in &devs {
            if let Some(p) = settings::pool_of(data, row, &setting_of(d)) {
                out.push(Link::new(ALLOCATED_FROM_POOL, ("Antecedent", names::pool_path(&p)), ("Dependent", names::device_path(uuid, d))));
            }
        }
    }
    out
}

/// The associations of the host, its service, its pools and their capabilities.
pub fn host_links(data: &Data, f: &HostFacts, want: Want) -> Vec<Link> {
    let host = names::host_path(&f.name);
    let vsms = names::vsms_path(&f.name);
    let mut out = Vec::new();
    if want(HOSTED_SERVICE) {
        out.push(Link::new(HOSTED_SERVICE, ("Antecedent", host.clone()), ("Dependent", vsms.clone())));
    }
    let pools = pools::all(data);
    if want(HOSTED_POOL) {
        for p in &pools {
            out.push(Link::new(HOSTED_POOL, ("GroupComponent", host.clone()), ("PartComponent", names::pool_path(p))));
        }
    }
    if want(ELEMENT_CAPABILITIES) {
        out.push(Link::new(ELEMENT_CAPABILITIES, ("ManagedElement", host.clone()), ("Capabilities", names::vsmc_path())));
        out.push(Link::new(ELEMENT_CAPABILITIES, ("ManagedElement", vsms), ("Capabilities", names::vsmc_path())));
        for p in &pools {
            out.push(Link::new(ELEMENT_CAPABILITIES, ("ManagedElement", names::pool_path(p)), ("Capabilities", names::alloc_caps_path(p))));
        }
    }
    if want(SETTINGS_DEFINE_CAPS) {
        for p in &pools {
            for t in Template::ALL {
                let (role, range) = t.role_and_range();
                out.push(
                    Link::new(
                        SETTINGS_DEFINE_CAPS,
                        ("GroupComponent", names::alloc_caps_path(p)),
                        ("PartComponent", names::template_path(p, t)),
                    )
                    .with("PropertyPolicy", 0u16)
                    .with("ValueRole", role)
                    .with("ValueRange", range),
                );
            }
        }
    }
    out
}

/// The associations of a job: the VM it acts on and whose method started it.
pub fn job_links(data: &Data, f: &HostFacts, row: &Row, want: Want) -> Vec<Link> {
    let job = names::job_path(row.str(task::UUID));
    let vm_row = row.map_get(task::OTHER_CONFIG, KEY_APPLIES_TO).and_then(|r| data.row(class::VM, r)).filter(|r| is_system(r));
    let method = row.map_get(task::OTHER_CONFIG, KEY_METHOD);
    let mut out = Vec::new();
    if let (true, Some(v)) = (want(AFFECTED_JOB), vm_row) {
        let link = Link::new(AFFECTED_JOB, ("AffectedElement", names::vm_path(v.str(vm::UUID))), ("AffectingElement", job.clone()));
        out.push(match method {
            Some("DefineSystem") => link.with("ElementEffects", vec![5u16]),
            Some(m) => link.with("ElementEffects", vec![1u16]).with("OtherElementEffectsDescriptions", vec![m]),
            None => link.with("ElementEffects", vec![0u16]),
        });
    }
    if want(OWNING_JOB) {
        let owner = match row.map_get(task::OTHER_CONFIG, KEY_OWNER) {
            Some("vsms") => Some(names::vsms_path(&f.name)),
            Some("vm") => vm_row.map(|v| names::vm_path(v.str(vm::UUID))),
            _ => None,
        };
        if let Some(owner) = owner {
            out.push(Link::new(OWNING_JOB, ("OwningElement", owner), ("OwnedElement", job)));
        }
    }
    out
}

/// The jobs that name a VM ref as the VM they act on.
pub fn jobs_of_vm<'a>(data: &'a Data, vm_ref: &'a str) -> impl Iterator<Item = &'a Row> + 'a {
    data.rows(class::task).map(|(_, r)| r).filter(move |r| r.map_get(task::OTHER_CONFIG, KEY_APPLIES_TO) == Some(vm_ref))
}
