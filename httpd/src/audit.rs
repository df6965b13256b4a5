//! The audit log: one JSON line per login and per state-changing call on either door (who,
//! from where, what, on which object, and the result). Passwords and call parameters never go
//! in: only the user name, the operation name and the target object.

use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One audited event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent<'a> {
    /// `xenapi` or `wbem`.
    pub door: &'a str,
    pub user: &'a str,
    pub peer: IpAddr,
    /// `login`, a Xen-API message (`VM.start`) or a CIM operation (`DeleteInstance`, a method name).
    pub action: &'a str,
    /// For a login, how the caller proved who it is: `password` or `client-cert`.
    pub method: Option<&'a str>,
    /// The object acted on, when there is one (a Xen-API ref, a CIM object path).
    pub target: Option<&'a str>,
    /// `Ok` or the error code / reason.
    pub result: Result<(), String>,
}

/// Where audit events go. The doors call it after the operation, on the thread that ran it.
pub trait AuditSink: Send + Sync {
    fn record(&self, event: &AuditEvent<'_>);
}

/// The JSON-lines audit file, opened for appending (mode 0600). A write that fails (a full
/// disk) is reported in the daemon's log and does not fail the call: the call has already
/// happened by then.
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
        Ok(AuditLog { path: path.to_owned(), file: Mutex::new(file) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The line written for an event, without the trailing newline.
pub fn audit_line(event: &AuditEvent<'_>) -> String {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut obj = serde_json::Map::new();
    obj.insert("time".into(), time.into());
    obj.insert("door".into(), event.door.into());
    obj.insert("user".into(), event.user.into());
    obj.insert("peer".into(), event.peer.to_string().into());
    obj.insert("action".into(), event.action.into());
    if let Some(m) = event.method {
        obj.insert("method".into(), m.into());
    }
    if let Some(t) = event.target {
        obj.insert("target".into(), t.into());
    }
    match &event.result {
        Ok(()) => obj.insert("result".into(), "ok".into()),
        Err(e) => obj.insert("result".into(), format!("error: {e}").into()),
    };
    serde_json::Value::Object(obj).to_string()
}

impl AuditSink for AuditLog {
    fn record(&self, event: &AuditEvent<'_>) {
        let mut line = audit_line(event);
        line.push('\n');
        // One write per line on an O_APPEND file: lines from concurrent calls never interleave.
        if let Err(e) = self.file.lock().write_all(line.as_bytes()) {
            tracing::error!(path = %self.path.display(), error = %e, action = event.action, user = event.user, "cannot write the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_the_fields_and_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.log");
        let log = AuditLog::open(&path).unwrap();
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        log.record(&AuditEvent {
            door: "xenapi",
            user: "al\"ice",
            peer,
            action: "VM.start",
            method: None,
            target: Some("OpaqueRef:1"),
            result: Ok(()),
        });
        log.record(&AuditEvent {
            door: "wbem",
            user: "bob",
            peer,
            action: "login",
            method: Some("password"),
            target: None,
            result: Err("bad credentials".into()),
        });
        drop(log);
        let again = AuditLog::open(&path).unwrap();
        again.record(&AuditEvent { door: "wbem", user: "bob", peer, action: "DeleteInstance", method: None, target: None, result: Ok(()) });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["user"], "al\"ice");
        assert_eq!(lines[0]["target"], "OpaqueRef:1");
        assert_eq!(lines[0]["result"], "ok");
        assert_eq!(lines[1]["result"], "error: bad credentials");
        assert!(lines[1].get("target").is_none());
        assert_eq!(lines[1]["method"], "password");
        assert!(lines[0].get("method").is_none());
        assert_eq!(lines[2]["action"], "DeleteInstance");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
