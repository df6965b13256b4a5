//! Class and qualifier operations, answered from the repository: GetClass, EnumerateClasses,
//! EnumerateClassNames, GetQualifier, EnumerateQualifiers.

use std::sync::Arc;

use super::out::Out;
use super::params::{check_known, flag, required_class};
use super::{CallError, Inner};
use crate::cim::{names_equal, CimError, CimStatus, Class};
use crate::cimxml::{IntrinsicCall, ObjectOptions};
use crate::provider::OpContext;

#[derive(Debug, Clone)]
pub(crate) struct ClassOptions {
    pub local_only: bool,
    pub include_qualifiers: bool,
    pub include_class_origin: bool,
    pub property_list: Option<Vec<String>>,
}

impl ClassOptions {
    /// DSP0200 defaults for class operations: LocalOnly TRUE, IncludeQualifiers TRUE,
    /// IncludeClassOrigin FALSE.
    pub fn from_call(call: &IntrinsicCall) -> Result<ClassOptions, CimError> {
        Ok(ClassOptions {
            local_only: flag(call, "LocalOnly", true)?,
            include_qualifiers: flag(call, "IncludeQualifiers", true)?,
            include_class_origin: flag(call, "IncludeClassOrigin", false)?,
            property_list: call.property_list_param("PropertyList")?,
        })
    }

    pub fn object_options(&self) -> ObjectOptions {
        ObjectOptions { include_qualifiers: self.include_qualifiers, include_class_origin: self.include_class_origin, local_only: false }
    }
}

/// The class as the options want it: LocalOnly drops inherited elements and qualifiers,
/// PropertyList keeps only the listed properties.
pub(crate) fn shape_class(class: &Class, opts: &ClassOptions) -> Class {
    let mut c = class.clone();
    if opts.local_only {
        c.properties.retain(|p| !p.propagated);
        c.methods.retain(|m| !m.propagated);
        c.qualifiers.retain(|q| !q.propagated);
    }
    if let Some(list) = &opts.property_list {
        c.properties.retain(|p| list.iter().any(|n| names_equal(n, &p.name)));
    }
    c
}

pub fn get_class(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["ClassName", "LocalOnly", "IncludeQualifiers", "IncludeClassOrigin", "PropertyList"])?;
    let name = required_class(call, "ClassName")?;
    let opts = ClassOptions::from_call(call)?;
    let class = inner
        .repo
        .get_class(&ctx.namespace, &name)
        .ok_or_else(|| CimError::not_found(format!("class {name} does not exist in namespace {}", ctx.namespace)))?;
    out.writer.class(&shape_class(class, &opts), &opts.object_options());
    Ok(())
}

/// The classes EnumerateClasses / EnumerateClassNames list: subclasses of `name` (or the root
/// classes), all of their descendants when `deep`.
fn class_list<'a>(inner: &'a Inner, ns: &str, name: Option<&str>, deep: bool) -> Result<Vec<&'a str>, CimError> {
    if let Some(n) = name {
        inner.class(ns, n)?;
    }
    Ok(inner.repo.subclasses(ns, name, deep))
}

pub fn enumerate_classes(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["ClassName", "DeepInheritance", "LocalOnly", "IncludeQualifiers", "IncludeClassOrigin"])?;
    let name = call.class_name_param("ClassName")?;
    let deep = flag(call, "DeepInheritance", false)?;
    let opts = ClassOptions::from_call(call)?;
    let oo = opts.object_options();
    out.writer.begin_return_value();
    for n in class_list(inner, &ctx.namespace, name.as_deref(), deep)? {
        if let Some(c) = inner.repo.get_class(&ctx.namespace, n) {
            out.writer.class(&shape_class(c, &opts), &oo);
            out.maybe_flush()?;
        }
    }
    Ok(())
}

pub fn enumerate_class_names(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["ClassName", "DeepInheritance"])?;
    let name = call.class_name_param("ClassName")?;
    let deep = flag(call, "DeepInheritance", false)?;
    out.writer.begin_return_value();
    for n in class_list(inner, &ctx.namespace, name.as_deref(), deep)? {
        out.writer.class_name(n);
        out.maybe_flush()?;
    }
    Ok(())
}

pub fn get_qualifier(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["QualifierName"])?;
    let name = call.string_param("QualifierName")?.ok_or_else(|| CimError::invalid_parameter("GetQualifier needs QualifierName"))?;
    let decl = inner
        .repo
        .qualifier_decl(&ctx.namespace, &name)
        .ok_or_else(|| CimError::new(CimStatus::NotFound, format!("qualifier {name} is not declared in {}", ctx.namespace)))?;
    out.writer.qualifier_declaration(decl);
    Ok(())
}

pub fn enumerate_qualifiers(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &[])?;
    out.writer.begin_return_value();
    for decl in inner.repo.qualifier_decls(&ctx.namespace) {
        out.writer.qualifier_declaration(decl);
        out.maybe_flush()?;
    }
    Ok(())
}
