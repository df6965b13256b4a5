//! Association traversal for Associators, AssociatorNames, References, ReferenceNames and their
//! pull forms. The AssocClass / ResultClass / Role / ResultRole filters are applied here, over
//! the association instances that providers return, so providers only answer "which instances of
//! this association class reference this object".

use std::collections::HashSet;
use std::sync::Arc;

use super::instances::{fetch_anywhere, object_options};
use super::out::Out;
use super::params::{check_known, InstanceOptions};
use super::{canonical_namespace, CallError, Inner};
use crate::cim::{names_equal, CimError, CimStatus, CimValue, Class, Instance, ObjectPath};
use crate::cimxml::{CimObject, IntrinsicCall, ObjectName};
use crate::provider::{references_object, InstanceIter, OpContext, PathIter};

use super::classes::{shape_class, ClassOptions};

/// The four filters of the association operations.
#[derive(Debug, Clone, Default)]
pub(crate) struct AssocFilter {
    /// AssocClass of Associators, ResultClass of References: the association's class.
    pub assoc_class: Option<String>,
    /// ResultClass of Associators: the class of the far end.
    pub result_class: Option<String>,
    pub role: Option<String>,
    pub result_role: Option<String>,
}

impl AssocFilter {
    /// Reads the filters of an `Associators*` (`associators` = true) or `References*` call.
    pub fn from_call(call: &IntrinsicCall, associators: bool) -> Result<AssocFilter, CimError> {
        let role = call.string_param("Role")?.filter(|s| !s.is_empty());
        if associators {
            Ok(AssocFilter {
                assoc_class: call.class_name_param("AssocClass")?,
                result_class: call.class_name_param("ResultClass")?,
                role,
                result_role: call.string_param("ResultRole")?.filter(|s| !s.is_empty()),
            })
        } else {
            Ok(AssocFilter { assoc_class: call.class_name_param("ResultClass")?, result_class: None, role, result_role: None })
        }
    }
}

/// Whether a reference property of an association can point at `class`.
fn reference_fits(inner: &Inner, ns: &str, class: &str, reference_class: Option<&str>) -> bool {
    match reference_class {
        None => true,
        Some(rc) => inner.repo.is_a(ns, class, rc) || inner.repo.is_a(ns, rc, class),
    }
}

/// Association classes of `ns` that can reference an instance of `object_class` through `role`.
fn association_classes<'a>(inner: &'a Inner, ns: &str, object_class: &str, filter: &AssocFilter) -> Vec<&'a Class> {
    inner
        .repo
        .classes(ns)
        .filter(|c| c.is_association())
        .filter(|c| filter.assoc_class.as_deref().is_none_or(|f| inner.repo.is_a(ns, &c.name, f)))
        .filter(|c| {
            c.reference_properties().any(|p| {
                filter.role.as_deref().is_none_or(|r| names_equal(r, &p.name))
                    && reference_fits(inner, ns, object_class, p.reference_class.as_deref())
            })
        })
        .collect()
}

fn has_static(inner: &Inner, ns: &str, class: &str) -> bool {
    inner.repo.instances(ns).any(|i| names_equal(&i.class_name, class))
}

/// The association instances that reference `object` (a checked path in `ctx.namespace`),
/// unshaped, lazily.
pub(crate) fn references(inner: &Arc<Inner>, ctx: &OpContext, object: &ObjectPath, filter: &AssocFilter) -> Result<InstanceIter, CimError> {
    let ns = ctx.namespace.clone();
    let mut sources: Vec<InstanceIter> = Vec::new();
    for class in association_classes(inner, &ns, &object.class_name, filter) {
        if let Some(p) = inner.providers.provider(&ns, &class.name) {
            match p.references(ctx, &class.name, object, filter.role.as_deref()) {
                Ok(it) => sources.push(it),
                Err(e) if e.status == CimStatus::NotSupported => {}
                Err(e) => return Err(e),
            }
        }
        if has_static(inner, &ns, &class.name) {
            let list: Vec<Result<Instance, CimError>> = inner
                .repo
                .instances(&ns)
                .filter(|i| names_equal(&i.class_name, &class.name))
                .map(|i| {
                    let mut i = i.clone();
                    if i.path.is_none() {
                        i.path = ctx.path_of(&i).ok();
                    }
                    Ok(i)
                })
                .collect();
            sources.push(Box::new(list.into_iter()));
        }
    }
    let object = object.clone();
    let role = filter.role.clone();
    // Providers may answer a superset (the trait allows it); the filter is exact here.
    Ok(Box::new(sources.into_iter().flatten().filter(move |item| match item {
        Ok(i) => references_object(i, &object, role.as_deref()),
        Err(_) => true,
    })))
}

