//! The pull operations of DSP0200 1.3: Open* start an enumeration and return its first
//! MaxObjectCount objects; Pull* continue it; CloseEnumeration ends it early.
//!
//! An enumeration context keeps the lazy iterator the Open* built (not a list of results), so the
//! memory a pull enumeration holds is what one response carries, bounded by MaxObjectCount.
//! Contexts expire OperationTimeout after the last response, a server-wide cap and a per-user cap
//! bound how many are open (CIM_ERR_SERVER_LIMITS_EXCEEDED beyond either), and a context is owned
//! by the user and namespace that opened it. CIM-XML has no sessions: the per-user cap is what
//! a session's bound would be elsewhere, counted over every connection of the authenticated user. A context is taken out of the table while a Pull runs on it, so a
//! concurrent Pull or Close on the same context finds none (CIM_ERR_INVALID_ENUMERATION_CONTEXT).

use std::collections::HashMap;
use std::iter::Peekable;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::assoc::{associator_instances, associator_paths, reference_instances, reference_paths, AssocFilter};
use super::instances::{instances_of, object_options, paths_of, query_source};
use super::out::Out;
use super::params::{check_known, required_class, required_instance_name, ClassCache, InstanceOptions};
use super::{CallError, Inner};
use crate::cim::{CimError, CimStatus, Instance, ObjectPath};
use crate::cimxml::{IntrinsicCall, ObjectOptions};
use crate::provider::OpContext;
use crate::query::Query;

/// Bounds on pull enumerations.
#[derive(Debug, Clone)]
pub struct PullLimits {
    /// Enumeration contexts open at once, across all clients.
    pub max_open_contexts: usize,
    /// Enumeration contexts one user (the authenticated principal) may have open at once.
    pub max_open_contexts_per_user: usize,
    /// OperationTimeout when the client gives none.
    pub default_timeout: Duration,
    /// The largest OperationTimeout accepted (larger ones: CIM_ERR_INVALID_OPERATION_TIMEOUT).
    pub max_timeout: Duration,
    /// The most objects one response carries, whatever MaxObjectCount asks.
    pub max_object_count: u32,
}

impl Default for PullLimits {
    fn default() -> Self {
        PullLimits {
            max_open_contexts: 256,
            max_open_contexts_per_user: 32,
            default_timeout: super::DEFAULT_OPERATION_TIMEOUT,
            max_timeout: Duration::from_secs(3600),
            max_object_count: 100_000,
        }
    }
}

pub(crate) enum PullItem {
    Instance(Instance),
    Path(ObjectPath),
}

type ItemIter = Peekable<Box<dyn Iterator<Item = Result<PullItem, CimError>> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `VALUE.INSTANCEWITHPATH`, pulled with PullInstancesWithPath.
    InstancesWithPath,
    /// `INSTANCEPATH`, pulled with PullInstancePaths.
    Paths,
    /// `INSTANCE` (query results), pulled with PullInstances.
    Instances,
}

impl Kind {
    fn pull_operation(self) -> &'static str {
        match self {
            Kind::InstancesWithPath => "PullInstancesWithPath",
            Kind::Paths => "PullInstancePaths",
            Kind::Instances => "PullInstances",
        }
    }
}

struct EnumContext {
    user: String,
    namespace: String,
    kind: Kind,
    items: ItemIter,
    options: ObjectOptions,
    timeout: Duration,
    expires: Instant,
}

pub(crate) struct Contexts {
    limits: PullLimits,
    open: Mutex<HashMap<String, EnumContext>>,
}

impl Contexts {
    pub fn new(limits: PullLimits) -> Contexts {
        Contexts { limits, open: Mutex::new(HashMap::new()) }
    }

    pub fn len(&self) -> usize {
        let mut open = self.open.lock();
        let now = Instant::now();
        open.retain(|_, c| c.expires > now);
        open.len()
    }

    /// Fails with CIM_ERR_SERVER_LIMITS_EXCEEDED when `user` may not open a context now: the
    /// server keeps `max_open_contexts` or the user has `max_open_contexts_per_user` open.
    fn check_room(&self, user: &str) -> Result<(), CimError> {
        let mut open = self.open.lock();
        self.room(&mut open, user)
    }

