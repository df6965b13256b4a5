//! The model: the registry plus the hypervisor it drives, the well-known objects (pool, host,
//! dom0, local SR, default network) and the bookkeeping every write shares.

use crate::datamodel::{class, vm, ClassId, FieldId};
use crate::db::{Db, Ref, Tx};
use crate::error::ApiResult;
use crate::store::Store;
use crate::value::Value;
use httpd::Authenticator;
use hypervisor::Hypervisor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub state_dir: PathBuf,
    /// Sessions idle for longer than this are logged out.
    pub session_idle_timeout: Duration,
    /// Finished tasks are destroyed this long after they finish.
    pub task_retention: Duration,
    /// How long a clean shutdown waits for the guest before it fails with VM_SHUTDOWN_TIMEOUT.
    pub clean_shutdown_timeout: Duration,
    /// Events a session registered with `event.register` may have waiting before EVENTS_LOST.
    pub event_queue_limit: usize,
    /// Live sessions one user may hold; a login beyond it fails with TOO_MANY_SESSIONS.
    pub max_sessions_per_user: usize,
}

impl ModelConfig {
    pub fn new(state_dir: PathBuf) -> ModelConfig {
        ModelConfig {
            state_dir,
            session_idle_timeout: Duration::from_secs(24 * 3600),
            task_retention: Duration::from_secs(3600),
            clean_shutdown_timeout: Duration::from_secs(60),
            event_queue_limit: 10_000,
            max_sessions_per_user: 500,
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.state_dir.join("xencim.db")
    }

    pub fn sr_dir(&self, sr_uuid: &str) -> PathBuf {
        self.state_dir.join("sr").join(sr_uuid)
    }
}

/// The refs of the objects that exist from the first start on.
#[derive(Clone, Debug)]
pub struct WellKnown {
    pub pool: Ref,
    pub host: Ref,
    pub dom0: Ref,
    pub local_sr: Ref,
    pub default_network: Ref,
}

pub struct Model {
    pub db: Db,
    pub hv: Arc<dyn Hypervisor>,
    pub config: ModelConfig,
    pub known: WellKnown,
    pub auth: Arc<dyn Authenticator>,
    pub sessions: crate::sessions::Sessions,
    pub tasks: crate::tasks::Tasks,
    pub events: crate::events::Registrations,
}

impl Model {
    /// Opens the store in the state dir, creates the well-known objects on first start, and
    /// reconciles the recorded power states with what the hypervisor runs.
    pub fn open(config: ModelConfig, hv: Arc<dyn Hypervisor>, auth: Arc<dyn Authenticator>) -> anyhow::Result<Arc<Model>> {
        std::fs::create_dir_all(&config.state_dir)?;
        let store = Store::open(&config.store_path())?;
        let db = Db::open(store)?;
        let known = crate::bootstrap::ensure_well_known(&db, hv.as_ref(), &config)?;
        let model = Arc::new(Model {
            db,
            hv,
            known,
            auth,
            sessions: crate::sessions::Sessions::default(),
            tasks: crate::tasks::Tasks::default(),
            events: crate::events::Registrations::new(config.event_queue_limit),
            config,
        });
        crate::lifecycle::reconcile(&model)?;
        crate::housekeeping::release_free_memory();
        crate::guest_events::spawn(&model);
        crate::events::spawn_feeder(&model);
        crate::housekeeping::spawn(&model);
        Ok(model)
    }

    /// One transaction over the registry; every VM it touches gets its `allowed_operations`
    /// recomputed before the commit, so the field is always true.
    pub fn write<R>(&self, f: impl FnOnce(&mut Tx) -> ApiResult<R>) -> ApiResult<R> {
        self.db.write(|tx| {
            let r = f(tx)?;
            for vm_ref in tx.touched_refs(class::VM) {
                if tx.data().row(class::VM, &vm_ref).is_some() {
                    let ops = crate::lifecycle::allowed_operations(tx.data(), &vm_ref, &self.known);
                    tx.set(class::VM, &vm_ref, vm::ALLOWED_OPERATIONS, Value::Array(ops.into_iter().map(Value::str).collect()))?;
                }
            }
            Ok(r)
        })
    }

    /// A field of an object, or HANDLE_INVALID.
    pub fn field(&self, c: ClassId, r: &str, f: FieldId) -> ApiResult<Value> {
        Ok(self.db.read().expect(c, r)?.get(f).clone())
    }
}
