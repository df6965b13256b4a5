//! TEST FIXTURE: the provider of `Xen_TestElement` and `Xen_TestAssociation`
//! (`mof/test/xen_test.mof`), classes that exist only so that the WBEM door can be tested and
//! benchmarked with a chosen number of instances (`cim_test_instances` in the daemon's settings;
//! 0 leaves the classes out). They are not product classes and say so in their descriptions.
//!
//! Instance `n` (1..=N) has `InstanceID = "Xen:test:<n>"`; association instance `n` links element
//! `n` (Antecedent) to element `n+1` (Dependent), the last to the first. Instances are produced
//! lazily, so enumerating 10,000 of them never holds 10,000 in memory. `Text` can be changed
//! (ModifyInstance, SetProperty), instances created and deleted; changes live in memory only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::cim::{CimDateTime, CimError, CimValue, Instance, ObjectPath};
use crate::mof::{MofError, Repository};
use crate::provider::{InstanceIter, MethodOutput, MethodParams, OpContext, ProvidedClass, Provider};

/// The MOF of the test classes, compiled into `root/virt` by [`add_test_classes`].
pub const TEST_MOF: &str = include_str!("../../mof/test/xen_test.mof");
pub const TEST_NAMESPACE: &str = "root/virt";
pub const ELEMENT_CLASS: &str = "Xen_TestElement";
pub const ASSOCIATION_CLASS: &str = "Xen_TestAssociation";

/// Adds the test classes to a repository (into `root/virt`).
pub fn add_test_classes(repo: &mut Repository) -> Result<(), MofError> {
    repo.add_mof("mof/test/xen_test.mof", &format!("#pragma namespace (\"{TEST_NAMESPACE}\")\n{TEST_MOF}"))
}

#[derive(Default)]
struct Changes {
    text: HashMap<String, String>,
    state: HashMap<String, u16>,
    created: BTreeMap<String, Instance>,
    deleted: HashSet<String>,
}

struct Shared {
    count: u32,
    changes: RwLock<Changes>,
    created: CimDateTime,
}

/// Serves N test elements and their ring of associations.
pub struct TestProvider {
    shared: Arc<Shared>,
}

pub fn element_id(n: u32) -> String {
    format!("Xen:test:{n}")
}

pub fn element_path(n: u32) -> ObjectPath {
    ObjectPath::new(Some(TEST_NAMESPACE), ELEMENT_CLASS).with_key("InstanceID", element_id(n))
}

fn index_of(id: &str) -> Option<u32> {
    id.strip_prefix("Xen:test:")?.parse().ok()
}

impl Shared {
    fn element(&self, n: u32) -> Option<Instance> {
        let id = element_id(n);
        let changes = self.changes.read();
        if n == 0 || n > self.count || changes.deleted.contains(&id) {
            return None;
        }
        let text = changes.text.get(&id).cloned().unwrap_or_else(|| format!("test element {n}"));
        let state = changes.state.get(&id).copied().unwrap_or(if n.is_multiple_of(2) { 2 } else { 3 });
        drop(changes);
        let created = self.created;
        Some(
            Instance::new(ELEMENT_CLASS)
                .with("InstanceID", id.as_str())
                .with("Index", n)
                .with("Text", text)
                .with("State", state)
                .with("Tags", vec![if n.is_multiple_of(2) { "even" } else { "odd" }, "test"])
                .with("Ratio", f64::from(n) / 10.0)
                .with("Created", created)
                .with("Flag", n.is_multiple_of(2))
                .with("ElementName", format!("test element {n}"))
                .with("Caption", "test fixture")
                .with_path(element_path(n)),
        )
    }

    fn created(&self, id: &str) -> Option<Instance> {
        self.changes.read().created.get(id).cloned()
    }

