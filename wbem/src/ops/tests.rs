//! Table-driven tests of the dispatcher over the real schema (`mof/`) plus the test fixture
//! classes: every operation with and without its optional parameters, DSP0200 defaults, error
//! codes, access control, and the pull contexts' bounds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use httpd::auth::{Principal, Role};

use super::*;
use crate::cim::{CimStatus, CimValue, Instance, ObjectPath};
use crate::cimxml::{intrinsic_request, parse_request, parse_response, ParamValue, ResponseBody, ReturnItem};
use crate::provider::{InstanceIter, ProvidedClass, Provider};
use crate::service::{WbemService, WbemSettings};

fn schema() -> Arc<Repository> {
    static REPO: OnceLock<Arc<Repository>> = OnceLock::new();
    REPO.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mof");
        let mut repo = Repository::load(&dir).expect("the mof/ tree compiles");
        crate::testclass::add_test_classes(&mut repo).expect("the test classes compile");
        Arc::new(repo)
    })
    .clone()
}

fn settings() -> WbemSettings {
    WbemSettings {
        schema_dir: "unused".into(),
        test_instances: 5,
        system_name: "testhost".into(),
        product_version: "9.9.9".into(),
        pull: PullLimits::default(),
    }
}

fn service() -> WbemService {
    WbemService::with_repository(schema(), &settings()).unwrap()
}

fn admin() -> Principal {
    Principal { user: "admin".into(), role: Role::PoolAdmin }
}

fn reader() -> Principal {
    Principal { user: "reader".into(), role: Role::ReadOnly }
}

