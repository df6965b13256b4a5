//! The provider interface: what serves the instances, associations and methods of CIM classes.
//!
//! A [`Provider`] serves one or more classes, each in one namespace ([`Provider::classes`]). The
//! operation dispatcher (`crate::ops`) asks it for instances of exactly those classes and does
//! the rest itself: deep-inheritance fan-out over the providers of subclasses, PropertyList,
//! IncludeQualifiers, IncludeClassOrigin and LocalOnly filtering, the AssocClass / ResultClass /
//! Role / ResultRole filters of the association operations, query evaluation, pull enumeration
//! contexts, and typing of method parameters from the class's declaration. A provider therefore
//! returns whole instances of its class, with every property it knows, and need not know the
//! request options at all.
//!
//! Every method has a default: enumeration and the write operations answer
//! `CIM_ERR_NOT_SUPPORTED`; `get_instance`, `enumerate_instance_names` and `references` are
//! derived from `enumerate_instances`, which is enough for small classes. Providers of large
//! classes override `get_instance` (a direct lookup) and, for associations, `references` (only the
//! association instances that touch the given object).
//!
//! Providers may block (a store query, a hypervisor call): the HTTP door runs every operation on
//! tokio's blocking pool. Iterators they return may be held across requests by a pull enumeration
//! context, so they must own what they need (`'static`), and should produce instances lazily when
//! the class can be large: memory during a pull is then bounded by MaxObjectCount.

mod registry;

pub use registry::ProviderRegistry;

use std::sync::Arc;

use httpd::auth::{Principal, Role};

use crate::cim::{names_equal, CimError, CimValue, Instance, ObjectPath};
use crate::mof::Repository;

/// A lazily produced sequence of instances. An `Err` item ends the operation with that error.
pub type InstanceIter = Box<dyn Iterator<Item = Result<Instance, CimError>> + Send>;

/// A lazily produced sequence of instance paths.
pub type PathIter = Box<dyn Iterator<Item = Result<ObjectPath, CimError>> + Send>;

/// What a provider learns about the call it serves.
#[derive(Debug, Clone)]
pub struct OpContext {
    /// The authenticated caller. The dispatcher has already refused writes and method calls to
    /// read-only callers; a provider may refuse more (e.g. pool-admin only operations).
    pub principal: Principal,
    /// The canonical namespace of the request (`root/virt`, `root/interop`, `root/cimv2`).
    pub namespace: String,
    /// The class repository, for class definitions (key properties, method declarations).
    pub repository: Arc<Repository>,
}

impl OpContext {
    pub fn new(principal: Principal, namespace: impl Into<String>, repository: Arc<Repository>) -> OpContext {
        OpContext { principal, namespace: namespace.into(), repository }
    }

    /// `CIM_ERR_ACCESS_DENIED` unless the caller holds at least `role`.
    pub fn require(&self, role: Role) -> Result<(), CimError> {
        if self.principal.role.includes(role) {
            Ok(())
        } else {
            Err(CimError::access_denied(format!(
                "user {} ({}) may not do this; it needs {}",
                self.principal.user, self.principal.role, role
            )))
        }
    }

    /// The instance path of `instance` built from its class's keys, in the request's namespace.
    pub fn path_of(&self, instance: &Instance) -> Result<ObjectPath, CimError> {
        let class = self
            .repository
            .get_class(&self.namespace, &instance.class_name)
            .ok_or_else(|| CimError::invalid_class(format!("{} is not a class of {}", instance.class_name, self.namespace)))?;
        instance.path_for(class, Some(&self.namespace))
    }
}

/// One class a provider serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidedClass {
    pub namespace: String,
    pub class_name: String,
}

impl ProvidedClass {
    pub fn new(namespace: impl Into<String>, class_name: impl Into<String>) -> ProvidedClass {
        ProvidedClass { namespace: namespace.into(), class_name: class_name.into() }
    }
}

/// The result of an extrinsic method.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MethodOutput {
    /// The return value, typed as the method declares (the dispatcher converts when it can).
    pub return_value: Option<CimValue>,
    /// Output parameters by name; the dispatcher types them from the declaration and drops
    /// names the method does not declare as `Out`.
    pub out_params: Vec<(String, Option<CimValue>)>,
}

impl MethodOutput {
    pub fn returning(value: impl Into<CimValue>) -> MethodOutput {
        MethodOutput { return_value: Some(value.into()), out_params: Vec::new() }
    }

    pub fn with_out(mut self, name: impl Into<String>, value: impl Into<CimValue>) -> MethodOutput {
        self.out_params.push((name.into(), Some(value.into())));
        self
    }
}

/// The input parameters of a method call, typed from the method's declaration: each `In`
/// parameter the client sent, by its declared name (NULL as `None`). Embedded instances sent as
/// CIM-XML or MOF text arrive as [`CimValue::Instance`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MethodParams(pub Vec<(String, Option<CimValue>)>);

impl MethodParams {
    /// The value of a parameter; `None` when absent or NULL.
    pub fn get(&self, name: &str) -> Option<&CimValue> {
        self.0.iter().find(|(n, _)| names_equal(n, name)).and_then(|(_, v)| v.as_ref())
    }

