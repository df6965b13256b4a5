//! Instance operations: GetInstance, EnumerateInstances, EnumerateInstanceNames, CreateInstance,
//! ModifyInstance, DeleteInstance, GetProperty, SetProperty and ExecQuery, and the instance
//! sources the pull operations share.

use std::sync::Arc;

use super::out::Out;
use super::params::{check_known, required_class, required_instance_name, ClassCache, InstanceOptions};
use super::{CallError, Inner};
use crate::cim::{names_equal, CimError, CimStatus, Instance, ObjectPath};
use crate::cimxml::{IntrinsicCall, ObjectOptions};
use crate::mof::Repository;
use crate::provider::{same_instance, InstanceIter, OpContext, PathIter};
use crate::query::Query;

/// The static instances the MOF declares for one class, read lazily from the repository.
struct StaticInstances {
    repo: Arc<Repository>,
    ns: String,
    class: String,
    pos: usize,
}

impl Iterator for StaticInstances {
    type Item = Result<Instance, CimError>;
    fn next(&mut self) -> Option<Self::Item> {
        let (i, found) = self.repo.instances(&self.ns).enumerate().skip(self.pos).find(|(_, i)| names_equal(&i.class_name, &self.class))?;
        self.pos = i + 1;
        Some(Ok(found.clone()))
    }
}

fn has_static(repo: &Repository, ns: &str, class: &str) -> bool {
    repo.instances(ns).any(|i| names_equal(&i.class_name, class))
}

/// Every instance of `class` and its subclasses, from their providers and the MOF, unshaped.
pub(crate) fn instances_of(inner: &Arc<Inner>, ctx: &OpContext, class: &str) -> Result<InstanceIter, CimError> {
    let ns = ctx.namespace.as_str();
    let top = inner.class(ns, class)?.name.clone();
    let mut classes = vec![top.clone()];
    classes.extend(inner.repo.subclasses(ns, Some(&top), true).into_iter().map(str::to_string));
    let mut sources: Vec<InstanceIter> = Vec::new();
    for c in classes {
        if let Some(p) = inner.providers.provider(ns, &c) {
            match p.enumerate_instances(ctx, &c) {
                Ok(it) => sources.push(it),
                // A subclass whose provider cannot enumerate does not spoil the superclass's.
                Err(e) if e.status == CimStatus::NotSupported && !names_equal(&c, &top) => {}
                Err(e) => return Err(e),
            }
        }
        // The MOF's instances of a class come on top of its provider's.
        if has_static(&inner.repo, ns, &c) {
            sources.push(Box::new(StaticInstances { repo: inner.repo.clone(), ns: ns.to_string(), class: c, pos: 0 }));
        }
    }
    Ok(Box::new(sources.into_iter().flatten()))
}

/// Every instance path of `class` and its subclasses.
pub(crate) fn paths_of(inner: &Arc<Inner>, ctx: &OpContext, class: &str) -> Result<PathIter, CimError> {
    let ns = ctx.namespace.as_str();
    let top = inner.class(ns, class)?.name.clone();
    let mut classes = vec![top.clone()];
    classes.extend(inner.repo.subclasses(ns, Some(&top), true).into_iter().map(str::to_string));
    let mut sources: Vec<PathIter> = Vec::new();
    for c in classes {
        if let Some(p) = inner.providers.provider(ns, &c) {
            match p.enumerate_instance_names(ctx, &c) {
                Ok(it) => sources.push(it),
                Err(e) if e.status == CimStatus::NotSupported && !names_equal(&c, &top) => {}
                Err(e) => return Err(e),
            }
        }
        if has_static(&inner.repo, ns, &c) {
            let ctx2 = ctx.clone();
            let it = StaticInstances { repo: inner.repo.clone(), ns: ns.to_string(), class: c, pos: 0 };
            sources.push(Box::new(it.map(move |i| {
                let i = i?;
                match i.path {
                    Some(p) => Ok(p),
                    None => ctx2.path_of(&i),
                }
            })));
        }
    }
    let ns = ns.to_string();
    Ok(Box::new(sources.into_iter().flatten().map(move |p| {
        p.map(|mut p| {
            if p.namespace.is_none() {
                p.namespace = Some(ns.clone());
            }
            p
        })
    })))
}

/// The instance at a checked path, unshaped: from its class's provider, or the MOF.
pub(crate) fn fetch(inner: &Inner, ctx: &OpContext, path: &ObjectPath) -> Result<Instance, CimError> {
    let ns = ctx.namespace.as_str();
    if let Some(p) = inner.providers.provider(ns, &path.class_name) {
        match p.get_instance(ctx, path) {
            Err(e) if e.status == CimStatus::NotFound && has_static(&inner.repo, ns, &path.class_name) => {}
            other => return other,
        }
    }
    for i in inner.repo.instances(ns).filter(|i| names_equal(&i.class_name, &path.class_name)) {
        let p = match &i.path {
            Some(p) => p.clone(),
            None => ctx.path_of(i)?,
        };
        if same_instance(&p, path) {
            return Ok(i.clone());
        }
    }
    Err(CimError::not_found(format!("no instance {}", path.local())))
}