type Params = Vec<(&'static str, ParamValue)>;
type Outcome = Result<(Vec<ReturnItem>, Vec<(String, ParamValue)>), CimStatus>;
type Check = Box<dyn Fn(&Instance) -> bool>;

/// Runs an intrinsic call; the decoded IRETURNVALUE items and output parameters, or the error.
fn run_as(cimom: &Cimom, who: &Principal, op: &str, ns: &str, params: Params) -> Outcome {
    let params: Vec<(String, ParamValue)> = params.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
    let request = parse_request(&intrinsic_request("1", op, ns, &params)).expect("request decodes");
    let mut sink = VecSink::default();
    match cimom.call(who, &request, &mut sink) {
        Ok(()) => {}
        Err(CallError::Cim(e)) => return Err(e.status),
        Err(CallError::ClientGone) => panic!("client gone"),
    }
    let response =
        parse_response(&sink.0).unwrap_or_else(|e| panic!("{op}: response does not decode: {e}\n{}", String::from_utf8_lossy(&sink.0)));
    match response.body {
        ResponseBody::Intrinsic { result: Ok(r), .. } => {
            Ok((r.return_value.unwrap_or_default(), r.params.into_iter().map(|p| (p.name, p.value)).collect()))
        }
        other => panic!("{op}: unexpected response {other:?}"),
    }
}

fn run(cimom: &Cimom, op: &str, ns: &str, params: Params) -> Result<Vec<ReturnItem>, CimStatus> {
    run_as(cimom, &admin(), op, ns, params).map(|(items, _)| items)
}

fn class(name: &str) -> ParamValue {
    ParamValue::ClassName(name.into())
}

fn flag(b: bool) -> ParamValue {
    ParamValue::Text(if b { "TRUE" } else { "FALSE" }.into())
}

fn text(s: &str) -> ParamValue {
    ParamValue::Text(s.into())
}

fn list(names: &[&str]) -> ParamValue {
    ParamValue::TextArray(names.iter().map(|n| Some(n.to_string())).collect())
}

fn element(n: u32) -> ObjectPath {
    ObjectPath::new(None, "Xen_TestElement").with_key("InstanceID", format!("Xen:test:{n}"))
}

fn name(p: ObjectPath) -> ParamValue {
    ParamValue::InstanceName(p)
}

fn instances(items: &[ReturnItem]) -> Vec<&Instance> {
    items
        .iter()
        .map(|i| match i {
            ReturnItem::Instance(i) | ReturnItem::NamedInstance(i) | ReturnItem::InstanceWithPath(i) => i,
            ReturnItem::ObjectWithPath(crate::cimxml::CimObject::Instance(i)) => i,
            other => panic!("not an instance: {other:?}"),
        })
        .collect()
}

fn ids(items: &[ReturnItem]) -> Vec<String> {
    let mut out: Vec<String> = items
        .iter()
        .map(|i| {
            let path = match i {
                ReturnItem::InstanceName(p) | ReturnItem::InstancePath(p) | ReturnItem::ObjectPath(p) => p.clone(),
                ReturnItem::Instance(i) => return i.value("InstanceID").and_then(CimValue::as_str).unwrap_or_default().to_string(),
                other => instances(std::slice::from_ref(other))[0].path.clone().expect("a path"),
            };
            path.key("InstanceID").map(|k| k.text()).unwrap_or_default()
        })
        .collect();
    out.sort();
    out
}

fn prop_names(i: &Instance) -> Vec<&str> {
    i.properties.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn error_codes() {
    let svc = service();
    let c = &svc.cimom;
    let bad_key = ObjectPath::new(None, "Xen_TestElement").with_key("Bogus", "1");
    let no_key = ObjectPath::new(None, "Xen_TestElement");
    let table: Vec<(&str, &str, Params, CimStatus)> = vec![
        ("EnumerateInstances", "root/nowhere", vec![("ClassName", class("Xen_TestElement"))], CimStatus::InvalidNamespace),
        ("GetClass", "root/nowhere", vec![("ClassName", class("Xen_TestElement"))], CimStatus::InvalidNamespace),
        ("EnumerateInstances", "root/virt", vec![("ClassName", class("Xen_Nope"))], CimStatus::InvalidClass),
        ("EnumerateInstanceNames", "root/virt", vec![("ClassName", class("Xen_Nope"))], CimStatus::InvalidClass),
        ("EnumerateClassNames", "root/virt", vec![("ClassName", class("Xen_Nope"))], CimStatus::InvalidClass),
        ("GetClass", "root/virt", vec![("ClassName", class("Xen_Nope"))], CimStatus::NotFound),
        ("GetInstance", "root/virt", vec![("InstanceName", name(element(99)))], CimStatus::NotFound),
        ("GetInstance", "root/virt", vec![("InstanceName", name(bad_key.clone()))], CimStatus::InvalidParameter),
        ("GetInstance", "root/virt", vec![("InstanceName", name(no_key))], CimStatus::InvalidParameter),
        ("GetInstance", "root/virt", vec![], CimStatus::InvalidParameter),
        ("GetInstance", "root/virt", vec![("InstanceName", name(element(1))), ("Bogus", flag(true))], CimStatus::InvalidParameter),
        ("GetInstance", "root/virt", vec![("InstanceName", name(element(1))), ("LocalOnly", text("perhaps"))], CimStatus::InvalidParameter),
        ("Associators", "root/virt", vec![("ObjectName", name(bad_key.clone()))], CimStatus::InvalidParameter),
        ("Associators", "root/virt", vec![("ObjectName", name(element(1))), ("AssocClass", class("Xen_Nope"))], CimStatus::InvalidClass),
        ("References", "root/virt", vec![], CimStatus::InvalidParameter),
        ("DeleteInstance", "root/virt", vec![("InstanceName", name(element(99)))], CimStatus::NotFound),
        ("GetQualifier", "root/virt", vec![("QualifierName", text("Nope"))], CimStatus::NotFound),
        ("GetProperty", "root/virt", vec![("InstanceName", name(element(1))), ("PropertyName", text("Nope"))], CimStatus::NoSuchProperty),
        (
            "SetProperty",
            "root/virt",
            vec![("InstanceName", name(element(1))), ("PropertyName", text("Index")), ("NewValue", text("x"))],
            CimStatus::TypeMismatch,
        ),
        (
            "SetProperty",
            "root/virt",
            vec![("InstanceName", name(element(1))), ("PropertyName", text("Index")), ("NewValue", text("7"))],
            CimStatus::NotSupported,
        ),
        ("ExecQuery", "root/virt", vec![("QueryLanguage", text("WQL")), ("Query", text("SELECT * FROM"))], CimStatus::InvalidQuery),
        (
            "ExecQuery",
            "root/virt",
            vec![("QueryLanguage", text("WQL")), ("Query", text("SELECT * FROM Xen_Nope"))],
            CimStatus::InvalidQuery,
        ),
        (
            "ExecQuery",
            "root/virt",
            vec![("QueryLanguage", text("SQL")), ("Query", text("SELECT * FROM X"))],
            CimStatus::QueryLanguageNotSupported,
        ),
        ("CreateClass", "root/virt", vec![], CimStatus::NotSupported),
        ("SetQualifier", "root/virt", vec![], CimStatus::NotSupported),
        ("NoSuchOperation", "root/virt", vec![], CimStatus::NotSupported),
        (
            "CreateInstance",
            "root/virt",
            vec![("NewInstance", ParamValue::Instance(Box::new(Instance::new("CIM_ManagedElement"))))],
            CimStatus::InvalidClass,
        ),
        (
            "OpenEnumerateInstances",
            "root/virt",
            vec![("ClassName", class("Xen_TestElement")), ("ContinueOnError", flag(true))],
            CimStatus::ContinuationOnErrorNotSupported,
        ),
        (
            "OpenEnumerateInstances",
            "root/virt",
            vec![("ClassName", class("Xen_TestElement")), ("FilterQueryLanguage", text("DMTF:FQL"))],
            CimStatus::FilteredEnumerationNotSupported,
        ),
        (
            "OpenEnumerateInstances",
            "root/virt",
            vec![("ClassName", class("Xen_TestElement")), ("OperationTimeout", text("0"))],
            CimStatus::InvalidOperationTimeout,
        ),
        (
            "OpenEnumerateInstances",
            "root/virt",
            vec![("ClassName", class("Xen_TestElement")), ("OperationTimeout", text("999999"))],
            CimStatus::InvalidOperationTimeout,
        ),
        (
            "OpenQueryInstances",
            "root/virt",
            vec![("FilterQueryLanguage", text("WQL")), ("FilterQuery", text("SELECT"))],
            CimStatus::InvalidQuery,
        ),
        (
            "PullInstancesWithPath",
            "root/virt",
            vec![("EnumerationContext", text("nope")), ("MaxObjectCount", text("1"))],
            CimStatus::InvalidEnumerationContext,
        ),
        ("PullInstancesWithPath", "root/virt", vec![("EnumerationContext", text("nope"))], CimStatus::InvalidParameter),
        ("CloseEnumeration", "root/virt", vec![("EnumerationContext", text("nope"))], CimStatus::InvalidEnumerationContext),
        ("EnumerationCount", "root/virt", vec![("EnumerationContext", text("nope"))], CimStatus::InvalidEnumerationContext),
    ];
    for (op, ns, params, expected) in table {
        let desc = format!("{op} {params:?}");
        assert_eq!(run(c, op, ns, params).err(), Some(expected), "{desc}");
    }
}

#[test]
fn read_only_callers_cannot_write_or_call_methods() {
    let svc = service();
    let c = &svc.cimom;
    let new = Instance::new("Xen_TestElement").with("InstanceID", "Xen:test:ro");
    let modified = Instance::new("Xen_TestElement").with("Text", "x").with_path(element(1));
    let table: Vec<(&str, Params)> = vec![
        ("CreateInstance", vec![("NewInstance", ParamValue::Instance(Box::new(new)))]),
        ("ModifyInstance", vec![("ModifiedInstance", ParamValue::Instance(Box::new(modified)))]),
        ("DeleteInstance", vec![("InstanceName", name(element(1)))]),
        ("SetProperty", vec![("InstanceName", name(element(1))), ("PropertyName", text("Text")), ("NewValue", text("x"))]),
    ];
    for (op, params) in table {
        assert_eq!(run_as(c, &reader(), op, "root/virt", params).err(), Some(CimStatus::AccessDenied), "{op}");
    }
    let call = crate::cimxml::extrinsic_request(
        "1",
        "Echo",
        &crate::cimxml::MethodTarget::Instance(element(1).with_namespace(Some("root/virt"))),
        &[crate::cimxml::MethodParam::new("Text", text("x"))],
    );
    let request = parse_request(&call).unwrap();
    let err = c.call(&reader(), &request, &mut VecSink::default()).unwrap_err();
    assert_eq!(err.cim().map(|e| e.status), Some(CimStatus::AccessDenied));
    // Reading is fine.
    assert_eq!(
        run_as(c, &reader(), "EnumerateInstanceNames", "root/virt", vec![("ClassName", class("Xen_TestElement"))]).unwrap().0.len(),
        5
    );
}

#[test]
fn enumerate_instances_options_and_defaults() {
    let svc = service();
    let c = &svc.cimom;
    let ec = |extra: Params| {
        let mut p = vec![("ClassName", class("Xen_TestElement"))];
        p.extend(extra);
        run(c, "EnumerateInstances", "root/virt", p).unwrap()
    };
    // Omitted options: all properties, no class origin, no qualifiers (LocalOnly reads FALSE).
    let all = ec(vec![]);
    assert_eq!(all.len(), 5);
    let first = instances(&all)[0];
    assert!(prop_names(first).contains(&"Caption") && prop_names(first).contains(&"Index"));
    assert!(first.properties.iter().all(|p| p.class_origin.is_none() && p.qualifiers.is_empty()));
    assert!(matches!(&all[0], ReturnItem::NamedInstance(i) if i.path.as_ref().unwrap().namespace.is_none()));
    let table: Vec<(Params, Check)> = vec![
        (vec![("LocalOnly", flag(true))], Box::new(|i| !prop_names(i).contains(&"Caption") && prop_names(i).contains(&"Index"))),
        (vec![("LocalOnly", flag(false))], Box::new(|i| prop_names(i).contains(&"Caption"))),
        (
            vec![("IncludeClassOrigin", flag(true))],
            Box::new(|i| i.property("Caption").unwrap().class_origin.as_deref() == Some("CIM_ManagedElement")),
        ),
        (vec![("IncludeQualifiers", flag(true))], Box::new(|i| i.property("Text").unwrap().qualifier("Write").is_some())),
        (vec![("PropertyList", list(&["Index", "text"]))], Box::new(|i| prop_names(i) == ["Index", "Text"])),
        (vec![("PropertyList", list(&[]))], Box::new(|i| i.properties.is_empty())),
        (vec![("PropertyList", ParamValue::Null)], Box::new(|i| i.properties.len() > 10)),
        (vec![("DeepInheritance", flag(false))], Box::new(|i| prop_names(i).contains(&"Index"))),
    ];
    for (params, check) in table {
        let desc = format!("{params:?}");
        let got = ec(params);
        assert_eq!(got.len(), 5, "{desc}");
        assert!(check(instances(&got)[0]), "{desc}: {:?}", prop_names(instances(&got)[0]));
    }
    // DeepInheritance=FALSE on a superclass: subclass instances with the superclass's properties.
    let shallow =
        run(c, "EnumerateInstances", "root/virt", vec![("ClassName", class("CIM_LogicalElement")), ("DeepInheritance", flag(false))])
            .unwrap();
    let te = instances(&shallow).into_iter().find(|i| i.class_name == "Xen_TestElement").unwrap();
    assert!(!prop_names(te).contains(&"Index") && prop_names(te).contains(&"Caption"));
    let deep = run(c, "EnumerateInstances", "root/virt", vec![("ClassName", class("CIM_LogicalElement"))]).unwrap();
    assert!(prop_names(instances(&deep).into_iter().find(|i| i.class_name == "Xen_TestElement").unwrap()).contains(&"Index"));
}

#[test]
fn get_instance_names_and_properties() {
    let svc = service();
    let c = &svc.cimom;
    let got = run(c, "GetInstance", "root/virt", vec![("InstanceName", name(element(2)))]).unwrap();
    let i = instances(&got)[0];
    assert_eq!(i.value("Index"), Some(&CimValue::UInt32(2)));
    assert_eq!(i.value("Tags").and_then(CimValue::as_array).map(|a| a.len()), Some(2));
    let got = run(
        c,
        "GetInstance",
        "root/virt",
        vec![("InstanceName", name(element(2))), ("PropertyList", list(&["Flag"])), ("IncludeClassOrigin", flag(true))],
    )
    .unwrap();
    assert_eq!(prop_names(instances(&got)[0]), ["Flag"]);
    // Keys are matched case-insensitively by name and an unnamed single key is accepted.
    let odd = ObjectPath::new(None, "xen_testelement").with_key("instanceid", "Xen:test:3");
    assert_eq!(ids(&run(c, "GetInstance", "root/virt", vec![("InstanceName", name(odd))]).unwrap()), ["Xen:test:3"]);
    let unnamed = ObjectPath::new(None, "Xen_TestElement").with_key("", "Xen:test:4");
    assert_eq!(ids(&run(c, "GetInstance", "root/virt", vec![("InstanceName", name(unnamed))]).unwrap()), ["Xen:test:4"]);
    let names = run(c, "EnumerateInstanceNames", "root/virt", vec![("ClassName", class("CIM_ManagedElement"))]).unwrap();
    assert_eq!(ids(&names).iter().filter(|i| i.starts_with("Xen:test:")).count(), 5);
    let value = run(c, "GetProperty", "root/virt", vec![("InstanceName", name(element(5))), ("PropertyName", text("Index"))]).unwrap();
    assert_eq!(value, vec![ReturnItem::Value("5".into())]);
    run(c, "SetProperty", "root/virt", vec![("InstanceName", name(element(5))), ("PropertyName", text("Text")), ("NewValue", text("new"))])
        .unwrap();
    let value = run(c, "GetProperty", "root/virt", vec![("InstanceName", name(element(5))), ("PropertyName", text("Text"))]).unwrap();
    assert_eq!(value, vec![ReturnItem::Value("new".into())]);
}

#[test]
fn class_operations_defaults() {
    let svc = service();
    let c = &svc.cimom;
    let get = |extra: Params| {
        let mut p = vec![("ClassName", class("Xen_TestElement"))];
        p.extend(extra);
        match run(c, "GetClass", "root/virt", p).unwrap().remove(0) {
            ReturnItem::Class(cl) => cl,
            other => panic!("{other:?}"),
        }
    };
    let default = get(vec![]);
    assert!(default.property("Index").is_some() && default.property("Caption").is_none(), "LocalOnly defaults to TRUE");
    assert!(default.qualifier("Description").is_some(), "IncludeQualifiers defaults to TRUE");
    assert!(default.property("Index").unwrap().class_origin.is_none(), "IncludeClassOrigin defaults to FALSE");
    let full = get(vec![("LocalOnly", flag(false)), ("IncludeQualifiers", flag(false)), ("IncludeClassOrigin", flag(true))]);
    assert_eq!(full.property("Caption").unwrap().class_origin.as_deref(), Some("CIM_ManagedElement"));
    assert!(full.qualifiers.is_empty());
    let some = get(vec![("LocalOnly", flag(false)), ("PropertyList", list(&["Caption"]))]);
    assert_eq!(some.properties.len(), 1);

    let names = |params: Params| -> Vec<String> {
        run(c, "EnumerateClassNames", "root/virt", params)
            .unwrap()
            .into_iter()
            .map(|i| match i {
                ReturnItem::ClassName(n) => n,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let top = names(vec![]);
    assert!(top.contains(&"CIM_ManagedElement".to_string()) && !top.contains(&"CIM_LogicalElement".to_string()));
    assert!(names(vec![("DeepInheritance", flag(true))]).contains(&"Xen_TestElement".to_string()));
    assert!(names(vec![("ClassName", class("CIM_LogicalElement"))]).contains(&"Xen_TestElement".to_string()));
    assert!(!names(vec![("ClassName", class("CIM_ManagedElement"))]).contains(&"Xen_TestElement".to_string()));
    let classes =
        run(c, "EnumerateClasses", "root/virt", vec![("ClassName", class("CIM_LogicalElement")), ("DeepInheritance", flag(true))]).unwrap();
    assert!(classes.iter().any(|i| matches!(i, ReturnItem::Class(cl) if cl.name == "Xen_TestElement" && cl.property("Caption").is_none())));
    assert!(run(c, "EnumerateQualifiers", "root/virt", vec![]).unwrap().len() > 20);
    assert!(
        matches!(&run(c, "GetQualifier", "root/virt", vec![("QualifierName", text("key"))]).unwrap()[0], ReturnItem::QualifierDecl(d) if d.name == "Key")
    );
}

#[test]
fn association_filters() {
    let svc = service();
    let c = &svc.cimom;
    let table: Vec<(&str, Params, Vec<&str>)> = vec![
        ("Associators", vec![], vec!["Xen:test:2", "Xen:test:4"]),
        ("AssociatorNames", vec![], vec!["Xen:test:2", "Xen:test:4"]),
        ("AssociatorNames", vec![("AssocClass", class("CIM_Dependency"))], vec!["Xen:test:2", "Xen:test:4"]),
        ("AssociatorNames", vec![("AssocClass", class("CIM_Component"))], vec![]),
        ("AssociatorNames", vec![("ResultClass", class("CIM_LogicalElement"))], vec!["Xen:test:2", "Xen:test:4"]),
        ("AssociatorNames", vec![("ResultClass", class("CIM_System"))], vec![]),
        ("AssociatorNames", vec![("Role", text("Antecedent"))], vec!["Xen:test:4"]),
        ("AssociatorNames", vec![("Role", text("Dependent"))], vec!["Xen:test:2"]),
        ("AssociatorNames", vec![("ResultRole", text("Antecedent"))], vec!["Xen:test:2"]),
        ("AssociatorNames", vec![("Role", text("Antecedent")), ("ResultRole", text("Antecedent"))], vec![]),
        (
            "Associators",
            vec![("PropertyList", list(&["Index"])), ("IncludeClassOrigin", flag(true)), ("IncludeQualifiers", flag(false))],
            vec!["Xen:test:2", "Xen:test:4"],
        ),
    ];
    for (op, extra, expected) in table {
        let mut p = vec![("ObjectName", name(element(3)))];
        p.extend(extra);
        let desc = format!("{op} {p:?}");
        assert_eq!(ids(&run(c, op, "root/virt", p).unwrap()), expected, "{desc}");
    }
    let refs = |extra: Params| {
        let mut p = vec![("ObjectName", name(element(3)))];
        p.extend(extra);
        run(c, "ReferenceNames", "root/virt", p).unwrap().len()
    };
    assert_eq!(refs(vec![]), 2);
    assert_eq!(refs(vec![("Role", text("Antecedent"))]), 1);
    assert_eq!(refs(vec![("ResultClass", class("Xen_TestAssociation"))]), 2);
    assert_eq!(refs(vec![("ResultClass", class("CIM_HostedDependency"))]), 0);
    let full = run(c, "References", "root/virt", vec![("ObjectName", name(element(3))), ("PropertyList", list(&["Antecedent"]))]).unwrap();
    assert!(instances(&full).iter().all(|i| prop_names(i) == ["Antecedent"]));
    // Class-level: the schema's view.
    let classes = run(
        c,
        "AssociatorNames",
        "root/virt",
        vec![("ObjectName", class("Xen_TestElement")), ("AssocClass", class("Xen_TestAssociation"))],
    )
    .unwrap();
    assert!(matches!(&classes[..], [ReturnItem::ObjectPath(p)] if p.class_name == "Xen_TestElement" && p.keybindings.is_empty()));
}

#[test]
fn query_and_methods() {
    let svc = service();
    let c = &svc.cimom;
    let rows = run(
        c,
        "ExecQuery",
        "root/virt",
        vec![("QueryLanguage", text("WQL")), ("Query", text("SELECT Index FROM CIM_LogicalElement WHERE Flag = TRUE"))],
    )
    .unwrap();
    assert_eq!(ids(&rows), ["Xen:test:2", "Xen:test:4"]);
    assert!(instances(&rows).iter().all(|i| prop_names(i) == ["Index"]));
    let call = |method: &str, params: Vec<crate::cimxml::MethodParam>| {
        let body = crate::cimxml::extrinsic_request(
            "1",
            method,
            &crate::cimxml::MethodTarget::Instance(element(1).with_namespace(Some("root/virt"))),
            &params,
        );
        let request = parse_request(&body).unwrap();
        let mut sink = VecSink::default();
        c.call(&admin(), &request, &mut sink).map(|()| parse_response(&sink.0).unwrap()).map_err(|e| e.cim().unwrap().status)
    };
    let r = call("Echo", vec![crate::cimxml::MethodParam::new("Text", text("ab")), crate::cimxml::MethodParam::new("Repeat", text("2"))])
        .unwrap();
    match r.body {
        ResponseBody::Extrinsic { result: Ok(m), .. } => {
            assert_eq!(m.return_value.unwrap().value, ParamValue::Value(CimValue::UInt32(0)));
            assert_eq!(m.params[0].value, ParamValue::Value(CimValue::String("abab".into())));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(call("Nope", vec![]).unwrap_err(), CimStatus::MethodNotFound);
    assert_eq!(call("Echo", vec![crate::cimxml::MethodParam::new("Repeat", text("x"))]).unwrap_err(), CimStatus::InvalidParameter);
    assert_eq!(call("Echo", vec![crate::cimxml::MethodParam::new("Echoed", text("x"))]).unwrap_err(), CimStatus::InvalidParameter);
    // A method declared by the schema on a class without a provider.
    let body = crate::cimxml::extrinsic_request(
        "1",
        "RequestStateChange",
        &crate::cimxml::MethodTarget::Instance(
            ObjectPath::new(Some("root/virt"), "Xen_ComputerSystem")
                .with_key("CreationClassName", "Xen_ComputerSystem")
                .with_key("Name", "x"),
        ),
        &[],
    );
    let err = c.call(&admin(), &parse_request(&body).unwrap(), &mut VecSink::default()).unwrap_err();
    assert_eq!(err.cim().unwrap().status, CimStatus::MethodNotAvailable);
}

/// A provider of many instances that counts how many it has produced.
struct Counting {
    produced: Arc<AtomicUsize>,
}

impl Provider for Counting {
    fn classes(&self) -> Vec<ProvidedClass> {
        vec![ProvidedClass::new("root/virt", "Xen_ComputerSystem")]
    }
    fn enumerate_instances(&self, _ctx: &crate::provider::OpContext, _class: &str) -> Result<InstanceIter, crate::cim::CimError> {
        let produced = self.produced.clone();
        Ok(Box::new((0..1_000_000u32).map(move |n| {
            produced.fetch_add(1, Ordering::SeqCst);
            Ok(Instance::new("Xen_ComputerSystem").with("CreationClassName", "Xen_ComputerSystem").with("Name", format!("vm{n}")))
        })))
    }
}

fn context_of(params: &[(String, ParamValue)]) -> Option<String> {
    params.iter().find(|(n, _)| n == "EnumerationContext").and_then(|(_, v)| match v {
        ParamValue::Value(CimValue::String(s)) => Some(s.clone()),
        _ => None,
    })
}

fn end_of_sequence(params: &[(String, ParamValue)]) -> bool {
    params.iter().any(|(n, v)| n == "EndOfSequence" && *v == ParamValue::Value(CimValue::Boolean(true)))
}

#[test]
fn pull_holds_a_cursor_not_a_list() {
    let svc = service();
    let produced = Arc::new(AtomicUsize::new(0));
    svc.providers.register(Arc::new(Counting { produced: produced.clone() })).unwrap();
    let c = &svc.cimom;
    // Deep inheritance from CIM_ComputerSystem gathers the Xen_ComputerSystem provider's instances.
    let (items, params) = run_as(
        c,
        &admin(),
        "OpenEnumerateInstances",
        "root/virt",
        vec![("ClassName", class("CIM_ComputerSystem")), ("MaxObjectCount", text("3"))],
    )
    .unwrap();
    assert_eq!(items.len(), 3);
    assert!(!end_of_sequence(&params));
    assert!(produced.load(Ordering::SeqCst) <= 4, "produced {}", produced.load(Ordering::SeqCst));
    let ctx = context_of(&params).unwrap();
    let (items, params) =
        run_as(c, &admin(), "PullInstancesWithPath", "root/virt", vec![("EnumerationContext", text(&ctx)), ("MaxObjectCount", text("10"))])
            .unwrap();
    assert_eq!(items.len(), 10);
    assert!(produced.load(Ordering::SeqCst) <= 14);
    assert!(matches!(&items[0], ReturnItem::InstanceWithPath(i) if i.path.as_ref().unwrap().namespace.as_deref() == Some("root/virt")));
    assert_eq!(context_of(&params).as_deref(), Some(ctx.as_str()));
    assert_eq!(c.open_enumeration_contexts(), 1);
    // Wrong pull operation for the context's kind, and EnumerationCount (NULL: unknown).
    assert_eq!(
        run(c, "PullInstancePaths", "root/virt", vec![("EnumerationContext", text(&ctx)), ("MaxObjectCount", text("1"))]).err(),
        Some(CimStatus::InvalidEnumerationContext)
    );
    assert_eq!(run(c, "EnumerationCount", "root/virt", vec![("EnumerationContext", text(&ctx))]).unwrap(), vec![]);
    // Another namespace or user does not see it.
    assert_eq!(
        run(c, "CloseEnumeration", "root/interop", vec![("EnumerationContext", text(&ctx))]).err(),
        Some(CimStatus::InvalidEnumerationContext)
    );
    assert_eq!(
        run_as(c, &reader(), "CloseEnumeration", "root/virt", vec![("EnumerationContext", text(&ctx))]).err(),
        Some(CimStatus::InvalidEnumerationContext)
    );
    run(c, "CloseEnumeration", "root/virt", vec![("EnumerationContext", text(&ctx))]).unwrap();
    assert_eq!(c.open_enumeration_contexts(), 0);
    assert_eq!(
        run(c, "CloseEnumeration", "root/virt", vec![("EnumerationContext", text(&ctx))]).err(),
        Some(CimStatus::InvalidEnumerationContext)
    );
}

#[test]
fn pull_paths_queries_and_associations_to_the_end() {
    let svc = service();
    let c = &svc.cimom;
    let drain = |open: &str, params: Params, pull: &str| -> Vec<ReturnItem> {
        let (mut all, mut out) = run_as(c, &admin(), open, "root/virt", params).unwrap();
        while !end_of_sequence(&out) {
            let ctx = context_of(&out).expect("a context until the end");
            let (items, o) =
                run_as(c, &admin(), pull, "root/virt", vec![("EnumerationContext", text(&ctx)), ("MaxObjectCount", text("2"))]).unwrap();
            all.extend(items);
            out = o;
        }
        assert!(context_of(&out).is_none());
        all
    };
    let paths = drain("OpenEnumerateInstancePaths", vec![("ClassName", class("Xen_TestElement"))], "PullInstancePaths");
    assert_eq!(paths.len(), 5);
    assert!(matches!(&paths[0], ReturnItem::InstancePath(_)));
    let rows = drain(
        "OpenQueryInstances",
        vec![
            ("FilterQueryLanguage", text("DMTF:CQL")),
            ("FilterQuery", text("SELECT * FROM Xen_TestElement WHERE Index <= 3")),
            ("MaxObjectCount", text("1")),
        ],
        "PullInstances",
    );
    assert_eq!(ids(&rows), ["Xen:test:1", "Xen:test:2", "Xen:test:3"]);
    assert!(matches!(&rows[0], ReturnItem::Instance(_)));
    let assoc =
        drain("OpenAssociatorInstances", vec![("InstanceName", name(element(1))), ("MaxObjectCount", text("1"))], "PullInstancesWithPath");
    assert_eq!(ids(&assoc), ["Xen:test:2", "Xen:test:5"]);
    let assoc =
        drain("OpenAssociatorInstancePaths", vec![("InstanceName", name(element(1))), ("Role", text("Dependent"))], "PullInstancePaths");
    assert_eq!(ids(&assoc), ["Xen:test:5"]);
    assert_eq!(drain("OpenReferenceInstances", vec![("InstanceName", name(element(1)))], "PullInstancesWithPath").len(), 2);
    assert_eq!(
        drain("OpenReferenceInstancePaths", vec![("InstanceName", name(element(1))), ("Role", text("Antecedent"))], "PullInstancePaths")
            .len(),
        1
    );
    assert_eq!(c.open_enumeration_contexts(), 0);
}

#[test]
fn contexts_are_capped_and_expire() {
    let config = CimomConfig { pull: PullLimits { max_open_contexts: 2, ..PullLimits::default() }, ..CimomConfig::default() };
    let svc = service();
    let c = Cimom::new(schema(), svc.providers.clone(), config);
    let open = |timeout: &str| {
        run_as(
            &c,
            &admin(),
            "OpenEnumerateInstances",
            "root/virt",
            vec![("ClassName", class("Xen_TestElement")), ("MaxObjectCount", text("1")), ("OperationTimeout", text(timeout))],
        )
    };
    let (_, first) = open("1").unwrap();
    open("60").unwrap();
    assert_eq!(open("60").err(), Some(CimStatus::ServerLimitsExceeded));
    std::thread::sleep(Duration::from_millis(1100));
    // The first context has expired: it is gone and its room is free again.
    let ctx = context_of(&first).unwrap();
    assert_eq!(
        run(&c, "PullInstancesWithPath", "root/virt", vec![("EnumerationContext", text(&ctx)), ("MaxObjectCount", text("1"))]).err(),
        Some(CimStatus::InvalidEnumerationContext)
    );
    open("60").unwrap();
}

#[test]
fn contexts_are_capped_per_user() {
    let pull = PullLimits { max_open_contexts: 10, max_open_contexts_per_user: 2, ..PullLimits::default() };
    let c = Cimom::new(schema(), service().providers.clone(), CimomConfig { pull, ..CimomConfig::default() });
    let open = |who: &Principal| {
        run_as(
            &c,
            who,
            "OpenEnumerateInstances",
            "root/virt",
            vec![("ClassName", class("Xen_TestElement")), ("MaxObjectCount", text("1")), ("OperationTimeout", text("60"))],
        )
        .map(|(_, params)| context_of(&params).expect("more to pull"))
    };
    let first = open(&admin()).unwrap();
    open(&admin()).unwrap();
    assert_eq!(open(&admin()).err(), Some(CimStatus::ServerLimitsExceeded));
    // Another user has room of their own, up to the same bound.
    open(&reader()).unwrap();
    open(&reader()).unwrap();
    assert_eq!(open(&reader()).err(), Some(CimStatus::ServerLimitsExceeded));
    // A closed context frees its room, for one more only.
    let close = |ctx: &str| run(&c, "CloseEnumeration", "root/virt", vec![("EnumerationContext", text(ctx))]);
    close(&first).unwrap();
    let third = open(&admin()).unwrap();
    assert_eq!(open(&admin()).err(), Some(CimStatus::ServerLimitsExceeded));
    // So does an exhausted one: pull the rest (5 instances, one came with the Open).
    run(&c, "PullInstancesWithPath", "root/virt", vec![("EnumerationContext", text(&third)), ("MaxObjectCount", text("10"))]).unwrap();
    open(&admin()).unwrap();
    assert_eq!(c.open_enumeration_contexts(), 4);
    // A refused Open* leaves nothing open, and the description names the bound.
    let request = parse_request(&intrinsic_request(
        "1",
        "OpenEnumerateInstances",
        "root/virt",
        &[("ClassName".to_string(), class("Xen_TestElement")), ("MaxObjectCount".to_string(), text("1"))],
    ))
    .unwrap();
    match c.call(&admin(), &request, &mut VecSink::default()) {
        Err(CallError::Cim(e)) => {
            assert_eq!(e.status, CimStatus::ServerLimitsExceeded);
            assert!(e.description.contains("max_enumeration_contexts_per_user"), "{}", e.description);
        }
        _ => panic!("the Open* beyond the bound succeeded"),
    }
    assert_eq!(c.open_enumeration_contexts(), 4);
}

#[test]
fn interop_namespace() {
    let svc = service();
    let c = &svc.cimom;
    for ns in ["root/interop", "interop", "/root/Interop/"] {
        let names = run(c, "EnumerateInstanceNames", ns, vec![("ClassName", class("CIM_Namespace"))]).unwrap();
        let found: Vec<String> = names
            .iter()
            .map(|n| match n {
                ReturnItem::InstanceName(p) => p.key("Name").unwrap().text(),
                other => panic!("{other:?}"),
            })
            .collect();
        for expected in ["root/virt", "root/interop", "root/cimv2", "interop"] {
            assert!(found.iter().any(|f| f == expected), "{ns}: {found:?}");
        }
    }
    let om = run(c, "EnumerateInstances", "root/interop", vec![("ClassName", class("CIM_ObjectManager"))]).unwrap();
    assert_eq!(instances(&om)[0].value("Description"), Some(&CimValue::from("xencim version 9.9.9")));
    let mech = run(c, "EnumerateInstances", "root/interop", vec![("ClassName", class("CIM_ObjectManagerCommunicationMechanism"))]).unwrap();
    assert_eq!(instances(&mech)[0].class_name, "CIM_CIMXMLCommunicationMechanism");
    // Profiles: the MOF's and the registry's, together.
    svc.profiles.add_profile(crate::interop::RegisteredProfile::dmtf("Xen:test-profile", "Test Profile", "0.0.1"));
    svc.profiles.add_reference("Xen:test-profile", crate::interop::PROFILE_REGISTRATION_ID);
    svc.profiles.add_conformance("Xen:test-profile", || {
        vec![ObjectPath::new(Some("root/virt"), "Xen_TestElement").with_key("InstanceID", "Xen:test:1")]
    });
    let profiles = run(c, "EnumerateInstances", "root/interop", vec![("ClassName", class("CIM_RegisteredProfile"))]).unwrap();
    let names: Vec<String> =
        instances(&profiles).iter().filter_map(|i| i.value("RegisteredName").and_then(CimValue::as_str).map(str::to_string)).collect();
    assert!(names.contains(&"Profile Registration".to_string()) && names.contains(&"Test Profile".to_string()), "{names:?}");
    // ElementConformsToProfile is traversable from both ends.
    let profile = ObjectPath::new(None, "Xen_RegisteredProfile").with_key("InstanceID", "Xen:test-profile");
    let elements = run(
        c,
        "AssociatorNames",
        "root/interop",
        vec![("ObjectName", name(profile)), ("AssocClass", class("CIM_ElementConformsToProfile")), ("ResultRole", text("ManagedElement"))],
    )
    .unwrap();
    assert!(
        matches!(&elements[..], [ReturnItem::ObjectPath(p)] if p.namespace.as_deref() == Some("root/virt") && p.class_name == "Xen_TestElement"),
        "{elements:?}"
    );
    let back = run(
        c,
        "AssociatorNames",
        "root/virt",
        vec![("ObjectName", name(element(1))), ("AssocClass", class("CIM_ElementConformsToProfile"))],
    )
    .unwrap();
    assert!(matches!(&back[..], [ReturnItem::ObjectPath(p)] if p.namespace.as_deref() == Some("root/interop")), "{back:?}");
    let om_profile = ObjectPath::new(None, "Xen_RegisteredProfile").with_key("InstanceID", crate::interop::PROFILE_REGISTRATION_ID);
    let central = run(
        c,
        "AssociatorNames",
        "root/interop",
        vec![("ObjectName", name(om_profile.clone())), ("ResultClass", class("CIM_ObjectManager"))],
    )
    .unwrap();
    assert_eq!(central.len(), 1);
    let referencing = run(
        c,
        "AssociatorNames",
        "root/interop",
        vec![("ObjectName", name(om_profile)), ("AssocClass", class("CIM_ReferencedProfile")), ("ResultRole", text("Antecedent"))],
    )
    .unwrap();
    assert_eq!(referencing.len(), 1);
}

/// Records the parameters of the methods it runs.
struct Recorder {
    seen: Arc<parking_lot::Mutex<Vec<crate::provider::MethodParams>>>,
}

impl Provider for Recorder {
    fn classes(&self) -> Vec<ProvidedClass> {
        vec![ProvidedClass::new("root/virt", "Xen_VirtualSystemManagementService")]
    }
    fn invoke_method(
        &self,
        _ctx: &crate::provider::OpContext,
        _target: &ObjectPath,
        _method: &str,
        params: &crate::provider::MethodParams,
    ) -> Result<crate::provider::MethodOutput, crate::cim::CimError> {
        self.seen.lock().push(params.clone());
        let system = ObjectPath::new(Some("root/virt"), "Xen_ComputerSystem")
            .with_key("CreationClassName", "Xen_ComputerSystem")
            .with_key("Name", "u");
        Ok(crate::provider::MethodOutput::returning(0u32).with_out("ResultingSystem", system).with_out("Undeclared", "dropped"))
    }
}

#[test]
fn embedded_instance_parameters_in_every_encoding() {
    let svc = service();
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    svc.providers.register(Arc::new(Recorder { seen: seen.clone() })).unwrap();
    let target = crate::cimxml::MethodTarget::Instance(
        ObjectPath::new(Some("root/virt"), "Xen_VirtualSystemManagementService")
            .with_key("CreationClassName", "Xen_VirtualSystemManagementService")
            .with_key("Name", "vsms")
            .with_key("SystemCreationClassName", "Xen_HostSystem")
            .with_key("SystemName", "h"),
    );
    let vssd = Instance::new("Xen_VirtualSystemSettingData").with("ElementName", "vm1");
    let escaped = crate::cimxml::write::embedded_text(&CimValue::Instance(Box::new(vssd.clone()))).unwrap();
    let encodings: Vec<crate::cimxml::MethodParam> = vec![
        crate::cimxml::MethodParam::typed("SystemSettings", CimValue::Instance(Box::new(vssd))),
        crate::cimxml::MethodParam::new("SystemSettings", text(&escaped)),
        crate::cimxml::MethodParam::new("SystemSettings", text("instance of Xen_VirtualSystemSettingData { ElementName = \"vm1\"; };")),
    ];
    for param in encodings {
        let body = crate::cimxml::extrinsic_request("1", "DefineSystem", &target, std::slice::from_ref(&param));
        let mut sink = VecSink::default();
        svc.cimom.call(&admin(), &parse_request(&body).unwrap(), &mut sink).unwrap_or_else(|e| panic!("{param:?}: {e:?}"));
        let got = seen.lock().pop().unwrap();
        let i = got.get("SystemSettings").and_then(CimValue::as_instance).unwrap_or_else(|| panic!("{param:?}: {got:?}"));
        assert_eq!(i.class_name, "Xen_VirtualSystemSettingData");
        assert_eq!(i.value("ElementName"), Some(&CimValue::from("vm1")));
        match parse_response(&sink.0).unwrap().body {
            ResponseBody::Extrinsic { result: Ok(m), .. } => {
                assert_eq!(m.params.len(), 1, "only declared output parameters go out");
                assert!(matches!(&m.params[0].value, ParamValue::Value(CimValue::Reference(p)) if p.class_name == "Xen_ComputerSystem"));
            }
            other => panic!("{other:?}"),
        }
    }
    let body = crate::cimxml::extrinsic_request(
        "1",
        "DefineSystem",
        &target,
        &[crate::cimxml::MethodParam::new("SystemSettings", text("instance of Nope { };"))],
    );
    let err = svc.cimom.call(&admin(), &parse_request(&body).unwrap(), &mut VecSink::default()).unwrap_err();
    assert_eq!(err.cim().unwrap().status, CimStatus::InvalidParameter);
}
