//! How the command line fails: each failure has an exit code (1 the operation failed, 3 the
//! server cannot be reached or will not let us in; clap's own usage errors are 2) and one line
//! a person can read. Xen-API errors keep their raw code beside the words:
//! `Error: VM_BAD_POWER_STATE: vm1 is halted, expected running`.

use std::collections::HashMap;
use std::fmt;
use std::process::ExitCode;

#[derive(Debug)]
pub enum Failure {
    /// The server refused the operation: a Xen-API error code and its arguments.
    Api { code: String, args: Vec<String> },
    /// Something this side found wrong (an unknown VM, a bad config file, a missing disk).
    Failed(String),
    /// The server cannot be reached, or does not speak the Xen-API.
    Unreachable(String),
    /// The server is there but the credentials are missing or refused.
    Auth(String),
}

pub type Result<T> = std::result::Result<T, Failure>;

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Api { code, .. } if code == "SESSION_AUTHENTICATION_FAILED" => 3,
            Failure::Api { .. } | Failure::Failed(_) => 1,
            Failure::Unreachable(_) | Failure::Auth(_) => 3,
        })
    }

    pub fn api(description: Vec<String>) -> Failure {
        let mut it = description.into_iter();
        let code = it.next().unwrap_or_else(|| "INTERNAL_ERROR".into());
        Failure::Api { code, args: it.collect() }
    }
}

/// Replaces object references in error arguments by the names the user knows them by.
pub struct Names(pub HashMap<String, String>);

impl Names {
    fn name<'a>(&'a self, s: &'a str) -> &'a str {
        self.0.get(s).map(String::as_str).unwrap_or(s)
    }
}

fn mib(bytes: &str) -> String {
    bytes.parse::<u64>().map(|b| format!("{} MiB", b >> 20)).unwrap_or_else(|_| bytes.to_owned())
}

/// Words for the Xen-API errors a command-line user meets; the raw arguments otherwise.
pub fn describe_api(code: &str, args: &[String], names: &Names) -> String {
    let a = |i: usize| args.get(i).map(|s| names.name(s)).unwrap_or("");
    match (code, args.len()) {
        ("VM_BAD_POWER_STATE", 3) => format!("{} is {}, expected {}", a(0), a(2), a(1).replace(", ", " or ")),
        ("HANDLE_INVALID", 2) => format!("there is no {} {} (it may have just been removed)", a(0), a(1)),
        ("UUID_INVALID", 2) => format!("there is no {} with UUID {}", a(0), a(1)),
        ("SESSION_AUTHENTICATION_FAILED", _) => {
            format!("the server refused the user name or password{}", if a(0).is_empty() { String::new() } else { format!(" of {}", a(0)) })
        }
        ("SESSION_INVALID", _) => "the session ended (the server may have restarted); run the command again".into(),
        ("RBAC_PERMISSION_DENIED", 2) => a(1).to_owned(),
        ("HOST_NOT_ENOUGH_FREE_MEMORY", 2) => format!("the host has {} free, the VM needs {}", mib(a(1)), mib(a(0))),
        ("HOST_NOT_ENOUGH_PCPUS", 2) => format!("the VM wants {} vCPUs but the host has {} CPUs", a(0), a(1)),
        ("MEMORY_CONSTRAINT_VIOLATION", 1) => a(0).to_owned(),
        ("INVALID_VALUE", 2) => format!("{} is not a valid value for {}", a(1), a(0)),
        ("VM_SHUTDOWN_TIMEOUT", 2) => {
            format!("{} did not shut down within {} seconds; `shutdown --force` or `destroy` stops it", a(0), a(1))
        }
        ("OTHER_OPERATION_IN_PROGRESS", 4) => format!("{} {} is busy with {}; try again when it is done", a(0), a(1), a(2)),
        ("OPERATION_NOT_ALLOWED", 1) => a(0).to_owned(),
        ("DEVICE_ALREADY_ATTACHED", 1) => format!("device {} is already attached", a(0)),
        ("DEVICE_ALREADY_DETACHED", 1) => format!("device {} is already detached", a(0)),
        ("DEVICE_ALREADY_EXISTS", 1) => format!("device {} is already in use", a(0)),
        ("VDI_IN_USE", 2) => format!("disk {} is in use by a running VM", a(0)),
        ("VDI_LOCATION_MISSING", 2) => format!("{} does not exist on the server's host", a(1)),
        ("LOCATION_NOT_UNIQUE", 2) => format!("{} is already registered as a disk", a(1)),
        ("MAC_INVALID", 1) => format!("{} is not a valid MAC address", a(0)),
        ("VM_MEMORY_SIZE_TOO_LOW", 1) => format!("{} has no memory configured", a(0)),
        ("VM_IS_TEMPLATE", _) => format!("{} is a template, not a VM that runs", a(0)),
        ("VM_IS_SNAPSHOT", _) => format!("{} is a snapshot", a(0)),
        ("NOT_IMPLEMENTED", 1) => format!("the server does not implement {}", a(0)),
        ("MESSAGE_METHOD_UNKNOWN", 1) => format!("the server does not know {} (is it an older xencim?)", a(0)),
        ("SR_BACKEND_FAILURE", 3) => format!("storage: {} {}: {}", a(0), a(1), a(2)),
        ("TASK_CANCELLED", _) => "the operation was cancelled".into(),
        ("NETWORK_CONTAINS_VIF", _) => "the network still has interfaces".into(),
        (_, 0) => "(no details)".into(),
        _ => args.iter().map(|s| names.name(s)).collect::<Vec<_>>().join(", "),
    }
}