    fn association(&self, from: u32) -> Option<Instance> {
        if self.count == 0 || from == 0 || from > self.count {
            return None;
        }
        let to = if from == self.count { 1 } else { from + 1 };
        let (a, d) = (element_path(from), element_path(to));
        let path =
            ObjectPath::new(Some(TEST_NAMESPACE), ASSOCIATION_CLASS).with_key("Antecedent", a.clone()).with_key("Dependent", d.clone());
        Some(Instance::new(ASSOCIATION_CLASS).with("Antecedent", a).with("Dependent", d).with_path(path))
    }
}

impl TestProvider {
    pub fn new(count: u32) -> TestProvider {
        let created = CimDateTime::parse("20240101120000.000000+000").expect("a valid timestamp");
        TestProvider { shared: Arc::new(Shared { count, changes: RwLock::new(Changes::default()), created }) }
    }

    fn id_of(path: &ObjectPath) -> Result<String, CimError> {
        path.key("InstanceID")
            .and_then(|k| k.as_str())
            .map(str::to_string)
            .ok_or_else(|| CimError::invalid_parameter("InstanceID is missing"))
    }

    fn lookup(&self, path: &ObjectPath) -> Result<Instance, CimError> {
        let id = Self::id_of(path)?;
        let found = match index_of(&id) {
            Some(n) => self.shared.element(n).or_else(|| self.shared.created(&id)),
            None => self.shared.created(&id),
        };
        found.ok_or_else(|| CimError::not_found(format!("no test element {id}")))
    }
}

impl Provider for TestProvider {
    fn classes(&self) -> Vec<ProvidedClass> {
        vec![ProvidedClass::new(TEST_NAMESPACE, ELEMENT_CLASS), ProvidedClass::new(TEST_NAMESPACE, ASSOCIATION_CLASS)]
    }

    fn enumerate_instances(&self, _ctx: &OpContext, class: &str) -> Result<InstanceIter, CimError> {
        let shared = self.shared.clone();
        if class.eq_ignore_ascii_case(ASSOCIATION_CLASS) {
            return Ok(Box::new((1..=shared.count).filter_map(move |n| shared.association(n)).map(Ok)));
        }
        let created: Vec<Instance> = shared.changes.read().created.values().cloned().collect();
        Ok(Box::new((1..=shared.count).filter_map(move |n| shared.element(n)).chain(created).map(Ok)))
    }

    fn get_instance(&self, _ctx: &OpContext, path: &ObjectPath) -> Result<Instance, CimError> {
        if path.class_name.eq_ignore_ascii_case(ASSOCIATION_CLASS) {
            let end =
                |name: &str| path.key(name).and_then(|k| k.as_reference()).and_then(|p| p.key("InstanceID")?.as_str().and_then(index_of));
            let found = end("Antecedent").and_then(|a| self.shared.association(a)).filter(|i| {
                let d =
                    i.value("Dependent").and_then(CimValue::as_reference).and_then(|p| p.key("InstanceID")?.as_str().and_then(index_of));
                d.is_some() && d == end("Dependent")
            });
            return found.ok_or_else(|| CimError::not_found(format!("no association {}", path.local())));
        }
        self.lookup(path)
    }

    fn references(&self, _ctx: &OpContext, _assoc_class: &str, object: &ObjectPath, _role: Option<&str>) -> Result<InstanceIter, CimError> {
        let n = object.key("InstanceID").and_then(|k| k.as_str()).and_then(index_of).unwrap_or(0);
        let count = self.shared.count;
        if n == 0 || n > count {
            return Ok(Box::new(std::iter::empty()));
        }
        let previous = if n == 1 { count } else { n - 1 };
        let mut list: Vec<u32> = vec![n];
        if previous != n {
            list.push(previous);
        }
        let shared = self.shared.clone();
        Ok(Box::new(list.into_iter().filter_map(move |f| shared.association(f)).map(Ok)))
    }