/// The far ends of the associations of `object`, each once, lazily.
pub(crate) fn associator_paths(
    inner: &Arc<Inner>,
    ctx: &OpContext,
    object: &ObjectPath,
    filter: &AssocFilter,
) -> Result<PathIter, CimError> {
    let assocs = references(inner, ctx, object, filter)?;
    let inner2 = inner.clone();
    let ns = ctx.namespace.clone();
    let object = object.clone();
    let filter = filter.clone();
    let mut seen: HashSet<ObjectPath> = HashSet::new();
    Ok(Box::new(assocs.flat_map(move |item| -> Vec<Result<ObjectPath, CimError>> {
        let assoc = match item {
            Ok(a) => a,
            Err(e) => return vec![Err(e)],
        };
        let mut found = Vec::new();
        for near in &assoc.properties {
            let points_here = filter.role.as_deref().is_none_or(|r| names_equal(r, &near.name))
                && matches!(&near.value, Some(CimValue::Reference(r)) if crate::provider::same_instance(r, &object));
            if !points_here {
                continue;
            }
            for far in &assoc.properties {
                if names_equal(&far.name, &near.name) || filter.result_role.as_deref().is_some_and(|r| !names_equal(r, &far.name)) {
                    continue;
                }
                let Some(CimValue::Reference(target)) = &far.value else { continue };
                let mut target = target.clone();
                let target_ns = canonical_namespace(target.namespace.as_deref().unwrap_or(&ns));
                target.namespace = Some(target_ns.clone());
                if let Some(rc) = &filter.result_class {
                    let fits = if inner2.namespaces.contains(&target_ns) {
                        inner2.repo.is_a(&target_ns, &target.class_name, rc)
                    } else {
                        names_equal(&target.class_name, rc)
                    };
                    if !fits {
                        continue;
                    }
                }
                if seen.insert(target.clone()) {
                    found.push(Ok(target));
                }
            }
        }
        found
    })))
}

