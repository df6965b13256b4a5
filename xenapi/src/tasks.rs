//! Tasks: the record behind every `Async.` call (and client-made tasks), their outcome, their
//! cancellation, and their removal some time after they finish.

use crate::bootstrap::now_xapi;
use crate::datamodel::{class, task};
use crate::db::{default_fields, Ref};
use crate::error::{codes, ApiError, ApiResult};
use crate::model::Model;
use crate::value::Value;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

#[derive(Default)]
pub struct Tasks {
    /// Tasks whose cancellation was asked for while they run.
    cancelling: Mutex<HashSet<Ref>>,
    /// When each task finished, for garbage collection.
    finished: Mutex<HashMap<Ref, Instant>>,
}

impl Tasks {
    pub fn is_cancelling(&self, task_ref: &str) -> bool {
        self.cancelling.lock().contains(task_ref)
    }

    pub fn expired(&self, retention: std::time::Duration) -> Vec<Ref> {
        self.finished.lock().iter().filter(|(_, t)| t.elapsed() > retention).map(|(r, _)| r.clone()).collect()
    }

    pub fn forget(&self, task_ref: &str) {
        self.finished.lock().remove(task_ref);
        self.cancelling.lock().remove(task_ref);
    }
}

pub fn create(model: &Model, label: &str, description: &str, session_ref: Option<&str>) -> ApiResult<Ref> {
    model.write(|tx| {
        let mut f = default_fields(class::task);
        f[task::NAME_LABEL.index()] = Value::str(label);
        f[task::NAME_DESCRIPTION.index()] = Value::str(description);
        f[task::STATUS.index()] = Value::str("pending");
        f[task::CREATED.index()] = Value::DateTime(now_xapi());
        f[task::RESIDENT_ON.index()] = Value::str(model.known.host.clone());
        f[task::ALLOWED_OPERATIONS.index()] = Value::Array(vec![Value::str("cancel")]);
        f[task::PROGRESS.index()] = Value::Float(0.0);
        if let Some(s) = session_ref {
            f[task::OTHER_CONFIG.index()] = crate::bootstrap::map(&[("session", s.to_owned())]);
        }
        Ok(tx.insert(class::task, f))
    })
}

pub fn set_progress(model: &Model, task_ref: &str, progress: f64) {
    let _ = model.write(|tx| tx.set(class::task, task_ref, task::PROGRESS, Value::Float(progress.clamp(0.0, 1.0))));
}

/// Records the end of a task: its result as XML-RPC value text (what xapi stores) or its error.
pub fn finish(model: &Model, task_ref: &str, outcome: &ApiResult<Value>) {
    let cancelled = model.tasks.cancelling.lock().remove(task_ref);
    let _ = model.write(|tx| {
        if tx.data().row(class::task, task_ref).is_none() {
            return Ok(());
        }
        let (status, result, error) = match outcome {
            Ok(v) => ("success", crate::rpc::xmlrpc::value_to_xml(v), vec![]),
            Err(e) if e.code == codes::TASK_CANCELLED || cancelled => ("cancelled", String::new(), e.description()),
            Err(e) => ("failure", String::new(), e.description()),
        };
        tx.set(class::task, task_ref, task::STATUS, Value::str(status))?;
        tx.set(class::task, task_ref, task::RESULT, Value::str(result))?;
        tx.set(class::task, task_ref, task::ERROR_INFO, Value::Array(error.into_iter().map(Value::Str).collect()))?;
        tx.set(class::task, task_ref, task::PROGRESS, Value::Float(1.0))?;
        tx.set(class::task, task_ref, task::FINISHED, Value::DateTime(now_xapi()))?;
        tx.set(class::task, task_ref, task::ALLOWED_OPERATIONS, Value::Array(vec![Value::str("destroy")]))
    });
    model.tasks.finished.lock().insert(task_ref.to_owned(), Instant::now());
}

/// `task.cancel`: a pending task is marked `cancelling`; the operation gives up at its next
/// checkpoint and the task ends `cancelled`.
pub fn cancel(model: &Model, task_ref: &str) -> ApiResult<()> {
    model.write(|tx| {
        let row = tx.data().expect(class::task, task_ref)?;
        if row.str(task::STATUS) != "pending" {
            return Err(ApiError::operation_not_allowed(format!("task {task_ref} is {}, not pending", row.str(task::STATUS))));
        }
        tx.set(class::task, task_ref, task::STATUS, Value::str("cancelling"))
    })?;
    model.tasks.cancelling.lock().insert(task_ref.to_owned());
    Ok(())
}

/// Raises TASK_CANCELLED when the caller's task was cancelled: operations call it before
/// each step that cannot be undone.
pub fn checkpoint(model: &Model, task_ref: Option<&str>) -> ApiResult<()> {
    match task_ref {
        Some(t) if model.tasks.is_cancelling(t) => Err(ApiError::new(codes::TASK_CANCELLED, [t])),
        _ => Ok(()),
    }
}

pub fn destroy(model: &Model, task_ref: &str) -> ApiResult<()> {
    model.write(|tx| tx.remove(class::task, task_ref).map(|_| ()))?;
    model.tasks.forget(task_ref);
    Ok(())
}
