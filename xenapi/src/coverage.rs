//! The Xen-API coverage document (docs/xenapi-coverage.md), generated from the datamodel and
//! the handler table so it cannot drift from the code.

use crate::datamodel::{type_name, CLASSES};
use crate::dispatch::{is_implemented, resolve, signature_text};
use std::fmt::Write;

pub fn coverage_markdown() -> String {
    let mut o = String::new();
    o.push_str("# Xen-API coverage\n\n");
    o.push_str("Generated from `xenapi/datamodel/classes.dm` and the handler table in `xenapi/src/dispatch.rs`\n");
    o.push_str("(`XENCIM_UPDATE_DOCS=1 cargo test -p xenapi coverage` rewrites it). A message marked *not\n");
    o.push_str("implemented* answers `NOT_IMPLEMENTED [Class.message]`; an unknown one `MESSAGE_METHOD_UNKNOWN`.\n");
    o.push_str("Every message of a class also exists as `Async.Class.message` (except getters, setters, `session.*`,\n");
    o.push_str("`task.*` and `event.*`), and as `Class_message`.\n\n");
    o.push_str("| class | fields | messages | implemented |\n|---|---|---|---|\n");
    for c in CLASSES {
        let names = names_of(c);
        let done = names.iter().filter(|m| is_implemented(c, m)).count();
        writeln!(o, "| {} | {} | {} | {} |", c.name, c.fields.len(), names.len(), done).unwrap();
    }
    for c in CLASSES {
        writeln!(o, "\n## {}\n\n{}\n", c.name, c.doc).unwrap();
        let names = names_of(c);
        let (done, missing): (Vec<_>, Vec<_>) = names.iter().partition(|m| is_implemented(c, m));
        o.push_str("Implemented:\n\n");
        for m in done {
            let params = resolve(&format!("{}.{m}", c.name)).map(|sig| signature_text(&sig)).unwrap_or_default();
            let ret = c.message(m).map(|d| type_name(d.ret)).unwrap_or_default();
            writeln!(o, "- `{m}({params})`{}", if ret.is_empty() { String::new() } else { format!(" → {ret}") }).unwrap();
        }
        if !missing.is_empty() {
            o.push_str("\nNot implemented: ");
            o.push_str(&missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "));
            o.push('\n');
        }
    }
    o
}

fn names_of(c: &crate::datamodel::ClassDef) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = c.messages.iter().map(|m| m.name).chain(c.implicit.iter().copied()).collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    #[test]
    fn coverage_doc_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/xenapi-coverage.md");
        let fresh = super::coverage_markdown();
        if std::env::var_os("XENCIM_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(current == fresh, "docs/xenapi-coverage.md is stale: run XENCIM_UPDATE_DOCS=1 cargo test -p xenapi coverage");
    }
}
