//! What the command line prints: xm's `list` table and state letters, whole records for
//! `--long`, JSON for scripts, and a spinner for long operations that only a terminal sees.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;
use xenapi::value::Value;

/// A spinner driven by a task's progress; nothing at all when stdout is not a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn start(label: &str) -> Progress {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {percent:>3}%").unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress { bar }
    }

    pub fn set(&self, fraction: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position((fraction.clamp(0.0, 1.0) * 100.0).round() as u64);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// An integer from the wire, where Xen-API ints travel as strings.
pub fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Int(i) => Some(*i),
        Value::Str(s) => s.trim().parse().ok(),
        Value::Float(f) => Some(*f as i64),
        _ => None,
    }
}

pub fn string(v: Option<&Value>) -> String {
    v.map(super::connection::text).unwrap_or_default()
}

/// xm's state column: r(unning) b(locked) p(aused) s(hut down) c(rashed) d(ying). A suspended
/// VM is a domain shut down for suspension, so it shows `s`; a halted one shows dashes.
pub fn state_letters(power_state: &str) -> &'static str {
    match power_state {
        "Running" => "r-----",
        "Paused" => "--p---",
        "Suspended" => "---s--",
        _ => "------",
    }
}

/// One row of `list`.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub uuid: String,
    pub domid: Option<i64>,
    pub memory_mib: i64,
    pub vcpus: i64,
    pub power_state: String,
    /// Guest CPU seconds, when the server reports them.
    pub cpu_seconds: Option<f64>,
}

pub fn table(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(0).clamp(40, 64);
    let mut out = format!("{:<width$} {:>5} {:>5} {:>5} {:>10} {:>9}\n", "Name", "ID", "Mem", "VCPUs", "State", "Time(s)");
    for r in rows {
        let id = r.domid.map(|d| d.to_string()).unwrap_or_default();
        let time = r.cpu_seconds.map(|t| format!("{t:.1}")).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<width$} {:>5} {:>5} {:>5} {:>10} {:>9}\n",
            r.name,
            id,
            r.memory_mib,
            r.vcpus,
            state_letters(&r.power_state),
            time
        ));
    }
    out
}

pub fn row_json(r: &Row) -> serde_json::Value {
    serde_json::json!({
        "name": r.name,
        "uuid": r.uuid,
        "domid": r.domid,
        "memory_mib": r.memory_mib,
        "vcpus": r.vcpus,
        "state": state_letters(&r.power_state),
        "power_state": r.power_state,
        "cpu_seconds": r.cpu_seconds,
    })
}

/// A wire value as JSON; numbers that travel as strings stay strings, as the record has them.
pub fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Str(s) | Value::DateTime(s) => J::String(s.clone()),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
        Value::Bool(b) => J::Bool(*b),
        Value::Array(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Struct(members) => J::Object(members.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        _ => J::Null,
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) | Value::DateTime(s) => Some(if s.is_empty() { "''".into() } else { s.clone() }),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A record as indented `key: value` lines (nested maps and lists indented further).
pub fn write_record(out: &mut String, indent: usize, v: &Value) {
    let pad = " ".repeat(indent);
    match v {
        Value::Struct(members) => {
            for (k, v) in members {
                match (scalar(v), v) {
                    (Some(s), _) => out.push_str(&format!("{pad}{k}: {s}\n")),
                    (None, Value::Array(items)) if items.is_empty() => out.push_str(&format!("{pad}{k}: []\n")),
                    (None, Value::Struct(m)) if m.is_empty() => out.push_str(&format!("{pad}{k}: {{}}\n")),
                    (None, Value::Array(items)) if items.iter().all(|i| scalar(i).is_some()) => {
                        let joined: Vec<String> = items.iter().filter_map(scalar).collect();
                        out.push_str(&format!("{pad}{k}: [{}]\n", joined.join(", ")));
                    }
                    _ => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        write_record(out, indent + 2, v);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match scalar(item) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        out.push_str(&format!("{pad}-\n"));
                        write_record(out, indent + 2, item);
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
    }
}

/// `1 day, 2:03:04` as xm's `uptime` writes it.
pub fn uptime(seconds: i64) -> String {
    let s = seconds.max(0);
    let (days, rest) = (s / 86400, s % 86400);
    let clock = format!("{:2}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    match days {
        0 => clock,
        1 => format!("1 day, {clock}"),
        d => format!("{d} days, {clock}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_table_has_xms_columns() {
        let rows = vec![
            Row {
                name: "Domain-0".into(),
                uuid: "0".into(),
                domid: Some(0),
                memory_mib: 1024,
                vcpus: 1,
                power_state: "Running".into(),
                cpu_seconds: Some(12.34),
            },
            Row {
                name: "vm1".into(),
                uuid: "1".into(),
                domid: None,
                memory_mib: 256,
                vcpus: 2,
                power_state: "Halted".into(),
                cpu_seconds: None,
            },
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["Name", "ID", "Mem", "VCPUs", "State", "Time(s)"]);
        assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["Domain-0", "0", "1024", "1", "r-----", "12.3"]);
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["vm1", "256", "2", "------", "-"]);
        assert_eq!(state_letters("Paused"), "--p---");
        assert_eq!(row_json(&rows[1])["domid"], serde_json::Value::Null);
    }

    #[test]
    fn records_and_uptimes() {
        let rec = Value::Struct(vec![
            ("name_label".into(), Value::str("vm1")),
            ("tags".into(), Value::Array(vec![])),
            ("other_config".into(), Value::Struct(vec![("a".into(), Value::str("b"))])),
            ("VCPUs_max".into(), Value::str("2")),
        ]);
        let mut out = String::new();
        write_record(&mut out, 0, &rec);
        assert_eq!(out, "name_label: vm1\ntags: []\nother_config:\n  a: b\nVCPUs_max: 2\n");
        assert_eq!(uptime(59), " 0:00:59");
        assert_eq!(uptime(86400 + 3723), "1 day,  1:02:03");
        assert_eq!(uptime(3 * 86400), "3 days,  0:00:00");
    }
}
