//! The one `wbem::provider::Provider` that serves every class of the profiles in root/virt:
//! lookups go from the path to the model object ([`names::parse`]) and back to an instance; the
//! enumerations of classes that grow with the number of VMs produce their instances lazily, a
//! VM at a time under a short read lock.

use std::sync::Arc;

use wbem::cim::{CimError, CimStatus, Instance, KeyValue, ObjectPath};
use wbem::provider::{InstanceIter, MethodOutput, MethodParams, OpContext, ProvidedClass, Provider};
use xenapi::datamodel::{class, task};
use xenapi::db::{Data, Row};

use crate::assoc::{self, Link};
use crate::host::{self, HostFacts};
use crate::names::{self, *};
use crate::system::is_system;
use crate::{devices, jobs, pools, roles, settings, system, vsms, Ctx};

pub struct XenProvider {
    ctx: Arc<Ctx>,
}

impl XenProvider {
    pub fn new(ctx: Arc<Ctx>) -> XenProvider {
        XenProvider { ctx }
    }
}

/// Every class this provider serves.
pub fn served_classes() -> Vec<&'static str> {
    let mut c = vec![HOST, CS, VSMS, VSMC, ELEC, ALLOC_CAPS, VSSD, JOB, CONSOLE_RASD];
    for r in Res::ALL {
        c.extend([r.rasd_class(), r.device_class(), r.pool_class()]);
    }
    c.extend(ASSOCIATIONS);
    c
}

/// Builds the instance an object names; `None` when it does not exist.
fn instance_of(ctx: &Ctx, data: &Data, f: &HostFacts, obj: &Obj, path: &ObjectPath) -> Option<Instance> {
    let vm_row = |u: &str| data.by_uuid(class::VM, u).and_then(|r| data.row(class::VM, r));
    let system = |u: &str| vm_row(u).filter(|r| is_system(r));
    let key_is = |k: &str, v: &str| path.key(k).and_then(KeyValue::as_str).is_some_and(|x| x.eq_ignore_ascii_case(v));
    match obj {
        Obj::Host => key_is("Name", &f.name).then(|| host::host_instance(f)),
        Obj::Vsms => key_is("SystemName", &f.name).then(|| host::vsms_instance(f)),
        Obj::Vsmc => Some(host::vsmc_instance()),
        Obj::Vm(u) => system(u).map(|r| system::cs_instance(data, r)),
        Obj::Elec(u) => system(u).map(system::elec_instance),
        Obj::Vssd(u) => vm_row(u).map(|r| settings::vssd_instance(data, r)),
        Obj::Rasd(u, dev) => vm_row(u).and_then(|r| settings::rasd_instance(data, r, dev)),
        Obj::ConsoleRasd(u) => vm_row(u).and_then(|r| settings::console_instance(data, r)),
        Obj::Device(u, dev) => system(u).and_then(|r| devices::device_instance(data, r, dev)),
        Obj::Pool(p) => pools::pool_instance(ctx, data, f, p),
        Obj::AllocCaps(p) => pools::alloc_caps_instance(data, p),
        Obj::TemplateRasd(p, t) => pools::template_instance(data, f, p, *t),
        Obj::Job(u) => data
            .by_uuid(class::task, u)
            .and_then(|r| data.row(class::task, r))
            .map(|t| jobs::job_instance(data, t, ctx.model.config.task_retention)),
    }
}

/// Instances built VM by VM: the refs are listed at once, each VM is read when its turn comes
/// (a VM destroyed meanwhile is skipped).
fn per_vm<F>(ctx: &Arc<Ctx>, keep: fn(&Row) -> bool, build: F) -> InstanceIter
where
    F: Fn(&Data, &HostFacts, &Row) -> Vec<Instance> + Send + 'static,
{
    let (refs, f) = {
        let data = ctx.model.db.read();
        let refs: Vec<String> = data.rows(class::VM).filter(|(_, r)| keep(r)).map(|(r, _)| r.clone()).collect();
        (refs, host::facts(ctx, &data))
    };
    let ctx = ctx.clone();
    Box::new(
        refs.into_iter()
            .flat_map(move |r| {
                let data = ctx.model.db.read();
                data.row(class::VM, &r).map(|row| build(&data, &f, row)).unwrap_or_default()
            })
            .map(Ok),
    )
}

fn all_vms(_: &Row) -> bool {
    true
}

fn only_systems(row: &Row) -> bool {
    is_system(row)
}

fn links_iter(links: Vec<Link>) -> InstanceIter {
    Box::new(links.into_iter().map(|l| Ok(l.into_instance())))
}

