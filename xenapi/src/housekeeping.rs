//! Periodic upkeep: idle sessions logged out, finished tasks removed, host metrics refreshed.

use crate::datamodel::{class, host, host_metrics};
use crate::model::Model;
use crate::value::Value;
use std::sync::Arc;
use std::time::Duration;

const PERIOD: Duration = Duration::from_secs(5);

pub fn spawn(model: &Arc<Model>) {
    let weak = Arc::downgrade(model);
    std::thread::Builder::new()
        .name("housekeeping".into())
        .spawn(move || loop {
            std::thread::sleep(PERIOD);
            let Some(model) = weak.upgrade() else { break };
            run_once(&model);
        })
        .expect("spawn the housekeeping thread");
}

/// Hands freed memory back to the kernel. Large responses and start-up leave big free blocks
/// in glibc's heaps that it would otherwise keep (the RSS goal is measured, see bench/).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

pub fn run_once(model: &Model) {
    release_free_memory();
    for session_ref in model.sessions.expired(model.config.session_idle_timeout) {
        tracing::info!(session = %session_ref, "idle session expired");
        let _ = crate::sessions::logout(model, &session_ref);
    }
    for task_ref in model.tasks.expired(model.config.task_retention) {
        let _ = crate::tasks::destroy(model, &task_ref);
    }
    let free = model.hv.host_info().memory_free as i64;
    let _ = model.write(|tx| {
        let metrics = tx.data().expect(class::host, &model.known.host)?.str(host::METRICS).to_owned();
        tx.set(class::host_metrics, &metrics, host_metrics::MEMORY_FREE, Value::Int(free))
    });
}
