//! Extrinsic method calls: the target and parameters are checked and typed against the method's
//! declaration in the repository before the class's provider runs it.

use std::sync::Arc;

use super::out::Out;
use super::{CallError, Inner};
use crate::cim::{CimError, CimStatus, CimType, CimValue, Method, Parameter};
use crate::cimxml::{decode_embedded_object, CimObject, ExtrinsicCall, MethodParam, MethodTarget, ParamValue};
use crate::provider::{MethodParams, OpContext};

/// An embedded instance sent as text: escaped CIM-XML (`<INSTANCE ...>`) or MOF
/// (`instance of X { ... };`), the two encodings clients use besides a real `EmbeddedObject`.
fn embedded_from_text(inner: &Inner, ns: &str, text: &str) -> Result<CimValue, CimError> {
    let t = text.trim_start();
    if t.starts_with('<') {
        return match decode_embedded_object(t)? {
            CimObject::Instance(i) => Ok(CimValue::Instance(Box::new(i))),
            CimObject::Class { class, .. } => Ok(CimValue::Class(Box::new(class))),
        };
    }
    if t.len() >= 8 && t[..8].eq_ignore_ascii_case("instance") {
        let mut list =
            inner.repo.parse_instances(ns, text).map_err(|e| CimError::invalid_parameter(format!("embedded MOF instance: {e}")))?;
        if list.len() == 1 {
            return Ok(CimValue::Instance(Box::new(list.remove(0))));
        }
        return Err(CimError::invalid_parameter(format!("an embedded MOF text must declare one instance, not {}", list.len())));
    }
    Ok(CimValue::String(text.to_string()))
}

fn embedded(inner: &Inner, ns: &str, value: CimValue) -> Result<CimValue, CimError> {
    match value {
        CimValue::String(s) => embedded_from_text(inner, ns, &s),
        CimValue::Array(a) => {
            let ty = a.element_type();
            let mut out = Vec::with_capacity(a.len());
            for e in a.into_elements() {
                out.push(match e {
                    Some(v) => Some(embedded(inner, ns, v)?),
                    None => None,
                });
            }
            crate::cim::CimArray::new(ty, out).map(CimValue::Array).map_err(|e| CimError::invalid_parameter(e.0))
        }
        v => Ok(v),
    }
}

fn typed_input(inner: &Inner, ns: &str, decl: &Parameter, sent: &MethodParam) -> Result<Option<CimValue>, CimError> {
    let value = sent
        .value
        .to_value(decl.cim_type, decl.is_array)
        .map_err(|e| CimError::invalid_parameter(format!("parameter {}: {e}", decl.name)))?;
    match value {
        Some(v) if decl.cim_type == CimType::String && (decl.embedded_kind().is_some() || sent.embedded_object.is_some()) => {
            embedded(inner, ns, v).map(Some)
        }
        v => Ok(v),
    }
}

fn output_param(decl: &Parameter, value: Option<CimValue>) -> Result<MethodParam, CimError> {
    let value = match value {
        Some(v) if v.cim_type() != decl.cim_type || v.is_array() != decl.is_array => Some(
            v.convert(decl.cim_type, decl.is_array)
                .map_err(|e| CimError::failed(format!("the provider returned a bad value for {}: {e}", decl.name)))?,
        ),
        v => v,
    };
    let embedded = value.as_ref().and_then(CimValue::embedded_kind).or_else(|| decl.embedded_kind().filter(|_| value.is_some()));
    Ok(MethodParam {
        name: decl.name.clone(),
        param_type: Some(decl.cim_type),
        embedded_object: embedded,
        value: value.map_or(ParamValue::Null, ParamValue::Value),
    })
}

fn find_method<'c>(class: &'c crate::cim::Class, name: &str) -> Result<&'c Method, CimError> {
    class.method(name).ok_or_else(|| CimError::new(CimStatus::MethodNotFound, format!("class {} has no method {name}", class.name)))
}

pub fn invoke(inner: &Arc<Inner>, ctx: &OpContext, call: &ExtrinsicCall, out: &mut Out) -> Result<(), CallError> {
    let ns = ctx.namespace.as_str();
    let target = match &call.target {
        MethodTarget::Instance(p) => inner.check_path(ns, p)?,
        MethodTarget::Class(p) => crate::cim::ObjectPath::new(Some(ns), inner.class(ns, &p.class_name)?.name.clone()),
    };
    let class = inner.class(ns, &target.class_name)?;
    let method = find_method(class, &call.name)?;
    if matches!(call.target, MethodTarget::Class(_)) && !method.qualifier("Static").is_some_and(|q| q.is_true()) {
        return Err(CimError::invalid_parameter(format!("{} is not a static method; call it on an instance", method.name)).into());
    }
    let mut params = Vec::new();
    for sent in &call.params {
        let decl = method
            .parameter(&sent.name)
            .ok_or_else(|| CimError::invalid_parameter(format!("method {} has no parameter {}", method.name, sent.name)))?;
        if !decl.is_in() {
            return Err(CimError::invalid_parameter(format!("parameter {} of {} is not an input", decl.name, method.name)).into());
        }
        params.push((decl.name.clone(), typed_input(inner, ns, decl, sent)?));
    }
    let provider = inner
        .providers
        .provider(ns, &class.name)
        .ok_or_else(|| CimError::new(CimStatus::MethodNotAvailable, format!("no provider runs methods of {} in {ns}", class.name)))?;
    let result = provider.invoke_method(ctx, &target, &method.name, &MethodParams(params))?;
    let return_value = match result.return_value {
        Some(v) if v.cim_type() != method.return_type || v.is_array() => Some(
            v.convert(method.return_type, false)
                .map_err(|e| CimError::failed(format!("the provider returned a bad return value for {}: {e}", method.name)))?,
        ),
        v => v,
    };
    out.writer.return_value(return_value.as_ref(), method.return_type);
    for (name, value) in result.out_params {
        let Some(decl) = method.parameter(&name).filter(|p| p.is_out()) else {
            tracing::debug!(method = %method.name, parameter = %name, "provider returned an undeclared output parameter; dropped");
            continue;
        };
        out.writer.output_param(&output_param(decl, value)?);
    }
    Ok(())
}