impl XenProvider {
    fn enumerate(&self, class: &str) -> Result<InstanceIter, CimError> {
        let ctx = &self.ctx;
        let is = |c: &str| class.eq_ignore_ascii_case(c);
        let eager = |f: &dyn Fn(&Data, &HostFacts) -> Vec<Instance>| -> InstanceIter {
            let data = ctx.model.db.read();
            let facts = host::facts(ctx, &data);
            Box::new(f(&data, &facts).into_iter().map(Ok))
        };
        if is(HOST) {
            return Ok(eager(&|_, f| vec![host::host_instance(f)]));
        }
        if is(VSMS) {
            return Ok(eager(&|_, f| vec![host::vsms_instance(f)]));
        }
        if is(VSMC) {
            return Ok(eager(&|_, _| vec![host::vsmc_instance()]));
        }
        if is(CS) {
            return Ok(per_vm(ctx, only_systems, |d, _, r| vec![system::cs_instance(d, r)]));
        }
        if is(ELEC) {
            return Ok(per_vm(ctx, only_systems, |_, _, r| vec![system::elec_instance(r)]));
        }
        if is(VSSD) {
            return Ok(per_vm(ctx, all_vms, |d, _, r| vec![settings::vssd_instance(d, r)]));
        }
        if is(CONSOLE_RASD) {
            return Ok(per_vm(ctx, all_vms, |d, _, r| settings::console_instance(d, r).into_iter().collect()));
        }
        if is(ALLOC_CAPS) {
            return Ok(eager(&|d, _| pools::all(d).iter().filter_map(|p| pools::alloc_caps_instance(d, p)).collect()));
        }
        if is(JOB) {
            let retention = ctx.model.config.task_retention;
            return Ok(eager(&|d, _| d.rows(class::task).map(|(_, t)| jobs::job_instance(d, t, retention)).collect()));
        }
        if let Some(res) = Res::from_pool_class(class) {
            return Ok(eager(&|d, f| {
                pools::all(d).iter().filter(|p| p.res() == res).filter_map(|p| pools::pool_instance(ctx, d, f, p)).collect()
            }));
        }
        if let Some(res) = Res::from_rasd_class(class) {
            let vms = per_vm(ctx, all_vms, move |d, _, r| {
                settings::rasd_devs(d, r)
                    .iter()
                    .filter(|dev| dev.res() == res)
                    .filter_map(|dev| settings::rasd_instance(d, r, dev))
                    .collect()
            });
            let templates = eager(&|d, f| {
                pools::all(d)
                    .iter()
                    .filter(|p| p.res() == res)
                    .flat_map(|p| Template::ALL.into_iter().filter_map(move |t| pools::template_instance(d, f, p, t)))
                    .collect()
            });
            return Ok(Box::new(vms.chain(templates)));
        }
        if let Some(res) = Res::from_device_class(class) {
            return Ok(per_vm(ctx, only_systems, move |d, _, r| {
                devices::device_devs(d, r)
                    .iter()
                    .filter(|dev| dev.res() == res)
                    .filter_map(|dev| devices::device_instance(d, r, dev))
                    .collect()
            }));
        }
        if let Some(assoc) = ASSOCIATIONS.iter().find(|a| is(a)).copied() {
            let want = move |c: &str| c == assoc;
            let vms = per_vm(ctx, all_vms, move |d, f, r| assoc::vm_links(d, f, r, &want).into_iter().map(Link::into_instance).collect());
            let rest = {
                let data = ctx.model.db.read();
                let f = host::facts(ctx, &data);
                let mut links = assoc::host_links(&data, &f, &want);
                for (_, t) in data.rows(class::task) {
                    links.extend(assoc::job_links(&data, &f, t, &want));
                }
                links_iter(links)
            };
            return Ok(Box::new(vms.chain(rest)));
        }
        Err(CimError::invalid_class(format!("{class} is not served by the virtualization provider")))
    }

    fn references_of(&self, assoc_class: &str, object: &ObjectPath) -> Result<InstanceIter, CimError> {
        let ctx = &self.ctx;
        let Some(assoc) = ASSOCIATIONS.iter().find(|a| a.eq_ignore_ascii_case(assoc_class)).copied() else {
            return Ok(Box::new(std::iter::empty()));
        };
        let Some(obj) = names::parse(object) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let want = move |c: &str| c == assoc;
        let data = ctx.model.db.read();
        let f = host::facts(ctx, &data);
        let mut links = Vec::new();
        let one_vm = |u: &str| data.by_uuid(class::VM, u).cloned();
        match &obj {
            Obj::Vm(u) | Obj::Elec(u) | Obj::Vssd(u) | Obj::Rasd(u, _) | Obj::ConsoleRasd(u) | Obj::Device(u, _) => {
                if let Some(r) = one_vm(u) {
                    let row = data.row(class::VM, &r).expect("by_uuid row");
                    links.extend(assoc::vm_links(&data, &f, row, &want));
                    if matches!(obj, Obj::Vm(_)) && matches!(assoc, AFFECTED_JOB | OWNING_JOB) {
                        for t in assoc::jobs_of_vm(&data, &r) {
                            links.extend(assoc::job_links(&data, &f, t, &want));
                        }
                    }
                }
            }
            Obj::Job(u) => {
                if let Some(t) = data.by_uuid(class::task, u).and_then(|r| data.row(class::task, r)) {
                    links.extend(assoc::job_links(&data, &f, t, &want));
                }
            }
            _ => {
                links.extend(assoc::host_links(&data, &f, &want));
                let across_vms = match &obj {
                    Obj::Host => assoc == HOSTED_DEPENDENCY,
                    Obj::Vsms => assoc == SERVICE_AFFECTS,
                    Obj::Pool(_) => matches!(assoc, ALLOCATED_FROM_POOL | ALLOCATION_FROM_POOL),
                    _ => false,
                };
                drop(data);
                if across_vms {
                    let object = object.clone();
                    let near: Vec<Link> = links.into_iter().filter(|l| l.touches(&object)).collect();
                    let vms = per_vm(ctx, all_vms, move |d, f, r| {
                        assoc::vm_links(d, f, r, &want).into_iter().filter(|l| l.touches(&object)).map(Link::into_instance).collect()
                    });
                    return Ok(Box::new(links_iter(near).chain(vms)));
                }
                if matches!(obj, Obj::Vsms) && assoc == OWNING_JOB {
                    let data = ctx.model.db.read();
                    for (_, t) in data.rows(class::task).filter(|(_, t)| t.map_get(task::OTHER_CONFIG, jobs::KEY_OWNER) == Some("vsms")) {
                        links.extend(assoc::job_links(&data, &f, t, &want));
                    }
                }
            }
        }
        Ok(links_iter(links.into_iter().filter(|l| l.touches(object)).collect()))
    }
}

