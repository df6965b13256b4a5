//! Which VM a command-line argument means: a UUID, a name_label, a running domain's ID (as
//! xm accepts), or a unique UUID prefix. An ambiguous argument is an error that lists the
//! candidates, never a guess.

use super::connection::{text, Connection};
use super::errors::{Failure, Result};
use super::output::{int, string};
use xenapi::value::Value;

#[derive(Clone, Debug)]
pub struct Vm {
    pub reference: String,
    pub record: Value,
}

impl Vm {
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.record.member(name)
    }
    pub fn name(&self) -> String {
        string(self.field("name_label"))
    }
    pub fn uuid(&self) -> String {
        string(self.field("uuid"))
    }
    pub fn power_state(&self) -> String {
        string(self.field("power_state"))
    }
    pub fn domid(&self) -> Option<i64> {
        int(self.field("domid")).filter(|d| *d >= 0 && matches!(self.power_state().as_str(), "Running" | "Paused"))
    }
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.field(name), Some(Value::Bool(true)))
    }
    /// A VM that runs or could: not a template or a snapshot.
    pub fn is_guest_or_dom0(&self) -> bool {
        !self.flag("is_a_template") && !self.flag("is_a_snapshot")
    }
    pub fn refs(&self, name: &str) -> Vec<String> {
        match self.field(name) {
            Some(Value::Array(items)) => items.iter().map(text).collect(),
            _ => Vec::new(),
        }
    }
}

/// `Class.get_all_records` as (ref, record) pairs.
pub fn all_records(c: &Connection, class: &str) -> Result<Vec<(String, Value)>> {
    match c.call(&format!("{class}.get_all_records"), &[])? {
        Value::Struct(members) => Ok(members),
        _ => Ok(Vec::new()),
    }
}

pub fn all_vms(c: &Connection) -> Result<Vec<Vm>> {
    Ok(all_records(c, "VM")?.into_iter().map(|(reference, record)| Vm { reference, record }).collect())
}

fn describe_candidates(arg: &str, found: &[&Vm]) -> String {
    let mut s = format!("'{arg}' is ambiguous: {} VMs match:\n", found.len());
    for vm in found {
        s.push_str(&format!("  {:<24} {}  {}\n", vm.name(), vm.uuid(), vm.power_state().to_lowercase()));
    }
    s.push_str("name one by its UUID (or a prefix of it that no other VM shares)");
    s
}

/// Picks the VM `arg` names among `vms`.
pub fn pick<'a>(vms: &'a [Vm], arg: &str) -> std::result::Result<&'a Vm, String> {
    let lower = arg.to_ascii_lowercase();
    if let Some(vm) = vms.iter().find(|v| v.uuid() == lower) {
        return Ok(vm);
    }
    let by_name: Vec<&Vm> = vms.iter().filter(|v| v.name() == arg).collect();
    match by_name.len() {
        1 => return Ok(by_name[0]),
        0 => {}
        _ => return Err(describe_candidates(arg, &by_name)),
    }
    if let Ok(domid) = arg.parse::<i64>() {
        if let Some(vm) = vms.iter().find(|v| v.domid() == Some(domid)) {
            return Ok(vm);
        }
    }
    if !lower.is_empty() && lower.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        let by_prefix: Vec<&Vm> = vms.iter().filter(|v| v.uuid().starts_with(&lower)).collect();
        match by_prefix.len() {
            1 => return Ok(by_prefix[0]),
            0 => {}
            _ => return Err(describe_candidates(arg, &by_prefix)),
        }
    }
    Err(format!("no VM is named '{arg}', and no VM's UUID or domain ID matches it (`xencim list --all` shows them all)"))
}

/// Resolves `arg` against the server's VMs and remembers its name for error messages.
pub fn resolve(c: &Connection, arg: &str) -> Result<Vm> {
    let vms = all_vms(c)?;
    let vm = pick(&vms, arg).map_err(Failure::Failed)?.clone();
    c.remember(&vm.reference, &vm.name());
    Ok(vm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(name: &str, uuid: &str, state: &str, domid: i64) -> Vm {
        Vm {
            reference: format!("OpaqueRef:{uuid}"),
            record: Value::Struct(vec![
                ("uuid".into(), Value::str(uuid)),
                ("name_label".into(), Value::str(name)),
                ("power_state".into(), Value::str(state)),
                ("domid".into(), Value::str(domid.to_string())),
            ]),
        }
    }

    #[test]
    fn names_uuids_prefixes_and_domids() {
        let vms = vec![
            vm("web", "aaaa1111-0000-0000-0000-000000000001", "Running", 3),
            vm("web", "aaaa2222-0000-0000-0000-000000000002", "Halted", -1),
            vm("db", "bbbb0000-0000-0000-0000-000000000003", "Running", 4),
            vm("7", "cccc0000-0000-0000-0000-000000000004", "Halted", -1),
        ];
        assert_eq!(pick(&vms, "db").unwrap().name(), "db");
        assert_eq!(pick(&vms, "AAAA2222-0000-0000-0000-000000000002").unwrap().power_state(), "Halted");
        assert_eq!(pick(&vms, "bbbb").unwrap().name(), "db");
        assert_eq!(pick(&vms, "aaaa1").unwrap().domid(), Some(3));
        assert_eq!(pick(&vms, "4").unwrap().name(), "db");
        // A name wins over a domain ID.
        assert_eq!(pick(&vms, "7").unwrap().uuid(), "cccc0000-0000-0000-0000-000000000004");
        let e = pick(&vms, "web").unwrap_err();
        assert!(e.contains("'web' is ambiguous: 2 VMs match") && e.contains("aaaa1111") && e.contains("aaaa2222"), "{e}");
        assert!(e.contains("running") && e.contains("halted"));
        assert!(pick(&vms, "aaaa").unwrap_err().contains("ambiguous"));
        assert!(pick(&vms, "nosuch").unwrap_err().contains("no VM is named 'nosuch'"));
        // A halted VM has no domain ID to match.
        assert!(pick(&vms, "-1").is_err());
    }
}