/// An instance path in any namespace this server serves, or NOT_FOUND.
pub(crate) fn fetch_anywhere(inner: &Inner, ctx: &OpContext, path: &ObjectPath) -> Result<Instance, CimError> {
    let ns = match &path.namespace {
        Some(n) => inner.namespace(n).map_err(|_| CimError::not_found(format!("no instance {path}")))?,
        None => ctx.namespace.clone(),
    };
    let other;
    let ctx = if ns == ctx.namespace {
        ctx
    } else {
        other = OpContext { namespace: ns.clone(), ..ctx.clone() };
        &other
    };
    let checked = inner.check_path(&ns, path).map_err(|e| CimError::not_found(e.description))?;
    fetch(inner, ctx, &checked)
}

pub(crate) fn object_options(opts: &InstanceOptions) -> ObjectOptions {
    ObjectOptions { include_qualifiers: opts.include_qualifiers, include_class_origin: opts.include_class_origin, local_only: false }
}

const GET_INSTANCE: [&str; 5] = ["InstanceName", "LocalOnly", "IncludeQualifiers", "IncludeClassOrigin", "PropertyList"];

pub fn get_instance(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &GET_INSTANCE)?;
    let path = inner.check_path(&ctx.namespace, &required_instance_name(call, "InstanceName")?)?;
    let opts = InstanceOptions::from_call(call, true)?;
    let instance = inner.shape(&ctx.namespace, fetch(inner, ctx, &path)?, &opts)?;
    out.writer.instance(&instance, &object_options(&opts));
    Ok(())
}

const ENUMERATE_INSTANCES: [&str; 6] =
    ["ClassName", "LocalOnly", "DeepInheritance", "IncludeQualifiers", "IncludeClassOrigin", "PropertyList"];

pub fn enumerate_instances(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &ENUMERATE_INSTANCES)?;
    let class = required_class(call, "ClassName")?;
    let mut opts = InstanceOptions::from_call(call, true)?;
    opts.requested_class = Some(class.clone());
    let source = instances_of(inner, ctx, &class)?;
    let oo = object_options(&opts);
    out.writer.begin_return_value();
    let mut cache = ClassCache::default();
    for item in source {
        let instance = inner.shape_cached(&ctx.namespace, item?, &opts, &mut cache)?;
        out.writer.named_instance(&instance, &oo);
        out.maybe_flush()?;
    }
    Ok(())
}

pub fn enumerate_instance_names(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["ClassName"])?;
    let class = required_class(call, "ClassName")?;
    out.writer.begin_return_value();
    for path in paths_of(inner, ctx, &class)? {
        out.writer.instance_name(&path?);
        out.maybe_flush()?;
    }
    Ok(())
}

pub fn create_instance(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["NewInstance"])?;
    let instance = call.instance_param("NewInstance")?.ok_or_else(|| CimError::invalid_parameter("CreateInstance needs NewInstance"))?;
    let class = inner.class(&ctx.namespace, &instance.class_name)?;
    if class.is_abstract() {
        return Err(CimError::invalid_class(format!("{} is abstract", class.name)).into());
    }
    for p in &instance.properties {
        if class.property(&p.name).is_none() {
            return Err(CimError::new(CimStatus::NoSuchProperty, format!("class {} has no property {}", class.name, p.name)).into());
        }
    }
    let provider = inner
        .providers
        .provider(&ctx.namespace, &class.name)
        .ok_or_else(|| CimError::not_supported(format!("instances of {} cannot be created", class.name)))?;
    let path = provider.create_instance(ctx, instance)?;
    out.writer.instance_name(&path);
    Ok(())
}

pub fn modify_instance(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["ModifiedInstance", "IncludeQualifiers", "PropertyList"])?;
    let mut instance =
        call.instance_param("ModifiedInstance")?.ok_or_else(|| CimError::invalid_parameter("ModifyInstance needs ModifiedInstance"))?;
    let path = instance.path.take().ok_or_else(|| CimError::invalid_parameter("ModifiedInstance must be a VALUE.NAMEDINSTANCE"))?;
    let path = inner.check_path(&ctx.namespace, &path)?;
    let class = inner.class(&ctx.namespace, &path.class_name)?;
    for p in &instance.properties {
        if class.property(&p.name).is_none() {
            return Err(CimError::new(CimStatus::NoSuchProperty, format!("class {} has no property {}", class.name, p.name)).into());
        }
    }
    let list = call.property_list_param("PropertyList")?;
    if let Some(list) = &list {
        if let Some(bad) = list.iter().find(|n| class.property(n).is_none()) {
            return Err(CimError::invalid_parameter(format!("PropertyList names {bad}, which {} does not have", class.name)).into());
        }
    }
    let provider = inner
        .providers
        .provider(&ctx.namespace, &class.name)
        .ok_or_else(|| CimError::not_supported(format!("instances of {} cannot be modified", class.name)))?;
    instance.path = Some(path);
    provider.modify_instance(ctx, instance, list.as_deref())?;
    let _ = out;
    Ok(())
}