impl Provider for XenProvider {
    fn classes(&self) -> Vec<ProvidedClass> {
        served_classes().into_iter().map(|c| ProvidedClass::new(NS, c)).collect()
    }

    fn enumerate_instances(&self, _ctx: &OpContext, class: &str) -> Result<InstanceIter, CimError> {
        self.enumerate(class)
    }

    fn get_instance(&self, _ctx: &OpContext, path: &ObjectPath) -> Result<Instance, CimError> {
        let not_found = || CimError::not_found(format!("no instance {}", path.local()));
        if ASSOCIATIONS.iter().any(|a| a.eq_ignore_ascii_case(&path.class_name)) {
            // An association instance exists when its ends are associated.
            let (_, end) = path.keybindings.first().ok_or_else(not_found)?;
            let end = end.as_reference().ok_or_else(not_found)?;
            for i in self.references_of(&path.class_name, end)? {
                let i = i?;
                let keys_match = path.keybindings.iter().all(|(k, v)| {
                    matches!((i.value(k), v), (Some(wbem::cim::CimValue::Reference(a)), KeyValue::Reference(b)) if wbem::provider::same_instance(a, b))
                });
                if keys_match {
                    return Ok(i);
                }
            }
            return Err(not_found());
        }
        let obj = names::parse(path).ok_or_else(not_found)?;
        let data = self.ctx.model.db.read();
        let f = host::facts(&self.ctx, &data);
        instance_of(&self.ctx, &data, &f, &obj, path).ok_or_else(not_found)
    }

    fn references(&self, _ctx: &OpContext, assoc_class: &str, object: &ObjectPath, _role: Option<&str>) -> Result<InstanceIter, CimError> {
        self.references_of(assoc_class, object)
    }

    fn invoke_method(&self, ctx: &OpContext, target: &ObjectPath, method: &str, params: &MethodParams) -> Result<MethodOutput, CimError> {
        ctx.require(roles::required(&target.class_name, method))?;
        let not_found = || CimError::not_found(format!("no instance {}", target.local()));
        let unavailable = || CimError::new(CimStatus::MethodNotAvailable, format!("{}.{method} is not available", target.class_name));
        let obj = names::parse(target).ok_or_else(not_found)?;
        let requested = || params.get("RequestedState").and_then(|v| v.as_integer()).and_then(|n| u16::try_from(n).ok());
        match obj {
            Obj::Vm(u) if method.eq_ignore_ascii_case("RequestStateChange") => {
                system::request_state_change(&self.ctx, &ctx.principal.user, &u, requested())
            }
            Obj::Vsms => {
                let name = host::facts(&self.ctx, &self.ctx.model.db.read()).name;
                if !target.key("SystemName").and_then(KeyValue::as_str).is_some_and(|n| n.eq_ignore_ascii_case(&name)) {
                    return Err(not_found());
                }
                vsms::invoke(&self.ctx, ctx, method, params)
            }
            Obj::Job(u) if ["GetError", "RequestStateChange", "KillJob"].iter().any(|m| m.eq_ignore_ascii_case(method)) => {
                jobs::invoke(&self.ctx, &u, method, requested())
            }
            _ => Err(unavailable()),
        }
    }

    fn delete_instance(&self, ctx: &OpContext, path: &ObjectPath) -> Result<(), CimError> {
        match names::parse(path) {
            Some(Obj::Job(u)) => {
                ctx.require(roles::required(JOB, "RequestStateChange"))?;
                jobs::delete(&self.ctx, &u)
            }
            _ => Err(CimError::not_supported(format!(
                "{} cannot be deleted; use the methods of Xen_VirtualSystemManagementService",
                path.class_name
            ))),
        }
    }
}