    fn invoke_method(&self, ctx: &OpContext, target: &ObjectPath, method: &str, params: &MethodParams) -> Result<MethodOutput, CimError> {
        self.lookup(target)?;
        if method.eq_ignore_ascii_case("Echo") {
            let text = params.get("Text").and_then(CimValue::as_str).unwrap_or_default().to_string();
            let repeat = params.get("Repeat").and_then(CimValue::as_integer).unwrap_or(1);
            if repeat > 1000 {
                return Ok(MethodOutput::returning(1u32));
            }
            return Ok(MethodOutput::returning(0u32).with_out("Echoed", text.repeat(repeat.max(0) as usize)));
        }
        if method.eq_ignore_ascii_case("RequestStateChange") {
            let state = params.get("RequestedState").and_then(CimValue::as_integer);
            return match state {
                Some(s @ (2 | 3)) => {
                    self.shared.changes.write().state.insert(Self::id_of(target)?, s as u16);
                    tracing::debug!(user = %ctx.principal.user, target = %target, state = s, "test element state changed");
                    Ok(MethodOutput::returning(0u32))
                }
                _ => Ok(MethodOutput::returning(2u32)),
            };
        }
        Err(CimError::new(crate::cim::CimStatus::MethodNotAvailable, format!("{method} is not implemented by the test provider")))
    }

    fn create_instance(&self, _ctx: &OpContext, instance: Instance) -> Result<ObjectPath, CimError> {
        if !instance.class_name.eq_ignore_ascii_case(ELEMENT_CLASS) {
            return Err(CimError::not_supported("test associations cannot be created"));
        }
        let id = instance
            .value("InstanceID")
            .and_then(CimValue::as_str)
            .map(str::to_string)
            .ok_or_else(|| CimError::invalid_parameter("a new Xen_TestElement needs an InstanceID"))?;
        let exists = index_of(&id).and_then(|n| self.shared.element(n)).is_some() || self.shared.created(&id).is_some();
        if exists {
            return Err(CimError::new(crate::cim::CimStatus::AlreadyExists, format!("{id} exists")));
        }
        let path = ObjectPath::new(Some(TEST_NAMESPACE), ELEMENT_CLASS).with_key("InstanceID", id.as_str());
        let mut stored = instance;
        stored.path = Some(path.clone());
        self.shared.changes.write().created.insert(id, stored);
        Ok(path)
    }

    fn modify_instance(&self, _ctx: &OpContext, instance: Instance, property_list: Option<&[String]>) -> Result<(), CimError> {
        let path = instance.path.clone().ok_or_else(|| CimError::invalid_parameter("the instance has no path"))?;
        if path.class_name.eq_ignore_ascii_case(ASSOCIATION_CLASS) {
            return Err(CimError::not_supported("test associations cannot be modified"));
        }
        let current = self.lookup(&path)?;
        let id = Self::id_of(&path)?;
        for p in &instance.properties {
            let wanted = property_list.is_none_or(|l| l.iter().any(|n| n.eq_ignore_ascii_case(&p.name)));
            if !wanted {
                continue;
            }
            if !p.name.eq_ignore_ascii_case("Text") {
                // Clients send whole instances back; only a changed read-only value is an error.
                if current.value(&p.name) == p.value.as_ref() {
                    continue;
                }
                return Err(CimError::not_supported(format!("property {} of Xen_TestElement is read-only", p.name)));
            }
            let text = p.value.as_ref().and_then(CimValue::as_str).unwrap_or_default().to_string();
            let mut changes = self.shared.changes.write();
            match changes.created.get_mut(&id) {
                Some(created) => created.set("Text", text),
                None => {
                    changes.text.insert(id.clone(), text);
                }
            }
        }
        Ok(())
    }

    fn delete_instance(&self, _ctx: &OpContext, path: &ObjectPath) -> Result<(), CimError> {
        if path.class_name.eq_ignore_ascii_case(ASSOCIATION_CLASS) {
            return Err(CimError::not_supported("test associations cannot be deleted"));
        }
        self.lookup(path)?;
        let id = Self::id_of(path)?;
        let mut changes = self.shared.changes.write();
        if changes.created.remove(&id).is_none() {
            changes.deleted.insert(id);
        }
        Ok(())
    }
}