    fn room(&self, open: &mut HashMap<String, EnumContext>, user: &str) -> Result<(), CimError> {
        let now = Instant::now();
        open.retain(|_, c| c.expires > now);
        if open.len() >= self.limits.max_open_contexts {
            return Err(CimError::new(
                CimStatus::ServerLimitsExceeded,
                format!(
                    "{} enumeration contexts are open, the most this server keeps (max_enumeration_contexts); close some or let them expire",
                    self.limits.max_open_contexts
                ),
            ));
        }
        let limit = self.limits.max_open_contexts_per_user;
        if open.values().filter(|c| c.user == user).count() >= limit {
            return Err(CimError::new(
                CimStatus::ServerLimitsExceeded,
                format!(
                    "user '{user}' has {limit} enumeration contexts open, the most one user may keep (max_enumeration_contexts_per_user); close some or let them expire"
                ),
            ));
        }
        Ok(())
    }

    /// Checks the room and inserts under one lock, so that concurrent Open*s cannot overshoot.
    fn insert(&self, mut ctx: EnumContext) -> Result<String, CimError> {
        let mut open = self.open.lock();
        self.room(&mut open, &ctx.user)?;
        ctx.expires = Instant::now() + ctx.timeout;
        let id = uuid::Uuid::new_v4().to_string();
        open.insert(id.clone(), ctx);
        Ok(id)
    }

    /// Takes a context out of the table for the caller who owns it.
    fn take(&self, id: &str, user: &str, namespace: &str) -> Result<EnumContext, CimError> {
        let invalid = || {
            CimError::new(
                CimStatus::InvalidEnumerationContext,
                format!("enumeration context '{id}' is not open (unknown, expired, closed or in use)"),
            )
        };
        let mut open = self.open.lock();
        let ctx = open.remove(id).ok_or_else(invalid)?;
        if ctx.expires <= Instant::now() {
            return Err(invalid());
        }
        if ctx.user != user || ctx.namespace != namespace {
            // Not this caller's: leave it for its owner.
            open.insert(id.to_string(), ctx);
            return Err(invalid());
        }
        Ok(ctx)
    }

    fn put_back(&self, id: String, mut ctx: EnumContext) {
        ctx.expires = Instant::now() + ctx.timeout;
        self.open.lock().insert(id, ctx);
    }
}

struct Common {
    timeout: Duration,
    max_object_count: u32,
}

fn common(inner: &Inner, call: &IntrinsicCall, filtered: bool) -> Result<Common, CimError> {
    if call.bool_param("ContinueOnError")?.unwrap_or(false) {
        return Err(CimError::new(CimStatus::ContinuationOnErrorNotSupported, "ContinueOnError=true is not supported"));
    }
    if filtered {
        let language = call.string_param("FilterQueryLanguage")?;
        let query = call.string_param("FilterQuery")?;
        if language.is_some() || query.is_some_and(|q| !q.trim().is_empty()) {
            return Err(CimError::new(CimStatus::FilteredEnumerationNotSupported, "filtered enumeration (FilterQuery) is not supported"));
        }
    }
    let limits = &inner.contexts.limits;
    let timeout = match call.u32_param("OperationTimeout")? {
        None => limits.default_timeout,
        Some(0) => {
            return Err(CimError::new(CimStatus::InvalidOperationTimeout, "OperationTimeout 0 (never expire) is not supported"));
        }
        Some(s) if Duration::from_secs(u64::from(s)) > limits.max_timeout => {
            return Err(CimError::new(
                CimStatus::InvalidOperationTimeout,
                format!("OperationTimeout {s} s is more than the {} s this server allows", limits.max_timeout.as_secs()),
            ));
        }
        Some(s) => Duration::from_secs(u64::from(s)),
    };
    let max_object_count = call.u32_param("MaxObjectCount")?.unwrap_or(0);
    Ok(Common { timeout, max_object_count })
}

const COMMON: [&str; 5] = ["FilterQueryLanguage", "FilterQuery", "OperationTimeout", "ContinueOnError", "MaxObjectCount"];

fn allowed(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = COMMON.to_vec();
    v.extend_from_slice(extra);
    v
}

fn instance_items(it: crate::provider::InstanceIter) -> Box<dyn Iterator<Item = Result<PullItem, CimError>> + Send> {
    Box::new(it.map(|r| r.map(PullItem::Instance)))
}

