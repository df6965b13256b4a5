//! The event stream as clients see it: `event.from` (tokens over the registry's generations)
//! and the older `event.register` / `event.next` queues, bounded per session.

use crate::datamodel::{class_by_name, ClassId};
use crate::db::{record_of, Commit, Data, Op, Ref};
use crate::error::{codes, ApiError, ApiResult};
use crate::model::Model;
use crate::value::Value;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a subscription string names: every class, a class, or one object.
#[derive(Clone, Debug, PartialEq)]
pub enum Subscription {
    All,
    Class(ClassId),
    Object(ClassId, Ref),
}

impl Subscription {
    pub fn parse(s: &str) -> ApiResult<Subscription> {
        if s == "*" {
            return Ok(Subscription::All);
        }
        let (class_name, object) = match s.split_once('/') {
            Some((c, r)) => (c, Some(r)),
            None => (s, None),
        };
        let def =
            class_by_name(&class_name.to_ascii_lowercase()).ok_or_else(|| ApiError::new(codes::EVENT_SUBSCRIPTION_PARSE_FAILURE, [s]))?;
        Ok(match object {
            Some(r) if !r.is_empty() => Subscription::Object(def.id, r.to_owned()),
            Some(_) => return Err(ApiError::new(codes::EVENT_SUBSCRIPTION_PARSE_FAILURE, [s])),
            None => Subscription::Class(def.id),
        })
    }

    fn matches(&self, c: ClassId, r: &str) -> bool {
        match self {
            Subscription::All => true,
            Subscription::Class(k) => *k == c,
            Subscription::Object(k, o) => *k == c && o == r,
        }
    }

    fn classes(&self) -> Vec<ClassId> {
        match self {
            Subscription::All => crate::datamodel::CLASSES.iter().map(|c| c.id).filter(|c| *c != crate::datamodel::class::event).collect(),
            Subscription::Class(c) | Subscription::Object(c, _) => vec![*c],
        }
    }
}

fn parse_subscriptions(classes: &[Value]) -> ApiResult<Vec<Subscription>> {
    classes.iter().map(|v| Subscription::parse(v.as_str().unwrap_or(""))).collect()
}

/// An event record as xapi sends it.
pub fn event_record(id: u64, c: ClassId, op: Op, reference: &str, uuid: &str, snapshot: Option<Value>) -> Value {
    let mut m = vec![
        ("id".to_owned(), Value::Str(id.to_string())),
        ("timestamp".to_owned(), Value::Str(format!("{}.0", chrono::Utc::now().timestamp()))),
        ("class".to_owned(), Value::Str(c.def().event_name())),
        ("operation".to_owned(), Value::str(op.name())),
        ("ref".to_owned(), Value::str(reference)),
        ("obj_uuid".to_owned(), Value::str(uuid)),
    ];
    if let Some(s) = snapshot {
        m.push(("snapshot".to_owned(), s));
    }
    Value::Struct(m)
}

fn parse_token(token: &str) -> ApiResult<u64> {
    if token.is_empty() {
        return Ok(0);
    }
    token.trim().parse::<u64>().map_err(|_| ApiError::new(codes::EVENT_FROM_TOKEN_PARSE_FAILURE, [token]))
}

/// Events for everything the subscriptions name that changed after generation `since`.
fn collect(data: &Data, subs: &[Subscription], since: u64) -> Vec<(u64, Value)> {
    let mut out = Vec::new();
    let mut classes: Vec<ClassId> = subs.iter().flat_map(Subscription::classes).collect();
    classes.sort();
    classes.dedup();
    for c in classes {
        for (r, row) in data.rows(c) {
            if row.modified > since && subs.iter().any(|s| s.matches(c, r)) {
                let op = if row.created > since { Op::Add } else { Op::Mod };
                let uuid = row.fields.first().and_then(Value::as_str).unwrap_or("");
                out.push((row.modified, event_record(row.modified, c, op, r, uuid, Some(record_of(c, &row.fields)))));
            }
        }
    }
    if since > 0 {
        for d in data.deletions_since(since) {
            if subs.iter().any(|s| s.matches(d.class, &d.reference)) {
                out.push((d.generation, event_record(d.generation, d.class, Op::Del, &d.reference, &d.uuid, None)));
            }
        }
    }
    out.sort_by_key(|(g, _)| *g);
    out
}

/// `event.from(classes, token, timeout)`.
pub fn from(model: &Model, classes: &[Value], token: &str, timeout: f64) -> ApiResult<Value> {
    let subs = parse_subscriptions(classes)?;
    let since = parse_token(token)?;
    let deadline = Instant::now() + Duration::from_secs_f64(timeout.clamp(0.0, 86_400.0));
    loop {
        let (events, generation, counts) = {
            let data = model.db.read();
            let events = collect(&data, &subs, since);
            let mut counts: Vec<(String, Value)> = Vec::new();
            for s in &subs {
                for c in s.classes() {
                    let name = c.def().event_name();
                    if !counts.iter().any(|(n, _)| *n == name) {
                        counts.push((name, Value::Int(data.count(c) as i64)));
                    }
                }
            }
            (events, data.generation(), counts)
        };
        if !events.is_empty() || Instant::now() >= deadline {
            return Ok(Value::Struct(vec![
                ("events".to_owned(), Value::Array(events.into_iter().map(|(_, e)| e).collect())),
                ("valid_ref_counts".to_owned(), Value::Struct(counts)),
                ("token".to_owned(), Value::Str(format!("{generation:020}"))),
            ]));
        }
        model.db.wait_for_change(generation, deadline);
    }
}

