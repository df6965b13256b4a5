//! The event pump: one reader thread per QMP connection hands QEMU's events and the end of the
//! connection to the domain, which keeps its run state, tells the changes the backend asked for
//! (an intent is set) from those the guest or a killer made, and turns the latter into
//! [`DomainEvent`]s. It also holds the small waits operations need (process gone, an event seen).

use super::qmp::{Incoming, QmpError};
use super::state::{self, Persisted};
use super::{backend, metrics, process, qmp_error, DomState, Domain, Inner, Intent, EVENT_LOG, EXIT_GRACE};
use crate::{DomainEvent, DomainInfo, HypervisorError, Result, RunState, ShutdownReason};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) fn shutdown_reason(reason: &str) -> ShutdownReason {
    match reason {
        "guest-shutdown" => ShutdownReason::Poweroff,
        "guest-reset" => ShutdownReason::Reboot,
        // A panic, or someone outside the backend ending QEMU (host-signal): the guest did not
        // choose to stop, which is a crash to the model.
        _ => ShutdownReason::Crash,
    }
}

/// What the reader thread of a domain's QMP connection does with what it reads.
pub(super) fn dispatch(domain: &Arc<Domain>, inner: Option<&Inner>, msg: Incoming) {
    match msg {
        Incoming::Event { name, data } => domain.on_event(inner, &name, data),
        Incoming::Closed => domain.on_closed(inner),
    }
}

