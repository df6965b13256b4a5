//! The DSP0200 operation dispatcher: decoded CIM-XML calls in, CIM-XML responses out.
//!
//! Class and qualifier operations read the [`Repository`]; instance, association and method
//! operations go to the [`Provider`](crate::provider::Provider)s of the [`ProviderRegistry`],
//! plus the static instances the MOF declares. The dispatcher applies every request option itself
//! (see `crate::provider`), with DSP0200's default when the client leaves a parameter out.
//!
//! Choices where DSP0200 leaves room, all documented in docs/wbem.md:
//! - `LocalOnly` on instance operations is deprecated (DSP0200 1.3 allows servers to treat it as
//!   false): it is honoured when a client sends TRUE, and an omitted one reads as FALSE, because
//!   pywbem omits it and expects whole instances.
//! - `IncludeQualifiers` on instance operations copies the class's property qualifiers.
//! - Associators and AssociatorNames return each object once, even when several associations
//!   lead to it.

mod assoc;
mod classes;
mod instances;
mod methods;
mod out;
mod params;
mod pull;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use httpd::auth::{Principal, Role};

pub use out::{ChunkSink, ClientGone, VecSink};
pub use pull::PullLimits;

use crate::cim::{fold_name, CimError, Instance};
use crate::cimxml::{Call, IntrinsicCall, Request, ResponseWriter};
use crate::mof::Repository;
use crate::provider::{OpContext, ProviderRegistry};

/// The namespaces served when nothing else is configured.
pub const DEFAULT_NAMESPACES: [&str; 3] = ["root/virt", "root/interop", "root/cimv2"];

/// The canonical form of a namespace name: no leading or trailing `/`, lower case (namespace
/// names are case-insensitive), and `interop` / `root/PG_InterOp` as `root/interop`.
pub fn canonical_namespace(ns: &str) -> String {
    let folded = fold_name(ns.trim().trim_matches('/'));
    match folded.as_str() {
        "interop" | "root/pg_interop" => "root/interop".to_string(),
        _ => folded,
    }
}

/// Settings of the dispatcher.
#[derive(Debug, Clone)]
pub struct CimomConfig {
    /// Namespaces served (canonical names). Namespaces the repository declares are served too.
    pub namespaces: Vec<String>,
    pub pull: PullLimits,
}

impl Default for CimomConfig {
    fn default() -> Self {
        CimomConfig { namespaces: DEFAULT_NAMESPACES.iter().map(|s| s.to_string()).collect(), pull: PullLimits::default() }
    }
}

pub(crate) struct Inner {
    pub repo: Arc<Repository>,
    pub providers: Arc<ProviderRegistry>,
    pub namespaces: Vec<String>,
    pub contexts: pull::Contexts,
}

/// The CIM object manager: runs the operations of decoded requests. Cheap to clone.
#[derive(Clone)]
pub struct Cimom {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cimom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cimom").field("namespaces", &self.inner.namespaces).finish()
    }
}

/// The intrinsic operations that change something, refused to read-only callers.
const WRITES: [&str; 4] = ["CreateInstance", "ModifyInstance", "DeleteInstance", "SetProperty"];

impl Cimom {
    pub fn new(repo: Arc<Repository>, providers: Arc<ProviderRegistry>, config: CimomConfig) -> Cimom {
        let mut namespaces: Vec<String> = config.namespaces.iter().map(|n| canonical_namespace(n)).collect();
        for ns in repo.namespaces() {
            let c = canonical_namespace(ns);
            if !namespaces.contains(&c) {
                namespaces.push(c);
            }
        }
        Cimom { inner: Arc::new(Inner { repo, providers, namespaces, contexts: pull::Contexts::new(config.pull) }) }
    }

    pub fn repository(&self) -> &Arc<Repository> {
        &self.inner.repo
    }

    pub fn providers(&self) -> &Arc<ProviderRegistry> {
        &self.inner.providers
    }

    /// The namespaces served, canonical names.
    pub fn namespaces(&self) -> &[String] {
        &self.inner.namespaces
    }

    /// An instance from a provider as GetInstance returns it (every property of its class, in
    /// the class's order and types, with its full path in `ns`): the SourceInstance of an
    /// indication must be the instance a client reads.
    pub fn shape_instance(&self, ns: &str, instance: Instance) -> Result<Instance, CimError> {
        self.inner.shape(&canonical_namespace(ns), instance, &params::InstanceOptions { deep_inheritance: true, ..Default::default() })
    }

    /// Open pull enumeration contexts (for tests and the benchmark's curiosity).
    pub fn open_enumeration_contexts(&self) -> usize {
        self.inner.contexts.len()
    }