fn path_items(it: crate::provider::PathIter) -> Box<dyn Iterator<Item = Result<PullItem, CimError>> + Send> {
    Box::new(it.map(|r| r.map(PullItem::Path)))
}

fn write_items(out: &mut Out, items: &mut ItemIter, count: u32, kind: Kind, oo: &ObjectOptions) -> Result<(), CallError> {
    out.writer.begin_return_value();
    for _ in 0..count {
        match items.next() {
            None => break,
            Some(item) => {
                match (item?, kind) {
                    (PullItem::Instance(i), Kind::Instances) => out.writer.instance(&i, oo),
                    (PullItem::Instance(i), _) => out.writer.instance_with_path(&i, oo),
                    (PullItem::Path(p), _) => out.writer.instance_path(&p),
                }
                out.maybe_flush()?;
            }
        }
    }
    Ok(())
}

pub fn open(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    let ns = ctx.namespace.clone();
    let op = call.name.as_str();
    let (kind, items, options, common) = match op {
        "OpenEnumerateInstances" => {
            check_known(
                call,
                &allowed(&["ClassName", "DeepInheritance", "IncludeClassOrigin", "PropertyList", "LocalOnly", "IncludeQualifiers"]),
            )?;
            let c = common(inner, call, true)?;
            let class = required_class(call, "ClassName")?;
            let mut opts = InstanceOptions::from_call(call, true)?;
            opts.requested_class = Some(class.clone());
            let oo = object_options(&opts);
            let source = instances_of(inner, ctx, &class)?;
            let inner2 = inner.clone();
            let ns2 = ns.clone();
            let mut cache = ClassCache::default();
            let shaped = Box::new(source.map(move |i| inner2.shape_cached(&ns2, i?, &opts, &mut cache)));
            (Kind::InstancesWithPath, instance_items(shaped), oo, c)
        }
        "OpenEnumerateInstancePaths" => {
            check_known(call, &allowed(&["ClassName"]))?;
            let c = common(inner, call, true)?;
            let class = required_class(call, "ClassName")?;
            (Kind::Paths, path_items(paths_of(inner, ctx, &class)?), ObjectOptions::default(), c)
        }
        "OpenAssociatorInstances" | "OpenReferenceInstances" => {
            let associators = op == "OpenAssociatorInstances";
            let extra: &[&'static str] = if associators {
                &["InstanceName", "AssocClass", "ResultClass", "Role", "ResultRole", "IncludeClassOrigin", "PropertyList"]
            } else {
                &["InstanceName", "ResultClass", "Role", "IncludeClassOrigin", "PropertyList"]
            };
            check_known(call, &allowed(extra))?;
            let c = common(inner, call, true)?;
            let path = inner.check_path(&ns, &required_instance_name(call, "InstanceName")?)?;
            let filter = AssocFilter::from_call(call, associators)?;
            let opts = InstanceOptions {
                include_class_origin: call.bool_param("IncludeClassOrigin")?.unwrap_or(false),
                deep_inheritance: true,
                property_list: call.property_list_param("PropertyList")?,
                ..InstanceOptions::default()
            };
            let oo = object_options(&opts);
            let it = if associators {
                associator_instances(inner, ctx, &path, &filter, opts)?
            } else {
                reference_instances(inner, ctx, &path, &filter, opts)?
            };
            (Kind::InstancesWithPath, instance_items(it), oo, c)
        }
        "OpenAssociatorInstancePaths" | "OpenReferenceInstancePaths" => {
            let associators = op == "OpenAssociatorInstancePaths";
            let extra: &[&'static str] = if associators {
                &["InstanceName", "AssocClass", "ResultClass", "Role", "ResultRole"]
            } else {
                &["InstanceName", "ResultClass", "Role"]
            };
            check_known(call, &allowed(extra))?;
            let c = common(inner, call, true)?;
            let path = inner.check_path(&ns, &required_instance_name(call, "InstanceName")?)?;
            let filter = AssocFilter::from_call(call, associators)?;
            let it = if associators { associator_paths(inner, ctx, &path, &filter)? } else { reference_paths(inner, ctx, &path, &filter)? };
            (Kind::Paths, path_items(it), ObjectOptions::default(), c)
        }
        "OpenQueryInstances" => {
            check_known(
                call,
                &["FilterQueryLanguage", "FilterQuery", "ReturnQueryResultClass", "OperationTimeout", "ContinueOnError", "MaxObjectCount"],
            )?;
            let c = common(inner, call, false)?;
            if call.bool_param("ReturnQueryResultClass")?.unwrap_or(false) {
                return Err(CimError::not_supported("ReturnQueryResultClass=true is not supported").into());
            }
            let language = call
                .string_param("FilterQueryLanguage")?
                .ok_or_else(|| CimError::invalid_parameter("OpenQueryInstances needs FilterQueryLanguage"))?;
            let text =
                call.string_param("FilterQuery")?.ok_or_else(|| CimError::invalid_parameter("OpenQueryInstances needs FilterQuery"))?;
            let query = Query::parse_named(&language, &text)?;
            inner.class(&ns, &query.from_class).map_err(|e| CimError::new(CimStatus::InvalidQuery, e.description))?;
            let opts = InstanceOptions { deep_inheritance: true, ..InstanceOptions::default() };
            (Kind::Instances, instance_items(query_source(inner, ctx, query, opts)?), ObjectOptions::default(), c)
        }
        _ => return Err(CimError::not_supported(format!("operation {op} is not supported")).into()),
    };
    // Refuse before any work is visible, rather than after the first objects went out.
    inner.contexts.check_room(&ctx.principal.user)?;
    let mut items: ItemIter = items.peekable();
    let count = common.max_object_count.min(inner.contexts.limits.max_object_count);
    write_items(out, &mut items, count, kind, &options)?;
    let end = items.peek().is_none();
    let id = if end {
        None
    } else {
        let context = EnumContext {
            user: ctx.principal.user.clone(),
            namespace: ns,
            kind,
            items,
            options,
            timeout: common.timeout,
            expires: Instant::now(),
        };
        Some(inner.contexts.insert(context)?)
    };
    out.writer.pull_result(id.as_deref(), end);
    Ok(())
}