/// The far-end instances, shaped with `opts` in their own namespace; ends that do not exist
/// (any more) are skipped.
pub(crate) fn associator_instances(
    inner: &Arc<Inner>,
    ctx: &OpContext,
    object: &ObjectPath,
    filter: &AssocFilter,
    opts: InstanceOptions,
) -> Result<InstanceIter, CimError> {
    let paths = associator_paths(inner, ctx, object, filter)?;
    let inner2 = inner.clone();
    let ctx2 = ctx.clone();
    let mut cache = super::params::ClassCache::default();
    Ok(Box::new(paths.filter_map(move |p| {
        let p = match p {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        match fetch_anywhere(&inner2, &ctx2, &p) {
            Ok(i) => {
                let ns = p.namespace.clone().unwrap_or_else(|| ctx2.namespace.clone());
                Some(inner2.shape_cached(&ns, i, &opts, &mut cache))
            }
            Err(e) if e.status == CimStatus::NotFound => None,
            Err(e) => Some(Err(e)),
        }
    })))
}

/// The association instances, shaped.
pub(crate) fn reference_instances(
    inner: &Arc<Inner>,
    ctx: &OpContext,
    object: &ObjectPath,
    filter: &AssocFilter,
    opts: InstanceOptions,
) -> Result<InstanceIter, CimError> {
    let refs = references(inner, ctx, object, filter)?;
    let inner2 = inner.clone();
    let ns = ctx.namespace.clone();
    let mut cache = super::params::ClassCache::default();
    Ok(Box::new(refs.map(move |i| inner2.shape_cached(&ns, i?, &opts, &mut cache))))
}

/// The association paths.
pub(crate) fn reference_paths(
    inner: &Arc<Inner>,
    ctx: &OpContext,
    object: &ObjectPath,
    filter: &AssocFilter,
) -> Result<PathIter, CimError> {
    let refs = references(inner, ctx, object, filter)?;
    let ctx2 = ctx.clone();
    Ok(Box::new(refs.map(move |i| {
        let i = i?;
        let mut p = match i.path {
            Some(p) => p,
            None => ctx2.path_of(&i)?,
        };
        if p.namespace.is_none() {
            p.namespace = Some(ctx2.namespace.clone());
        }
        Ok(p)
    })))
}

const ASSOCIATORS: [&str; 8] =
    ["ObjectName", "AssocClass", "ResultClass", "Role", "ResultRole", "IncludeQualifiers", "IncludeClassOrigin", "PropertyList"];
const REFERENCES: [&str; 6] = ["ObjectName", "ResultClass", "Role", "IncludeQualifiers", "IncludeClassOrigin", "PropertyList"];

pub fn operation(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    let associators = call.name.starts_with("Associator");
    let names = call.name.ends_with("Names");
    let allowed: &[&str] = match (associators, names) {
        (true, false) => &ASSOCIATORS,
        (true, true) => &ASSOCIATORS[..5],
        (false, false) => &REFERENCES,
        (false, true) => &REFERENCES[..3],
    };
    check_known(call, allowed)?;
    let object =
        call.object_name_param("ObjectName")?.ok_or_else(|| CimError::invalid_parameter(format!("{} needs ObjectName", call.name)))?;
    let filter = AssocFilter::from_call(call, associators)?;
    for c in [&filter.assoc_class, &filter.result_class].into_iter().flatten() {
        inner.class(&ctx.namespace, c)?;
    }
    out.writer.begin_return_value();
    let path = match object {
        ObjectName::Class(class) => return class_level(inner, ctx, call, &class, &filter, associators, names, out),
        ObjectName::Instance(p) => inner.check_path(&ctx.namespace, &p)?,
    };
    let opts = InstanceOptions {
        include_qualifiers: call.bool_param("IncludeQualifiers")?.unwrap_or(false),
        include_class_origin: call.bool_param("IncludeClassOrigin")?.unwrap_or(false),
        deep_inheritance: true,
        property_list: call.property_list_param("PropertyList")?,
        ..InstanceOptions::default()
    };
    let oo = object_options(&opts);
    match (associators, names) {
        (true, false) => {
            for i in associator_instances(inner, ctx, &path, &filter, opts)? {
                out.writer.instance_object_with_path(&i?, &oo);
                out.maybe_flush()?;
            }
        }
        (true, true) => {
            for p in associator_paths(inner, ctx, &path, &filter)? {
                out.writer.object_path(&p?, false);
                out.maybe_flush()?;
            }
        }
        (false, false) => {
            for i in reference_instances(inner, ctx, &path, &filter, opts)? {
                out.writer.instance_object_with_path(&i?, &oo);
                out.maybe_flush()?;
            }
        }
        (false, true) => {
            for p in reference_paths(inner, ctx, &path, &filter)? {
                out.writer.object_path(&p?, false);
                out.maybe_flush()?;
            }
        }
    }
    Ok(())
}

/// Associators and References of a class: the classes on the other end of the associations
/// (or the association classes), from the schema alone.
#[allow(clippy::too_many_arguments)]
fn class_level(
    inner: &Arc<Inner>,
    ctx: &OpContext,
    call: &IntrinsicCall,
    class: &str,
    filter: &AssocFilter,
    associators: bool,
    names: bool,
    out: &mut Out,
) -> Result<(), CallError> {
    let ns = ctx.namespace.as_str();
    let class = inner.class(ns, class)?.name.clone();
    let mut results: Vec<String> = Vec::new();
    for assoc in association_classes(inner, ns, &class, filter) {
        if !associators {
            results.push(assoc.name.clone());
            continue;
        }
        for near in assoc.reference_properties() {
            let near_fits = filter.role.as_deref().is_none_or(|r| names_equal(r, &near.name))
                && reference_fits(inner, ns, &class, near.reference_class.as_deref());
            if !near_fits {
                continue;
            }
            for far in assoc.reference_properties() {
                if names_equal(&far.name, &near.name) || filter.result_role.as_deref().is_some_and(|r| !names_equal(r, &far.name)) {
                    continue;
                }
                let Some(target) = far.reference_class.clone() else { continue };
                if filter.result_class.as_deref().is_some_and(|rc| !inner.repo.is_a(ns, &target, rc)) {
                    continue;
                }
                if !results.iter().any(|r| names_equal(r, &target)) {
                    results.push(target);
                }
            }
        }
    }
    let opts = ClassOptions {
        local_only: false,
        include_qualifiers: call.bool_param("IncludeQualifiers")?.unwrap_or(false),
        include_class_origin: call.bool_param("IncludeClassOrigin")?.unwrap_or(false),
        property_list: call.property_list_param("PropertyList")?,
    };
    for name in results {
        let Some(c) = inner.repo.get_class(ns, &name) else { continue };
        let path = ObjectPath::new(Some(ns), c.name.clone());
        if names {
            out.writer.object_path(&path, true);
        } else {
            out.writer.object_with_path(&CimObject::Class { path: Some(path), class: shape_class(c, &opts) }, &opts.object_options());
        }
        out.maybe_flush()?;
    }
    Ok(())
}