/// A failure as printed, without the `Error: ` prefix.
pub fn render(f: &Failure, names: &Names) -> String {
    match f {
        Failure::Api { code, args } => format!("{code}: {}", describe_api(code, args, names)),
        Failure::Failed(m) | Failure::Unreachable(m) | Failure::Auth(m) => m.clone(),
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(self, &Names(HashMap::new())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_in_words_with_their_code() {
        let names = Names([("OpaqueRef:1".to_owned(), "vm1".to_owned())].into());
        let f = Failure::api(vec!["VM_BAD_POWER_STATE".into(), "OpaqueRef:1".into(), "running".into(), "halted".into()]);
        assert_eq!(render(&f, &names), "VM_BAD_POWER_STATE: vm1 is halted, expected running");
        let f = Failure::api(vec!["VM_BAD_POWER_STATE".into(), "OpaqueRef:2".into(), "paused, suspended, running".into(), "halted".into()]);
        assert_eq!(render(&f, &names), "VM_BAD_POWER_STATE: OpaqueRef:2 is halted, expected paused or suspended or running");
        let f = Failure::api(vec!["HOST_NOT_ENOUGH_FREE_MEMORY".into(), (2u64 << 30).to_string(), (1u64 << 30).to_string()]);
        assert_eq!(render(&f, &names), "HOST_NOT_ENOUGH_FREE_MEMORY: the host has 1024 MiB free, the VM needs 2048 MiB");
        // Codes without words of their own show their raw arguments.
        let f = Failure::api(vec!["SR_FULL".into(), "10".into(), "5".into()]);
        assert_eq!(render(&f, &names), "SR_FULL: 10, 5");
        assert_eq!(render(&Failure::api(vec!["EVENTS_LOST".into()]), &names), "EVENTS_LOST: (no details)");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Failure::api(vec!["VM_BAD_POWER_STATE".into()]).exit_code(), ExitCode::from(1));
        assert_eq!(Failure::api(vec!["SESSION_AUTHENTICATION_FAILED".into()]).exit_code(), ExitCode::from(3));
        assert_eq!(Failure::Failed("x".into()).exit_code(), ExitCode::from(1));
        assert_eq!(Failure::Unreachable("x".into()).exit_code(), ExitCode::from(3));
        assert_eq!(Failure::Auth("x".into()).exit_code(), ExitCode::from(3));
    }
}