pub fn delete_instance(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["InstanceName"])?;
    let path = inner.check_path(&ctx.namespace, &required_instance_name(call, "InstanceName")?)?;
    let provider = inner
        .providers
        .provider(&ctx.namespace, &path.class_name)
        .ok_or_else(|| CimError::not_supported(format!("instances of {} cannot be deleted", path.class_name)))?;
    provider.delete_instance(ctx, &path)?;
    let _ = out;
    Ok(())
}

fn property_name(call: &IntrinsicCall) -> Result<String, CimError> {
    call.string_param("PropertyName")?.ok_or_else(|| CimError::invalid_parameter(format!("{} needs PropertyName", call.name)))
}

pub fn get_property(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["InstanceName", "PropertyName"])?;
    let path = inner.check_path(&ctx.namespace, &required_instance_name(call, "InstanceName")?)?;
    let name = property_name(call)?;
    let class = inner.class(&ctx.namespace, &path.class_name)?;
    if class.property(&name).is_none() {
        return Err(CimError::new(CimStatus::NoSuchProperty, format!("class {} has no property {name}", class.name)).into());
    }
    let opts = InstanceOptions { property_list: Some(vec![name.clone()]), deep_inheritance: true, ..InstanceOptions::default() };
    let instance = inner.shape(&ctx.namespace, fetch(inner, ctx, &path)?, &opts)?;
    out.writer.begin_return_value();
    out.writer.value(instance.value(&name));
    Ok(())
}

pub fn set_property(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["InstanceName", "PropertyName", "NewValue"])?;
    let path = inner.check_path(&ctx.namespace, &required_instance_name(call, "InstanceName")?)?;
    let name = property_name(call)?;
    let class = inner.class(&ctx.namespace, &path.class_name)?;
    let decl = class
        .property(&name)
        .ok_or_else(|| CimError::new(CimStatus::NoSuchProperty, format!("class {} has no property {name}", class.name)))?;
    let value =
        call.value_param("NewValue", decl.cim_type, decl.is_array).map_err(|e| CimError::new(CimStatus::TypeMismatch, e.description))?;
    let mut p = crate::cim::Property::null(decl.name.clone(), decl.cim_type, decl.is_array);
    p.reference_class = decl.reference_class.clone();
    p.value = value;
    let mut instance = Instance::new(class.name.clone());
    instance.properties.push(p);
    instance.path = Some(path.clone());
    let provider = inner
        .providers
        .provider(&ctx.namespace, &class.name)
        .ok_or_else(|| CimError::not_supported(format!("instances of {} cannot be modified", class.name)))?;
    provider.modify_instance(ctx, instance, Some(std::slice::from_ref(&decl.name)))?;
    let _ = out;
    Ok(())
}

/// The instances of a query's FROM class that match it, projected and shaped.
pub(crate) fn query_source(inner: &Arc<Inner>, ctx: &OpContext, query: Query, opts: InstanceOptions) -> Result<InstanceIter, CimError> {
    let source = instances_of(inner, ctx, &query.from_class)?;
    let inner2 = inner.clone();
    let ns = ctx.namespace.clone();
    let mut cache = ClassCache::default();
    Ok(Box::new(source.filter_map(move |item| {
        let instance = match item {
            Ok(i) => i,
            Err(e) => return Some(Err(e)),
        };
        let shaped = match inner2.shape_cached(&ns, instance, &opts, &mut cache) {
            Ok(i) => i,
            Err(e) => return Some(Err(e)),
        };
        let repo = inner2.repo.clone();
        let ns2 = ns.clone();
        let hierarchy = move |c: &str, a: &str| repo.is_a(&ns2, c, a);
        if query.matches(&shaped, &hierarchy) {
            Some(Ok(query.project(shaped)))
        } else {
            None
        }
    })))
}

pub fn exec_query(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["QueryLanguage", "Query"])?;
    let language = call.string_param("QueryLanguage")?.ok_or_else(|| CimError::invalid_parameter("ExecQuery needs QueryLanguage"))?;
    let text = call.string_param("Query")?.ok_or_else(|| CimError::invalid_parameter("ExecQuery needs Query"))?;
    let query = Query::parse_named(&language, &text)?;
    inner.class(&ctx.namespace, &query.from_class).map_err(|e| CimError::new(CimStatus::InvalidQuery, e.description))?;
    let opts = InstanceOptions { deep_inheritance: true, ..InstanceOptions::default() };
    let oo = object_options(&opts);
    out.writer.begin_return_value();
    for item in query_source(inner, ctx, query, opts)? {
        out.writer.instance_object_with_path(&item?, &oo);
        out.maybe_flush()?;
    }
    Ok(())
}
