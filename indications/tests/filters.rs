//! Filter evaluation on indications as the generator builds them, against the real schema.

use std::sync::Arc;

use indications::engine::{indication, Change, Family, Lifecycle, Shaper};
use indications::filter::{CompiledFilter, SOURCE_NAMESPACE};
use wbem::cim::{CimStatus, Instance};
use wbem::mof::Repository;

fn repo() -> Repository {
    Repository::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../mof"))).expect("schema loads")
}

fn cs(state: u16, name: &str) -> Instance {
    Instance::new("Xen_ComputerSystem")
        .with("CreationClassName", "Xen_ComputerSystem")
        .with("Name", "6b1f")
        .with("ElementName", name)
        .with("EnabledState", state)
}

fn modified(before: u16, after: u16, name: &str) -> Instance {
    let shape: Shaper = Arc::new(|i| i);
    let c = Change { family: Family::System, kind: Lifecycle::Modified, source: cs(after, name), previous: Some(cs(before, name)) };
    indication(&c, "test", &shape)
}

fn compile(repo: &Repository, lang: &str, q: &str) -> Result<CompiledFilter, wbem::cim::CimError> {
    CompiledFilter::compile(repo, "f", lang, q, &["root/virt".to_string()])
}

#[test]
fn isa_and_embedded_property_comparisons() {
    let repo = repo();
    let f = compile(
        &repo,
        "DMTF:CQL",
        "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA CIM_ComputerSystem AND SourceInstance.CIM_ComputerSystem::EnabledState = 2",
    )
    .unwrap();
    assert!(f.matches(&repo, SOURCE_NAMESPACE, &modified(3, 2, "web")));
    assert!(!f.matches(&repo, SOURCE_NAMESPACE, &modified(2, 3, "web")));
    // Another namespace than the filter's sources.
    assert!(!f.matches(&repo, "root/cimv2", &modified(3, 2, "web")));
    let wql = compile(
        &repo,
        "WQL",
        "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA CIM_ComputerSystem AND SourceInstance.EnabledState = 2",
    )
    .unwrap();
    assert!(wql.matches(&repo, SOURCE_NAMESPACE, &modified(3, 2, "web")));
}

#[test]
fn or_not_like_and_previous_instance() {
    let repo = repo();
    let f = compile(
        &repo,
        "WQL",
        "SELECT * FROM Xen_ComputerSystemModifiedIndication WHERE NOT (PreviousInstance.EnabledState = 2) AND (SourceInstance.ElementName LIKE 'web%' OR SourceInstance.ElementName = 'db')",
    )
    .unwrap();
    assert!(f.matches(&repo, SOURCE_NAMESPACE, &modified(3, 2, "web1")));
    assert!(f.matches(&repo, SOURCE_NAMESPACE, &modified(3, 2, "db")));
    assert!(!f.matches(&repo, SOURCE_NAMESPACE, &modified(3, 2, "mail")));
    assert!(!f.matches(&repo, SOURCE_NAMESPACE, &modified(2, 3, "web1")));
}

#[test]
fn class_of_the_indication_must_derive_from_the_from_class() {
    let repo = repo();
    let created = compile(&repo, "WQL", "SELECT * FROM CIM_InstCreation").unwrap();
    assert!(!created.matches(&repo, SOURCE_NAMESPACE, &modified(3, 2, "web")));
    let any = compile(&repo, "WQL", "SELECT * FROM CIM_InstIndication").unwrap();
    assert!(any.matches(&repo, SOURCE_NAMESPACE, &modified(3, 2, "web")));
}

#[test]
fn projection_keeps_the_selected_properties() {
    let repo = repo();
    let f = compile(&repo, "WQL", "SELECT SourceInstance, IndicationIdentifier FROM CIM_InstModification").unwrap();
    let i = f.project(modified(3, 2, "web"));
    let names: Vec<&str> = i.properties.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["IndicationIdentifier", "SourceInstance"]);
}

#[test]
fn bad_queries_are_invalid_query_with_the_column() {
    let repo = repo();
    let e = compile(&repo, "WQL", "SELECT * FROM Xen_NoSuchIndication").unwrap_err();
    assert_eq!(e.status, CimStatus::InvalidQuery);
    assert!(e.description.contains("column 15"), "{}", e.description);
    let e = compile(&repo, "WQL", "SELECT * FROM Xen_ComputerSystem").unwrap_err();
    assert_eq!(e.status, CimStatus::InvalidQuery);
    assert!(e.description.contains("not an indication class"), "{}", e.description);
    let e = compile(&repo, "WQL", "SELECT * FROM CIM_InstCreation WHERE (").unwrap_err();
    assert_eq!(e.status, CimStatus::InvalidQuery);
    assert!(e.description.contains("column"), "{}", e.description);
    let e = compile(&repo, "XPath", "SELECT * FROM CIM_InstCreation").unwrap_err();
    assert_eq!(e.status, CimStatus::QueryLanguageNotSupported);
}