pub fn get_current_id(model: &Model) -> Value {
    Value::Int(model.db.read().generation() as i64)
}

/// `event.inject(class, ref)`: a `mod` event for the object, as a barrier.
pub fn inject(model: &Model, class_name: &str, reference: &str) -> ApiResult<Value> {
    let def = class_by_name(class_name).ok_or_else(|| ApiError::new(codes::EVENT_SUBSCRIPTION_PARSE_FAILURE, [class_name]))?;
    model.write(|tx| tx.touch(def.id, reference))?;
    Ok(Value::Str(format!("{:020}", model.db.read().generation())))
}

struct Registration {
    subs: Vec<Subscription>,
    queue: VecDeque<Value>,
    lost: bool,
}

/// Sessions registered for `event.next`, each with a bounded queue.
pub struct Registrations {
    limit: usize,
    sessions: Mutex<HashMap<Ref, Registration>>,
    arrived: Condvar,
}

impl Registrations {
    pub fn new(limit: usize) -> Registrations {
        Registrations { limit, sessions: Mutex::new(HashMap::new()), arrived: Condvar::new() }
    }

    pub fn register(&self, session_ref: &str, classes: &[Value]) -> ApiResult<()> {
        let subs = parse_subscriptions(classes)?;
        let mut sessions = self.sessions.lock();
        let reg =
            sessions.entry(session_ref.to_owned()).or_insert_with(|| Registration { subs: vec![], queue: VecDeque::new(), lost: false });
        for s in subs {
            if !reg.subs.contains(&s) {
                reg.subs.push(s);
            }
        }
        Ok(())
    }

    pub fn unregister(&self, session_ref: &str, classes: &[Value]) -> ApiResult<()> {
        let subs = parse_subscriptions(classes)?;
        if let Some(reg) = self.sessions.lock().get_mut(session_ref) {
            reg.subs.retain(|s| !subs.contains(s));
        }
        Ok(())
    }

    pub fn unregister_session(&self, session_ref: &str) {
        self.sessions.lock().remove(session_ref);
        self.arrived.notify_all();
    }

    fn deliver(&self, commit: &Commit) {
        let mut sessions = self.sessions.lock();
        if sessions.is_empty() {
            return;
        }
        for reg in sessions.values_mut() {
            for ch in &commit.changes {
                if !reg.subs.iter().any(|s| s.matches(ch.class, &ch.reference)) {
                    continue;
                }
                if reg.queue.len() >= self.limit {
                    reg.lost = true;
                    reg.queue.clear();
                }
                if reg.lost {
                    continue;
                }
                let fields = ch.after.as_ref().or(ch.before.as_ref());
                let uuid = fields.and_then(|f| f.first()).and_then(Value::as_str).unwrap_or("");
                let snapshot = ch.after.as_ref().map(|f| record_of(ch.class, f));
                reg.queue.push_back(event_record(commit.generation, ch.class, ch.op, &ch.reference, uuid, snapshot));
            }
        }
        drop(sessions);
        self.arrived.notify_all();
    }

    /// `event.next`: waits for events on the session's queue (up to `wait`).
    pub fn next(&self, session_ref: &str, wait: Duration) -> ApiResult<Value> {
        let deadline = Instant::now() + wait;
        let mut sessions = self.sessions.lock();
        loop {
            let Some(reg) = sessions.get_mut(session_ref) else {
                return Err(ApiError::new(codes::SESSION_NOT_REGISTERED, [session_ref]));
            };
            if reg.lost {
                reg.lost = false;
                return Err(ApiError::new(codes::EVENTS_LOST, Vec::<String>::new()));
            }
            if !reg.queue.is_empty() || Instant::now() >= deadline {
                return Ok(Value::Array(reg.queue.drain(..).collect()));
            }
            self.arrived.wait_until(&mut sessions, deadline);
        }
    }
}

/// Feeds committed changes into the registered sessions' queues.
pub fn spawn_feeder(model: &Arc<Model>) {
    let commits = model.db.subscribe();
    let weak = Arc::downgrade(model);
    std::thread::Builder::new()
        .name("event-queues".into())
        .spawn(move || {
            while let Ok(commit) = commits.recv() {
                match weak.upgrade() {
                    Some(model) => model.events.deliver(&commit),
                    None => break,
                }
            }
        })
        .expect("spawn the event queue feeder");
}