    /// Whether the client sent the parameter at all (possibly NULL).
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| names_equal(n, name))
    }
}

fn not_supported(what: &str, class: &str) -> CimError {
    CimError::not_supported(format!("{what} is not supported for {class}"))
}

/// Serves the instances, associations and methods of some classes. See the module documentation
/// for the division of work with the dispatcher.
pub trait Provider: Send + Sync {
    /// The classes served: instances returned for one of them have exactly that class name.
    fn classes(&self) -> Vec<ProvidedClass>;

    /// Every instance of `class` (one of [`Provider::classes`] in `ctx.namespace`), each with its
    /// `path` set (namespace included) or with its key properties set so that the dispatcher can
    /// build the path from the class's keys.
    fn enumerate_instances(&self, ctx: &OpContext, class: &str) -> Result<InstanceIter, CimError> {
        let _ = ctx;
        Err(not_supported("enumerating instances", class))
    }

    /// The paths of every instance of `class`. The default enumerates instances and keeps paths.
    fn enumerate_instance_names(&self, ctx: &OpContext, class: &str) -> Result<PathIter, CimError> {
        let ctx2 = ctx.clone();
        let instances = self.enumerate_instances(ctx, class)?;
        Ok(Box::new(instances.map(move |i| {
            let i = i?;
            match i.path {
                Some(p) => Ok(p),
                None => ctx2.path_of(&i),
            }
        })))
    }

    /// The instance at `path` (its class is one of [`Provider::classes`]; keys were checked
    /// against the class by the dispatcher). `CIM_ERR_NOT_FOUND` when it does not exist. The
    /// default scans `enumerate_instances`.
    fn get_instance(&self, ctx: &OpContext, path: &ObjectPath) -> Result<Instance, CimError> {
        for item in self.enumerate_instances(ctx, &path.class_name)? {
            let mut i = item?;
            let p = match &i.path {
                Some(p) => p.clone(),
                None => ctx.path_of(&i)?,
            };
            if same_instance(&p, path) {
                i.path = Some(p);
                return Ok(i);
            }
        }
        Err(CimError::not_found(format!("no instance {}", path.local())))
    }

    /// Instances of the association class `assoc_class` (one of [`Provider::classes`]) that
    /// reference `object` — through the reference property `role` when given. The dispatcher
    /// re-checks the role, so an implementation may return a superset. The default scans
    /// `enumerate_instances`.
    fn references(&self, ctx: &OpContext, assoc_class: &str, object: &ObjectPath, role: Option<&str>) -> Result<InstanceIter, CimError> {
        let object = object.clone();
        let role = role.map(str::to_string);
        let all = self.enumerate_instances(ctx, assoc_class)?;
        Ok(Box::new(all.filter(move |item| match item {
            Ok(i) => references_object(i, &object, role.as_deref()),
            Err(_) => true,
        })))
    }

    /// Runs the extrinsic method `method` on `target` (an instance path, or a class path for a
    /// static method). Parameters are typed from the declaration in the repository.
    fn invoke_method(&self, ctx: &OpContext, target: &ObjectPath, method: &str, params: &MethodParams) -> Result<MethodOutput, CimError> {
        let _ = (ctx, params);
        Err(CimError::new(crate::cim::CimStatus::MethodNotAvailable, format!("method {method} of {} is not available", target.class_name)))
    }

    /// Creates an instance; returns its path.
    fn create_instance(&self, ctx: &OpContext, instance: Instance) -> Result<ObjectPath, CimError> {
        let _ = ctx;
        Err(not_supported("CreateInstance", &instance.class_name))
    }

    /// Changes an existing instance: `instance.path` names it; only the properties in
    /// `property_list` (all of `instance`'s when `None`) are to change.
    fn modify_instance(&self, ctx: &OpContext, instance: Instance, property_list: Option<&[String]>) -> Result<(), CimError> {
        let _ = (ctx, property_list);
        Err(not_supported("ModifyInstance", &instance.class_name))
    }

    fn delete_instance(&self, ctx: &OpContext, path: &ObjectPath) -> Result<(), CimError> {
        let _ = ctx;
        Err(not_supported("DeleteInstance", &path.class_name))
    }
}

/// Whether two instance paths name the same instance: class and keys must match; hosts are
/// ignored and namespaces compared only when both paths carry one (a client's `INSTANCENAME`
/// has none).
pub fn same_instance(a: &ObjectPath, b: &ObjectPath) -> bool {
    if let (Some(na), Some(nb)) = (&a.namespace, &b.namespace) {
        if crate::ops::canonical_namespace(na) != crate::ops::canonical_namespace(nb) {
            return false;
        }
    }
    a.local() == b.local()
}

/// Whether an association instance references `object`, through `role` when given.
pub fn references_object(association: &Instance, object: &ObjectPath, role: Option<&str>) -> bool {
    association.properties.iter().any(|p| {
        role.is_none_or(|r| names_equal(r, &p.name)) && matches!(&p.value, Some(CimValue::Reference(r)) if same_instance(r, object))
    })
}