impl Domain {
    pub(super) fn state(&self) -> parking_lot::MutexGuard<'_, DomState> {
        self.st.lock()
    }

    pub(super) fn execute(&self, command: &str, arguments: Option<Value>) -> Result<Value> {
        self.qmp.execute(command, arguments).map_err(|e| qmp_error(self.uuid, e))
    }

    pub(super) fn ensure_live(&self) -> Result<()> {
        if self.state().closing {
            return Err(HypervisorError::NoSuchDomain(self.uuid));
        }
        Ok(())
    }

    pub(super) fn require(&self, wanted: RunState) -> Result<()> {
        let st = self.state();
        if st.closing {
            return Err(HypervisorError::NoSuchDomain(self.uuid));
        }
        if st.run != wanted {
            return Err(HypervisorError::BadState { uuid: self.uuid, state: st.run });
        }
        Ok(())
    }

    pub(super) fn set_intent(&self, intent: Intent) {
        self.state().intent = intent;
    }

    /// Takes back an intent that did not come about (the guest ignored a power-button press):
    /// false if the process is already ending under it, in which case the caller waits.
    pub(super) fn withdraw_intent(&self) -> bool {
        let mut st = self.state();
        if st.closing {
            return false;
        }
        st.intent = Intent::None;
        true
    }

    pub(super) fn wait_gone(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut st = self.state();
        while !st.gone {
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                return st.gone;
            }
        }
        true
    }

    pub(super) fn event_mark(&self) -> u64 {
        self.state().event_seq
    }

    /// Waits for an event after `mark` that `matches`; false on timeout or if the domain ends.
    pub(super) fn wait_event(&self, mark: u64, limit: Duration, matches: impl Fn(&str, &Value) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let mut st = self.state();
        loop {
            if st.events.iter().any(|(seq, name, data)| *seq > mark && matches(name, data)) {
                return true;
            }
            if st.gone || self.changed.wait_until(&mut st, deadline).timed_out() {
                return st.events.iter().any(|(seq, name, data)| *seq > mark && matches(name, data));
            }
        }
    }

    pub(super) fn persist(&self) -> Result<()> {
        let p = {
            let st = self.state();
            Persisted { record: st.record.clone(), domid: st.domid, pid: self.pid, start_time: st.start_time }
        };
        state::save(&self.dir, &p).map_err(|e| backend(format!("cannot record domain state in {}: {e}", self.dir.display())))
    }

    pub(super) fn refresh_vcpu_threads(&self) -> Result<()> {
        let cpus = self.execute("query-cpus-fast", None)?;
        let mut threads: Vec<(i64, i32)> = cpus
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c.get("cpu-index")?.as_i64()?, c.get("thread-id")?.as_i64()? as i32)))
            .collect();
        threads.sort_unstable();
        self.state().vcpu_threads = threads.into_iter().map(|(_, tid)| tid).collect();
        Ok(())
    }

    pub(super) fn refresh_balloon(&self) {
        if let Ok(v) = self.execute("query-balloon", None) {
            if let Some(actual) = v.get("actual").and_then(Value::as_u64) {
                self.state().memory_actual = actual;
            }
        }
    }

    pub(super) fn info(&self) -> Option<DomainInfo> {
        let st = self.state();
        if st.gone {
            return None;
        }
        Some(DomainInfo {
            uuid: self.uuid,
            domid: st.domid,
            state: st.run,
            vcpus: st.record.vcpus(),
            memory_actual: st.memory_actual,
            memory_reserved: self.reservation,
            vcpu_time_ns: st.vcpu_threads.iter().map(|tid| metrics::thread_cpu_ns(self.pid, *tid)).collect(),
            start_time: st.start_time,
            disks: st.record.disks.iter().map(|d| d.device.clone()).collect(),
            nics: st.record.nics.iter().map(|n| n.device.clone()).collect(),
        })
    }

    /// Runs on the QMP reader thread: it must not wait for QMP replies.
    pub(super) fn on_event(&self, inner: Option<&Inner>, name: &str, data: Value) {
        let mut emit = None;
        {
            let mut st = self.state();
            st.event_seq += 1;
            let seq = st.event_seq;
            st.events.push_back((seq, name.to_owned(), data.clone()));
            if st.events.len() > EVENT_LOG {
                st.events.pop_front();
            }
            let ours = st.intent != Intent::None;
            match name {
                "STOP" if st.run == RunState::Running && !ours => {
                    st.run = RunState::Paused;
                    emit = Some(DomainEvent::Paused { uuid: self.uuid, domid: st.domid });
                }
                "RESUME" if st.run == RunState::Paused && !ours => {
                    st.run = RunState::Running;
                    emit = Some(DomainEvent::Resumed { uuid: self.uuid, domid: st.domid });
                }
                "SHUTDOWN" => {
                    let reason = data.get("reason").and_then(Value::as_str).unwrap_or("");
                    if st.exit_reason.is_none() {
                        st.exit_reason = Some(shutdown_reason(reason));
                    }
                    tracing::info!(uuid = %self.uuid, domid = st.domid, reason, "qemu: guest is shutting down");
                }
                "GUEST_PANICKED" => {
                    st.exit_reason = Some(ShutdownReason::Crash);
                }
                "RESET" if st.intent != Intent::Reset => {
                    // QEMU turns guest resets into shutdowns (-action reboot=shutdown), so a
                    // reset we did not ask for means that setting was lost. The model expects a
                    // reboot to end the domain and start a new one: end this one as a reboot.
                    tracing::warn!(uuid = %self.uuid, domid = st.domid, "qemu: unexpected in-place reset; ending the process as a reboot");
                    st.exit_reason = Some(ShutdownReason::Reboot);
                    let _ = self.qmp.send_detached("quit", None);
                }
                "BALLOON_CHANGE" => {
                    if let Some(actual) = data.get("actual").and_then(Value::as_u64) {
                        st.memory_actual = actual;
                    }
                }
                _ => {}
            }
        }
        self.changed.notify_all();
        if let (Some(event), Some(inner)) = (emit, inner) {
            let _ = inner.events.send(event);
        }
    }

    /// The QMP connection ended: the process has died or is about to. Runs on the reader thread.
    /// May run twice (from the reader thread and from whoever saw the connection closed before
    /// the reader could reach the domain); the first call does the work.
    pub(super) fn on_closed(self: &Arc<Self>, inner: Option<&Inner>) {
        let (intent, reason, domid) = {
            let mut st = self.state();
            if st.closing {
                return;
            }
            st.closing = true;
            (st.intent, st.exit_reason, st.domid)
        };
        self.changed.notify_all();
        if !process::wait_gone(self.pid, EXIT_GRACE) {
            // Whatever closed the monitor, a QEMU we cannot talk to must not keep a guest
            // running behind the model's back.
            tracing::warn!(uuid = %self.uuid, pid = self.pid, "qemu: QMP closed but the process lives on; killing it");
            process::kill_and_wait(self.pid, EXIT_GRACE);
        }
        // Files first, table entry second: a new process for this VM may only be started once
        // the entry is gone, and must find the directory clean.
        for name in [state::RECORD_FILE, state::PID_FILE, state::QMP_SOCKET] {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
        let _ = std::fs::remove_dir(&self.dir);
        if let Some(inner) = inner {
            let mut table = inner.table.lock();
            if table.domains.get(&self.uuid).is_some_and(|d| Arc::ptr_eq(d, self)) {
                table.domains.remove(&self.uuid);
                if intent == (Intent::Exit { keep_reservation: true }) {
                    table.pending.insert(self.uuid, self.reservation);
                }
            }
        }
        self.state().gone = true;
        self.changed.notify_all();
        if matches!(intent, Intent::Exit { .. }) {
            tracing::info!(uuid = %self.uuid, domid, "qemu: process ended as asked");
            return;
        }
        let reason = reason.unwrap_or(ShutdownReason::Crash);
        tracing::info!(uuid = %self.uuid, domid, ?reason, "qemu: domain ended on its own");
        if let Some(inner) = inner {
            let _ = inner.events.send(DomainEvent::Shutdown { uuid: self.uuid, domid, reason });
        }
    }

    /// The reader thread may have seen the connection close before the domain existed to hear
    /// it; call once the domain is in the table.
    pub(super) fn catch_early_close(self: &Arc<Self>, inner: &Inner) {
        if self.qmp.is_closed() {
            self.on_closed(Some(inner));
        }
    }

    /// Ends the process now: `quit`, then SIGKILL if QEMU does not go in time.
    pub(super) fn force_end(&self, quit_timeout: Duration) -> Result<()> {
        match self.qmp.execute_timeout("quit", None, Duration::from_secs(5)) {
            Ok(_) | Err(QmpError::Closed) => {}
            Err(e) => {
                tracing::warn!(uuid = %self.uuid, error = %e, "qemu: quit failed; killing the process");
                process::kill(self.pid, libc::SIGKILL);
            }
        }
        if self.wait_gone(quit_timeout) {
            return Ok(());
        }
        tracing::warn!(uuid = %self.uuid, pid = self.pid, "qemu: process did not quit in time; killing it");
        process::kill(self.pid, libc::SIGKILL);
        if self.wait_gone(quit_timeout) {
            Ok(())
        } else {
            Err(backend(format!("the QEMU process {} of VM {} does not end", self.pid, self.uuid)))
        }
    }
}