    /// Runs one request for `principal`, writing the response to `sink`. On `Err` nothing
    /// usable may have been written yet or only part of the response: the caller decides how to
    /// report it (a CIM-XML ERROR document if it still can, trailers or a cut connection if not).
    pub fn call(&self, principal: &Principal, request: &Request, sink: &mut dyn ChunkSink) -> Result<(), CallError> {
        match &request.call {
            Call::Intrinsic(call) => {
                let writer = ResponseWriter::intrinsic(&request.message_id, &call.name);
                let mut out = out::Out::new(writer, sink);
                self.intrinsic(principal, call, &mut out)?;
                out.finish().map_err(|_| CallError::ClientGone)
            }
            Call::Extrinsic(call) => {
                let ns = self.inner.namespace(call.target.path().namespace.as_deref().unwrap_or_default())?;
                if principal.role < Role::VmOperator {
                    return Err(CimError::access_denied(format!("user {} is read-only and may not call methods", principal.user)).into());
                }
                let ctx = self.inner.context(principal, &ns);
                let writer = ResponseWriter::extrinsic(&request.message_id, &call.name);
                let mut out = out::Out::new(writer, sink);
                methods::invoke(&self.inner, &ctx, call, &mut out)?;
                out.finish().map_err(|_| CallError::ClientGone)
            }
            Call::Export(call) => {
                Err(CimError::not_supported(format!("{} is an export request; this is not a listener", call.name)).into())
            }
        }
    }

    fn intrinsic(&self, principal: &Principal, call: &IntrinsicCall, out: &mut out::Out) -> Result<(), CallError> {
        let ns = self.inner.namespace(&call.namespace)?;
        let op = call.name.as_str();
        if WRITES.iter().any(|w| w.eq_ignore_ascii_case(op)) && principal.role < Role::VmOperator {
            return Err(CimError::access_denied(format!("user {} is read-only and may not use {op}", principal.user)).into());
        }
        let ctx = self.inner.context(principal, &ns);
        let inner = &self.inner;
        match op {
            "GetClass" => classes::get_class(inner, &ctx, call, out),
            "EnumerateClasses" => classes::enumerate_classes(inner, &ctx, call, out),
            "EnumerateClassNames" => classes::enumerate_class_names(inner, &ctx, call, out),
            "GetQualifier" => classes::get_qualifier(inner, &ctx, call, out),
            "EnumerateQualifiers" => classes::enumerate_qualifiers(inner, &ctx, call, out),
            "GetInstance" => instances::get_instance(inner, &ctx, call, out),
            "EnumerateInstances" => instances::enumerate_instances(inner, &ctx, call, out),
            "EnumerateInstanceNames" => instances::enumerate_instance_names(inner, &ctx, call, out),
            "CreateInstance" => instances::create_instance(inner, &ctx, call, out),
            "ModifyInstance" => instances::modify_instance(inner, &ctx, call, out),
            "DeleteInstance" => instances::delete_instance(inner, &ctx, call, out),
            "GetProperty" => instances::get_property(inner, &ctx, call, out),
            "SetProperty" => instances::set_property(inner, &ctx, call, out),
            "ExecQuery" => instances::exec_query(inner, &ctx, call, out),
            "Associators" | "AssociatorNames" | "References" | "ReferenceNames" => assoc::operation(inner, &ctx, call, out),
            "OpenEnumerateInstances"
            | "OpenEnumerateInstancePaths"
            | "OpenAssociatorInstances"
            | "OpenAssociatorInstancePaths"
            | "OpenReferenceInstances"
            | "OpenReferenceInstancePaths"
            | "OpenQueryInstances" => pull::open(inner, &ctx, call, out),
            "PullInstancesWithPath" | "PullInstancePaths" | "PullInstances" => pull::pull(inner, &ctx, call, out),
            "CloseEnumeration" => pull::close(inner, &ctx, call, out),
            "EnumerationCount" => pull::count(inner, &ctx, call, out),
            other => Err(CimError::not_supported(format!("operation {other} is not supported")).into()),
        }
    }
}

/// Why a call produced no (complete) response.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// Answer with this error.
    Cim(CimError),
    /// The client went away while the response was being written.
    ClientGone,
}

impl From<CimError> for CallError {
    fn from(e: CimError) -> Self {
        CallError::Cim(e)
    }
}

impl From<ClientGone> for CallError {
    fn from(_: ClientGone) -> Self {
        CallError::ClientGone
    }
}

impl CallError {
    pub fn cim(&self) -> Option<&CimError> {
        match self {
            CallError::Cim(e) => Some(e),
            CallError::ClientGone => None,
        }
    }
}

impl Inner {
    /// The canonical name of a served namespace, or CIM_ERR_INVALID_NAMESPACE.
    pub fn namespace(&self, ns: &str) -> Result<String, CimError> {
        let c = canonical_namespace(ns);
        if self.namespaces.contains(&c) {
            Ok(c)
        } else if ns.trim().is_empty() {
            Err(CimError::invalid_namespace("no namespace given"))
        } else {
            Err(CimError::invalid_namespace(format!("namespace {ns} does not exist")))
        }
    }

    pub fn context(&self, principal: &Principal, ns: &str) -> OpContext {
        OpContext::new(principal.clone(), ns, self.repo.clone())
    }
}

/// How long an enumeration context lives between pulls when the client does not say.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