fn context_id(call: &IntrinsicCall) -> Result<String, CimError> {
    call.string_param("EnumerationContext")?.ok_or_else(|| CimError::invalid_parameter(format!("{} needs EnumerationContext", call.name)))
}

pub fn pull(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["EnumerationContext", "MaxObjectCount"])?;
    let id = context_id(call)?;
    let max =
        call.u32_param("MaxObjectCount")?.ok_or_else(|| CimError::invalid_parameter(format!("{} needs MaxObjectCount", call.name)))?;
    let mut context = inner.contexts.take(&id, &ctx.principal.user, &ctx.namespace)?;
    if context.kind.pull_operation() != call.name {
        let expected = context.kind.pull_operation();
        inner.contexts.put_back(id.clone(), context);
        return Err(CimError::new(
            CimStatus::InvalidEnumerationContext,
            format!("context '{id}' is pulled with {expected}, not {}", call.name),
        )
        .into());
    }
    let count = max.min(inner.contexts.limits.max_object_count);
    // An error ends the enumeration: the context is dropped with it (ContinueOnError is false).
    write_items(out, &mut context.items, count, context.kind, &context.options.clone())?;
    let end = context.items.peek().is_none();
    if end {
        out.writer.pull_result(None, true);
    } else {
        out.writer.pull_result(Some(&id), false);
        inner.contexts.put_back(id, context);
    }
    Ok(())
}

pub fn close(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["EnumerationContext"])?;
    let id = context_id(call)?;
    inner.contexts.take(&id, &ctx.principal.user, &ctx.namespace)?;
    let _ = out;
    Ok(())
}

pub fn count(inner: &Arc<Inner>, ctx: &OpContext, call: &IntrinsicCall, out: &mut Out) -> Result<(), CallError> {
    check_known(call, &["EnumerationContext"])?;
    let id = context_id(call)?;
    let context = inner.contexts.take(&id, &ctx.principal.user, &ctx.namespace)?;
    inner.contexts.put_back(id, context);
    // The iterators are lazy: the remaining count is not known without producing everything, so
    // the answer is NULL, which DSP0200 allows.
    out.writer.value(None);
    Ok(())
}
