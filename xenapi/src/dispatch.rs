//! From a method name and wire values to the model, in xapi's order: name, parameter count,
//! types, session, role, then the implementation (explicit handlers first, generated
//! accessors otherwise). `Async.` calls run the same path in a task.

use crate::accessors::{generic, implicit_params};
use crate::datamodel::{class, class_by_name, coerce, type_name, ClassDef, Type, CLASSES};
use crate::error::{codes, ApiError, ApiResult};
use crate::model::Model;
use crate::rpc::{CallContext, Dispatch, Outcome};
use crate::value::Value;
use crate::{devices, events, lifecycle, sessions, tasks, vm_ops};
use httpd::Principal;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// A resolved message: its class, name and parameters after the session.
pub struct Signature {
    pub class: &'static ClassDef,
    pub msg: String,
    pub takes_session: bool,
    pub params: Vec<(&'static str, Type, bool)>,
}

impl Signature {
    pub fn wire_name(&self) -> String {
        format!("{}.{}", self.class.name, self.msg)
    }
    fn required(&self) -> usize {
        self.params.iter().filter(|(_, _, optional)| !optional).count()
    }
}

/// `VM.start`, `VM_start` and `VM_metrics_get_record` all name a class and a message.
fn split_name(name: &str) -> Option<(&'static ClassDef, &str)> {
    if let Some((c, m)) = name.split_once('.') {
        return class_by_name(c).filter(|d| d.name == c).map(|d| (d, m));
    }
    CLASSES
        .iter()
        .filter(|c| name.len() > c.name.len() + 1 && name.starts_with(c.name) && name.as_bytes()[c.name.len()] == b'_')
        .max_by_key(|c| c.name.len())
        .map(|c| (c, &name[c.name.len() + 1..]))
}

pub fn resolve(name: &str) -> Option<Signature> {
    let (class, msg) = split_name(name)?;
    if let Some(m) = class.message(msg) {
        return Some(Signature {
            class,
            msg: msg.to_owned(),
            takes_session: m.takes_session,
            params: m.params.iter().map(|p| (p.name, p.ty, p.optional)).collect(),
        });
    }
    if class.has_implicit(msg) {
        let params = implicit_params(class, msg)?;
        return Some(Signature {
            class,
            msg: msg.to_owned(),
            takes_session: true,
            params: params.into_iter().map(|(n, t)| (n, t, false)).collect(),
        });
    }
    None
}

/// Everything callable, for `system.listMethods` and the coverage document.
pub fn all_methods() -> Vec<String> {
    let mut names = Vec::new();
    for c in CLASSES {
        for m in c.messages {
            names.push(format!("{}.{}", c.name, m.name));
        }
        for m in c.implicit {
            if c.message(m).is_none() {
                names.push(format!("{}.{m}", c.name));
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Messages that xapi does not run as tasks.
fn async_allowed(sig: &Signature) -> bool {
    !matches!(sig.class.name, "session" | "task" | "event") && !["get_", "set_", "add_", "remove_"].iter().any(|p| sig.msg.starts_with(p))
}

/// The state of one call as it reaches an implementation.
pub struct Call<'a> {
    pub model: &'a Model,
    pub session: Option<String>,
    pub principal: Option<Principal>,
    pub task: Option<String>,
    pub peer: IpAddr,
    /// The user the connection's client certificate names (only logins look at it).
    pub cert_user: Option<&'a str>,
}

pub struct Api {
    pub model: Arc<Model>,
    /// Where state-changing calls are recorded (logins are recorded by the authenticator).
    pub audit: Option<Arc<dyn httpd::AuditSink>>,
}

impl Dispatch for Api {
    fn call(&self, method: &str, params: Vec<Value>, ctx: &CallContext) -> Outcome {
        if method == "system.listMethods" {
            return Outcome::Bare(Value::Array(all_methods().into_iter().map(Value::Str).collect()));
        }
        let audited = self.audit.as_ref().and_then(|audit| audit_subject(method, &params).map(|s| (audit, s)));
        let result = self.handle_as(method, params, ctx.peer.ip(), ctx.cert_user.as_deref());
        if let Some((audit, (session, target))) = audited {
            let user = session.as_deref().and_then(|s| self.model.sessions.user_of(s)).unwrap_or_default();
            audit.record(&httpd::AuditEvent {
                door: "xenapi",
                user: &user,
                peer: ctx.peer.ip(),
                action: method,
                method: None,
                target: target.as_deref(),
                result: result.as_ref().map(|_| ()).map_err(|e| e.code.to_string()),
            });
        }
        // The authenticator records a login once the credentials check out; a login refused
        // after that (TOO_MANY_SESSIONS [user, limit]) needs its own line, or the log would
        // show it as done.
        if let (Some(audit), Err(e)) = (&self.audit, &result) {
            if e.code == codes::TOO_MANY_SESSIONS {
                audit.record(&httpd::AuditEvent {
                    door: "xenapi",
                    user: e.args.first().map_or("", String::as_str),
                    peer: ctx.peer.ip(),
                    action: "login",
                    method: None,
                    target: None,
                    result: Err(e.code.to_string()),
                });
            }
        }
        match result {
            Ok(v) => Outcome::Success(v),
            Err(e) => Outcome::Failure(e.description()),
        }
    }
}

/// For a message that may change state (one that needs more than read-only), the session and
/// the object it acts on (the first ref after the session); `None` for reads. Unknown messages
/// change nothing and are not recorded.
fn audit_subject(method: &str, params: &[Value]) -> Option<(Option<String>, Option<String>)> {
    let name = method.strip_prefix("Async.").or_else(|| method.strip_prefix("InternalAsync.")).unwrap_or(method);
    let sig = resolve(name)?;
    if crate::rbac::required_role(sig.class.name, &sig.msg) == httpd::Role::ReadOnly {
        return None;
    }
    let as_str = |v: Option<&Value>| match v {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let session = if sig.takes_session { as_str(params.first()) } else { None };
    let target = as_str(params.get(usize::from(sig.takes_session))).filter(|s| s.starts_with("OpaqueRef:"));
    Some((session, target))
}

impl Api {
    pub fn handle(&self, method: &str, params: Vec<Value>, peer: IpAddr) -> ApiResult<Value> {
        self.handle_as(method, params, peer, None)
    }

    /// [`handle`](Self::handle) on a connection whose verified TLS client certificate names
    /// `cert_user`.
    pub fn handle_as(&self, method: &str, mut params: Vec<Value>, peer: IpAddr, cert_user: Option<&str>) -> ApiResult<Value> {
        let (is_async, name) = match method.strip_prefix("Async.").or_else(|| method.strip_prefix("InternalAsync.")) {
            Some(rest) => (true, rest),
            None => (false, method),
        };
        let Some(sig) = resolve(name) else {
            // xapi validates a session first, so a stale session is reported as such.
            if let Some(Value::Str(s)) = params.first() {
                if s.starts_with("OpaqueRef:") {
                    self.model.sessions.check(s)?;
                }
            }
            return Err(ApiError::new(codes::MESSAGE_METHOD_UNKNOWN, [name]));
        };
        let given = params.len().saturating_sub(usize::from(sig.takes_session));
        if params.len() < usize::from(sig.takes_session) || given < sig.required() || given > sig.params.len() {
            return Err(ApiError::new(
                codes::MESSAGE_PARAMETER_COUNT_MISMATCH,
                [sig.wire_name(), sig.params.len().to_string(), given.to_string()],
            ));
        }
        let session = if sig.takes_session { Some(params.remove(0)) } else { None };
        let mut args = Vec::with_capacity(params.len());
        for (value, (pname, ty, _)) in params.into_iter().zip(&sig.params) {
            let coerced = match ty {
                Type::Record(_) | Type::AnyRecord => Ok(value),
                ty => coerce(value, *ty),
            };
            args.push(
                coerced.map_err(|m| ApiError::new(codes::XMLRPC_UNMARSHAL_FAILURE, [format!("{pname}: {}", m.expected), m.received]))?,
            );
        }
        let (session, principal) = match session {
            Some(s) => {
                let s = s.as_str().unwrap_or("").to_owned();
                let principal = self.model.sessions.check(&s)?;
                crate::rbac::check(&principal, sig.class.name, &sig.msg)?;
                (Some(s), Some(principal))
            }
            None => (None, None),
        };
        let call = Call { model: &self.model, session, principal, task: None, peer, cert_user };
        if !is_async {
            return invoke(&call, &sig, args);
        }
        if !async_allowed(&sig) {
            return Err(ApiError {
                code: "Fault".into(),
                args: vec![format!("No async mode for this operation (rpc: {})", sig.wire_name())],
            });
        }
        let task_ref = tasks::create(&self.model, &format!("Async.{}", sig.wire_name()), "", call.session.as_deref())?;
        let model = self.model.clone();
        let (session, principal, task) = (call.session, call.principal, task_ref.clone());
        std::thread::Builder::new()
            .name("task".into())
            .spawn(move || {
                let call = Call { model: &model, session, principal, task: Some(task.clone()), peer, cert_user: None };
                let outcome = tasks::checkpoint(&model, Some(&task)).and_then(|_| invoke(&call, &sig, args));
                tasks::finish(&model, &task, &outcome);
            })
            .map_err(ApiError::internal)?;
        Ok(Value::Str(task_ref))
    }
}

fn s(args: &[Value], i: usize) -> &str {
    args.get(i).and_then(Value::as_str).unwrap_or("")
}

fn b(args: &[Value], i: usize) -> bool {
    matches!(args.get(i), Some(Value::Bool(true)))
}

fn i(args: &[Value], i: usize) -> i64 {
    match args.get(i) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    }
}

fn void(r: ApiResult<()>) -> ApiResult<Value> {
    r.map(|_| Value::void())
}

/// A ref argument of `class`, resolved (seed-era clients pass UUIDs) or HANDLE_INVALID.
fn resolve_ref(model: &Model, class: crate::datamodel::ClassId, r: &str) -> ApiResult<String> {
    model.db.read().resolve(class, r).map(str::to_owned).ok_or_else(|| ApiError::handle_invalid(class.name(), r))
}

/// An explicit message's implementation.
type Handler = fn(&Call, Vec<Value>) -> ApiResult<Value>;

/// The messages with an implementation of their own, by class; everything else that the
/// datamodel declares is a generated accessor or answers NOT_IMPLEMENTED.
static HANDLERS: &[(&str, &[&str], Handler)] = &[
    ("session", &["login_with_password", "slave_local_login_with_password"], |c, args| {
        sessions::login(c.model, s(&args, 0), s(&args, 1), s(&args, 3), c.peer, c.cert_user).map(Value::Str)
    }),
    ("session", &["logout", "local_logout"], |c, _args| void(sessions::logout(c.model, c.session.as_deref().unwrap_or("")))),
    ("VM", &["create"], |c, args| {
        let fields = crate::accessors::fields_from_record(class::VM.def(), &args[0])?;
        vm_ops::create(c.model, fields).map(Value::Str)
    }),
    ("VM", &["destroy"], |c, args| void(vm_ops::destroy(c.model, &vm(c, &args, 0)?))),
    ("VM", &["start"], |c, args| void(lifecycle::start(c.model, c.task.as_deref(), &vm(c, &args, 0)?, b(&args, 1)))),
    ("VM", &["start_on"], |c, args| {
        resolve_ref(c.model, class::host, s(&args, 1))?;
        void(lifecycle::start(c.model, c.task.as_deref(), &vm(c, &args, 0)?, b(&args, 2)))
    }),
    ("VM", &["pause"], |c, args| void(lifecycle::pause(c.model, c.task.as_deref(), &vm(c, &args, 0)?))),
    ("VM", &["unpause"], |c, args| void(lifecycle::unpause(c.model, c.task.as_deref(), &vm(c, &args, 0)?))),
    ("VM", &["clean_shutdown"], |c, args| void(lifecycle::clean_shutdown(c.model, c.task.as_deref(), &vm(c, &args, 0)?))),
    ("VM", &["hard_shutdown"], |c, args| void(lifecycle::hard_shutdown(c.model, c.task.as_deref(), &vm(c, &args, 0)?))),
    ("VM", &["shutdown"], |c, args| void(lifecycle::shutdown(c.model, c.task.as_deref(), &vm(c, &args, 0)?))),
    ("VM", &["clean_reboot"], |c, args| void(lifecycle::reboot(c.model, c.task.as_deref(), &vm(c, &args, 0)?, true))),
    ("VM", &["hard_reboot"], |c, args| void(lifecycle::reboot(c.model, c.task.as_deref(), &vm(c, &args, 0)?, false))),
    ("VM", &["suspend"], |c, args| void(lifecycle::suspend(c.model, c.task.as_deref(), &vm(c, &args, 0)?))),
    ("VM", &["resume"], |c, args| void(lifecycle::resume(c.model, c.task.as_deref(), &vm(c, &args, 0)?, b(&args, 1)))),
    ("VM", &["resume_on"], |c, args| {
        resolve_ref(c.model, class::host, s(&args, 1))?;
        void(lifecycle::resume(c.model, c.task.as_deref(), &vm(c, &args, 0)?, b(&args, 2)))
    }),
    ("VM", &["power_state_reset"], |c, args| void(lifecycle::power_state_reset(c.model, &vm(c, &args, 0)?))),
    ("VM", &["clone"], |c, args| vm_ops::duplicate(c.model, &vm(c, &args, 0)?, s(&args, 1), vm_ops::CopyKind::Clone, None).map(Value::Str)),
    ("VM", &["copy"], |c, args| {
        vm_ops::duplicate(c.model, &vm(c, &args, 0)?, s(&args, 1), vm_ops::CopyKind::Copy, Some(s(&args, 2))).map(Value::Str)
    }),
    ("VM", &["snapshot"], |c, args| {
        vm_ops::duplicate(c.model, &vm(c, &args, 0)?, s(&args, 1), vm_ops::CopyKind::Snapshot, None).map(Value::Str)
    }),
    ("VM", &["set_memory_dynamic_range"], |c, args| {
        void(vm_ops::set_memory(c.model, &vm(c, &args, 0)?, "changing_dynamic_range", |m| [m[0], i(&args, 1), i(&args, 2), m[3]]))
    }),
    ("VM", &["set_memory_static_range"], |c, args| {
        void(vm_ops::set_memory(c.model, &vm(c, &args, 0)?, "changing_static_range", |m| [i(&args, 1), m[1], m[2], i(&args, 2)]))
    }),
    ("VM", &["set_memory_limits"], |c, args| {
        void(vm_ops::set_memory(c.model, &vm(c, &args, 0)?, "changing_memory_limits", |_| {
            [i(&args, 1), i(&args, 3), i(&args, 4), i(&args, 2)]
        }))
    }),
    ("VM", &["set_memory"], |c, args| {
        void(vm_ops::set_memory(c.model, &vm(c, &args, 0)?, "changing_memory_limits", |m| {
            [m[0].min(i(&args, 1)), i(&args, 1), i(&args, 1), i(&args, 1)]
        }))
    }),
    ("VM", &["set_memory_static_max"], |c, args| {
        void(vm_ops::set_memory(c.model, &vm(c, &args, 0)?, "changing_static_range", |m| [m[0], m[1], m[2], i(&args, 1)]))
    }),
    ("VM", &["set_memory_static_min"], |c, args| {
        void(vm_ops::set_memory(c.model, &vm(c, &args, 0)?, "changing_static_range", |m| [i(&args, 1), m[1], m[2], m[3]]))
    }),
    ("VM", &["set_memory_dynamic_max"], |c, args| {
        void(vm_ops::set_memory(c.model, &vm(c, &args, 0)?, "changing_dynamic_range", |m| [m[0], m[1], i(&args, 1), m[3]]))
    }),
    ("VM", &["set_memory_dynamic_min"], |c, args| {
        void(vm_ops::set_memory(c.model, &vm(c, &args, 0)?, "changing_dynamic_range", |m| [m[0], i(&args, 1), m[2], m[3]]))
    }),
    ("VM", &["set_VCPUs_max"], |c, args| void(vm_ops::set_vcpus_max(c.model, &vm(c, &args, 0)?, i(&args, 1)))),
    ("VM", &["set_VCPUs_at_startup"], |c, args| void(vm_ops::set_vcpus_at_startup(c.model, &vm(c, &args, 0)?, i(&args, 1)))),
    ("VM", &["set_VCPUs_number_live"], |c, args| void(vm_ops::set_vcpus_number_live(c.model, &vm(c, &args, 0)?, i(&args, 1)))),
    ("VM", &["set_is_a_template"], |c, args| void(vm_ops::set_is_a_template(c.model, &vm(c, &args, 0)?, b(&args, 1)))),
    ("VM", &["send_sysrq"], |c, args| void(vm_ops::send_sysrq(c.model, &vm(c, &args, 0)?, s(&args, 1)))),
    ("VM", &["get_allowed_VBD_devices"], |c, args| vm_ops::allowed_devices(c.model, &vm(c, &args, 0)?, true)),
    ("VM", &["get_allowed_VIF_devices"], |c, args| vm_ops::allowed_devices(c.model, &vm(c, &args, 0)?, false)),
    ("VM", &["assert_operation_valid"], |c, args| {
        void(lifecycle::check_operation(&c.model.db.read(), &vm(c, &args, 0)?, s(&args, 1), &c.model.known))
    }),
    ("VM", &["update_allowed_operations"], |c, args| {
        let r = vm(c, &args, 0)?;
        void(c.model.write(|tx| tx.touch(class::VM, &r)))
    }),
    ("VM", &["get_possible_hosts"], |c, _args| Ok(Value::Array(vec![Value::Str(c.model.known.host.clone())]))),
    ("VBD", &["create"], |c, args| {
        devices::vbd_create(c.model, crate::accessors::fields_from_record(class::VBD.def(), &args[0])?).map(Value::Str)
    }),
    ("VIF", &["create"], |c, args| {
        devices::vif_create(c.model, crate::accessors::fields_from_record(class::VIF.def(), &args[0])?).map(Value::Str)
    }),
    ("VBD", &["destroy"], |c, args| void(devices::device_destroy(c.model, class::VBD, &resolve_ref(c.model, class::VBD, s(&args, 0))?))),
    ("VIF", &["destroy"], |c, args| void(devices::device_destroy(c.model, class::VIF, &resolve_ref(c.model, class::VIF, s(&args, 0))?))),
    ("VBD", &["plug"], |c, args| void(devices::set_plugged(c.model, class::VBD, &resolve_ref(c.model, class::VBD, s(&args, 0))?, true))),
    ("VIF", &["plug"], |c, args| void(devices::set_plugged(c.model, class::VIF, &resolve_ref(c.model, class::VIF, s(&args, 0))?, true))),
    ("VBD", &["unplug", "unplug_force"], |c, args| {
        void(devices::set_plugged(c.model, class::VBD, &resolve_ref(c.model, class::VBD, s(&args, 0))?, false))
    }),
    ("VIF", &["unplug", "unplug_force"], |c, args| {
        void(devices::set_plugged(c.model, class::VIF, &resolve_ref(c.model, class::VIF, s(&args, 0))?, false))
    }),
    ("VDI", &["create"], |c, args| {
        devices::vdi_create(c.model, crate::accessors::fields_from_record(class::VDI.def(), &args[0])?).map(Value::Str)
    }),
    ("VDI", &["introduce"], |c, args| {
        // A vm-operator may make disks in an SR, but naming any file of the host as a disk
        // would let a VM read it: that takes pool-admin.
        if !c.principal.as_ref().is_some_and(|p| p.role.includes(httpd::Role::PoolAdmin)) {
            let message = "VDI.introduce registers a file of the host as a disk; it needs pool-admin";
            return Err(ApiError::new(codes::RBAC_PERMISSION_DENIED, ["VDI.introduce", message]));
        }
        devices::vdi_introduce(c.model, &args).map(Value::Str)
    }),
    ("VDI", &["destroy"], |c, args| void(devices::vdi_destroy(c.model, &resolve_ref(c.model, class::VDI, s(&args, 0))?))),
    ("VDI", &["resize", "resize_online"], |c, args| {
        void(devices::vdi_resize(c.model, &resolve_ref(c.model, class::VDI, s(&args, 0))?, i(&args, 1)))
    }),
    ("network", &["create"], |c, args| {
        devices::network_create(c.model, crate::accessors::fields_from_record(class::network.def(), &args[0])?).map(Value::Str)
    }),
    ("network", &["destroy"], |c, args| void(devices::network_destroy(c.model, &resolve_ref(c.model, class::network, s(&args, 0))?))),
    ("task", &["create"], |c, args| tasks::create(c.model, s(&args, 0), s(&args, 1), c.session.as_deref()).map(Value::Str)),
    ("task", &["cancel"], |c, args| void(tasks::cancel(c.model, &resolve_ref(c.model, class::task, s(&args, 0))?))),
    ("task", &["destroy"], |c, args| void(tasks::destroy(c.model, &resolve_ref(c.model, class::task, s(&args, 0))?))),
    ("event", &["from"], |c, args| {
        events::from(
            c.model,
            match &args[0] {
                Value::Array(a) => a,
                _ => &[],
            },
            s(&args, 1),
            match args.get(2) {
                Some(Value::Float(f)) => *f,
                _ => 0.0,
            },
        )
    }),
    ("event", &["register"], |c, args| void(c.model.events.register(c.session.as_deref().unwrap_or(""), list(&args)))),
    ("event", &["unregister"], |c, args| void(c.model.events.unregister(c.session.as_deref().unwrap_or(""), list(&args)))),
    ("event", &["next"], |c, _args| c.model.events.next(c.session.as_deref().unwrap_or(""), Duration::from_secs(300))),
    ("event", &["get_current_id"], |c, _args| Ok(events::get_current_id(c.model))),
    ("event", &["inject"], |c, args| events::inject(c.model, s(&args, 0), s(&args, 1))),
    ("host", &["get_servertime", "get_server_localtime"], |_c, _args| Ok(Value::DateTime(crate::bootstrap::now_xapi()))),
];

fn handler(class: &str, msg: &str) -> Option<Handler> {
    static INDEX: std::sync::OnceLock<std::collections::HashMap<(&'static str, &'static str), Handler>> = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| HANDLERS.iter().flat_map(|(c, msgs, h)| msgs.iter().map(move |m| ((*c, *m), *h))).collect());
    index.get(&(class, msg)).copied()
}

/// Whether a message does something: a handler of its own or a generated accessor.
pub fn is_implemented(class: &ClassDef, msg: &str) -> bool {
    handler(class.name, msg).is_some() || class.has_implicit(msg) || crate::accessors::field_message(class, msg).is_some()
}

fn vm(c: &Call, args: &[Value], i: usize) -> ApiResult<String> {
    resolve_ref(c.model, crate::datamodel::class::VM, s(args, i))
}

/// Runs a resolved message with checked arguments.
pub fn invoke(call: &Call, sig: &Signature, args: Vec<Value>) -> ApiResult<Value> {
    if let Some(h) = handler(sig.class.name, &sig.msg) {
        return h(call, args);
    }
    if sig.class.has_implicit(&sig.msg) || crate::accessors::field_message(sig.class, &sig.msg).is_some() {
        return generic(call.model, sig.class, &sig.msg, args);
    }
    Err(ApiError::not_implemented(&sig.wire_name()))
}

fn list(args: &[Value]) -> &[Value] {
    match args.first() {
        Some(Value::Array(a)) => a,
        _ => &[],
    }
}

/// A readable type name for documentation.
pub fn signature_text(sig: &Signature) -> String {
    sig.params.iter().map(|(n, t, o)| format!("{} {n}{}", type_name(*t), if *o { "?" } else { "" })).collect::<Vec<_>>().join(", ")
}
