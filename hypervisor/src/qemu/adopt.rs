//! Adoption: after a daemon restart, the live QEMU processes of the earlier daemon are taken
//! over through their QMP sockets; the remains of dead ones are cleaned up.

use super::{process, state, DomState, Inner, Intent, EXIT_GRACE};
use crate::{DomId, RunState};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Maps QEMU's run state of an adopted process to ours; `None` for states that mean the daemon
/// died in the middle of an operation (or the guest is dead), whose process is ended.
pub(super) fn adopted_run_state(status: &str) -> Option<RunState> {
    match status {
        "running" | "suspended" => Some(RunState::Running),
        "paused" | "prelaunch" | "io-error" | "debug" | "watchdog" => Some(RunState::Paused),
        _ => None,
    }
}

/// Takes over the live QEMU processes found in the state dir and removes the remains of dead
/// ones.
pub(super) fn adopt_all(inner: &Arc<Inner>) {
    let Ok(entries) = std::fs::read_dir(inner.vms_dir()) else { return };
    let mut highest = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        let Some(uuid) = entry.file_name().to_str().and_then(|n| Uuid::parse_str(n).ok()) else { continue };
        match adopt_one(inner, uuid, &dir) {
            Ok(Some(domid)) => highest = highest.max(domid),
            Ok(None) => {}
            Err(e) => tracing::error!(%uuid, error = %e, "qemu: could not adopt a QEMU process; it was ended"),
        }
    }
    let mut table = inner.table.lock();
    table.next_domid = table.next_domid.max(highest + 1);
}

fn adopt_one(inner: &Arc<Inner>, uuid: Uuid, dir: &Path) -> std::result::Result<Option<DomId>, String> {
    let persisted = state::load(dir);
    let pid = state::read_pidfile(dir).or(persisted.as_ref().ok().map(|p| p.pid)).unwrap_or(0);
    let live = process::is_qemu_of(pid, &uuid);
    let clean = || {
        for name in [state::RECORD_FILE, state::PID_FILE, state::QMP_SOCKET, "domain.tmp"] {
            let _ = std::fs::remove_file(dir.join(name));
        }
        let _ = std::fs::remove_dir(dir);
    };
    if !live {
        tracing::info!(%uuid, "qemu: the QEMU process of an earlier daemon is gone; cleaning up");
        clean();
        return Ok(None);
    }
    let end = |why: String| {
        process::kill_and_wait(pid, EXIT_GRACE);
        clean();
        Err(why)
    };
    let persisted = match persisted {
        Ok(p) => p,
        Err(e) => return end(format!("its record is unreadable: {e}")),
    };
    let negotiated = match process::connect_qmp(dir, state::QMP_SOCKET, pid, Duration::from_secs(5), inner.config.qmp_timeout) {
        Ok(n) => n,
        Err(e) => return end(e),
    };
    let version = negotiated.version.clone();
    let reservation = inner.config.reservation(persisted.record.accel, persisted.record.memory_static_max);
    let st = DomState {
        domid: persisted.domid,
        run: RunState::Paused,
        intent: Intent::None,
        exit_reason: None,
        closing: false,
        gone: false,
        memory_actual: persisted.record.memory_target,
        record: persisted.record,
        start_time: persisted.start_time,
        vcpu_threads: Vec::new(),
        events: VecDeque::new(),
        event_seq: 0,
    };
    let domain = inner.adopt(negotiated, uuid, dir.to_path_buf(), pid, reservation, st);
    let status = domain.execute("query-status", None).map_err(|e| e.to_string());
    let run = match status.as_ref().map(|s| s.get("status").and_then(Value::as_str).unwrap_or("")) {
        Ok(s) => match adopted_run_state(s) {
            Some(run) => run,
            None => {
                let why = format!("it was left in state {s:?} by an interrupted operation");
                domain.set_intent(Intent::Exit { keep_reservation: false });
                let _ = domain.force_end(inner.config.quit_timeout);
                clean();
                return Err(why);
            }
        },
        Err(e) => {
            domain.set_intent(Intent::Exit { keep_reservation: false });
            return end(e.clone());
        }
    };
    domain.state().run = run;
    // An interrupted hard reboot may have left guest resets in place.
    let _ = domain.execute("set-action", Some(json!({"reboot": "shutdown"})));
    let _ = domain.refresh_vcpu_threads();
    domain.refresh_balloon();
    let domid = persisted.domid;
    inner.table.lock().domains.insert(uuid, domain.clone());
    domain.catch_early_close(inner);
    tracing::info!(%uuid, domid, pid, ?run, qemu = %format!("{}.{}.{}", version.major, version.minor, version.micro), "qemu: adopted a running QEMU process");
    Ok(Some(domid))
}
