//! The exact request bytes real clients sent (sblim wbemcli, pywbem, pywbemcli) must decode to the
//! operation, namespace, parameters and paths they mean.

use crate::cim::{CimType, CimValue, KeyValue, ObjectPath};
use crate::cimxml::*;

/// The body of a captured HTTP request (after the blank line).
fn body(capture: &str) -> &[u8] {
    let at = capture.find("\r\n\r\n").map(|i| i + 4).unwrap_or_else(|| capture.find("\n\n").unwrap() + 2);
    &capture.as_bytes()[at..]
}

fn header<'a>(capture: &'a str, name: &str) -> Option<&'a str> {
    capture.lines().take_while(|l| !l.trim().is_empty()).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn intrinsic(capture: &str) -> (Request, IntrinsicCall) {
    let request = parse_request(body(capture)).unwrap_or_else(|e| panic!("{e}"));
    match &request.call {
        Call::Intrinsic(c) => {
            assert_eq!(Some(c.name.as_str()), header(capture, "CIMMethod"), "CIMMethod header matches the body");
            (request.clone(), c.clone())
        }
        other => panic!("expected an intrinsic call, got {other:?}"),
    }
}

fn vm1() -> ObjectPath {
    ObjectPath::new(None, "Xen_ComputerSystem").with_key("CreationClassName", "Xen_ComputerSystem").with_key("Name", "vm1")
}

struct Expect {
    file: &'static str,
    op: &'static str,
    class: Option<&'static str>,
    deep: Option<bool>,
    local_only: Option<bool>,
    qualifiers: Option<bool>,
    class_origin: Option<bool>,
}

const E: Expect = Expect { file: "", op: "", class: None, deep: None, local_only: None, qualifiers: None, class_origin: None };

#[test]
fn intrinsic_captures_decode() {
    let table = [
        (
            include_str!("wire/wbemcli-ei-1.txt"),
            Expect {
                file: "wbemcli-ei-1",
                op: "EnumerateInstances",
                class: Some("CIM_ComputerSystem"),
                deep: Some(true),
                local_only: Some(false),
                qualifiers: Some(false),
                class_origin: Some(true),
            },
        ),
        (
            include_str!("wire/wbemcli-ei-cte-1.txt"),
            Expect {
                file: "wbemcli-ei-cte-1",
                op: "EnumerateInstances",
                class: Some("CIM_ComputerSystem"),
                deep: Some(true),
                local_only: Some(false),
                qualifiers: Some(false),
                class_origin: Some(true),
            },
        ),
        (
            include_str!("wire/wbemcli-https-1.txt"),
            Expect {
                file: "wbemcli-https-1",
                op: "EnumerateInstances",
                class: Some("Xen_ComputerSystem"),
                deep: Some(true),
                local_only: Some(false),
                qualifiers: Some(false),
                class_origin: Some(true),
            },
        ),
        (
            include_str!("wire/wbemcli-ecn-1.txt"),
            Expect { file: "wbemcli-ecn-1", op: "EnumerateClassNames", class: Some("CIM_ComputerSystem"), deep: Some(true), ..E },
        ),
        (
            include_str!("wire/wbemcli-ec-1.txt"),
            Expect {
                file: "wbemcli-ec-1",
                op: "EnumerateClasses",
                class: Some("CIM_ComputerSystem"),
                deep: Some(true),
                local_only: Some(false),
                qualifiers: Some(false),
                class_origin: Some(true),
            },
        ),
        (
            include_str!("wire/wbemcli-ein-1.txt"),
            Expect { file: "wbemcli-ein-1", op: "EnumerateInstanceNames", class: Some("CIM_ComputerSystem"), ..E },
        ),
        (
            include_str!("wire/wbemcli-gc-1.txt"),
            Expect {
                file: "wbemcli-gc-1",
                op: "GetClass",
                class: Some("CIM_ComputerSystem"),
                local_only: Some(false),
                qualifiers: Some(true),
                class_origin: Some(true),
                ..E
            },
        ),
        (
            include_str!("wire/wbemcli-cm-1.txt"),
            Expect {
                file: "wbemcli-cm-1",
                op: "GetClass",
                class: Some("Xen_ComputerSystem"),
                local_only: Some(false),
                qualifiers: Some(true),
                class_origin: Some(true),
                ..E
            },
        ),
        (
            include_str!("wire/wbemcli-gi-1.txt"),
            Expect {
                file: "wbemcli-gi-1",
                op: "GetInstance",
                local_only: Some(false),
                qualifiers: Some(false),
                class_origin: Some(true),
                ..E
            },
        ),
        (
            include_str!("wire/wbemcli-ai-1.txt"),
            Expect { file: "wbemcli-ai-1", op: "Associators", qualifiers: Some(false), class_origin: Some(true), ..E },
        ),
        (include_str!("wire/wbemcli-ain-1.txt"), Expect { file: "wbemcli-ain-1", op: "AssociatorNames", ..E }),
        (
            include_str!("wire/wbemcli-ri-1.txt"),
            Expect { file: "wbemcli-ri-1", op: "References", qualifiers: Some(false), class_origin: Some(true), ..E },
        ),
        (include_str!("wire/wbemcli-rin-1.txt"), Expect { file: "wbemcli-rin-1", op: "ReferenceNames", ..E }),
        (
            include_str!("wire/pywbem-ei-1.txt"),
            Expect { file: "pywbem-ei-1", op: "EnumerateInstances", class: Some("CIM_ComputerSystem"), ..E },
        ),
        (
            include_str!("wire/pywbem-ein.txt"),
            Expect { file: "pywbem-ein", op: "EnumerateInstanceNames", class: Some("CIM_ComputerSystem"), ..E },
        ),
        (
            include_str!("wire/pywbemcli-ei-1.txt"),
            Expect {
                file: "pywbemcli-ei-1",
                op: "OpenEnumerateInstances",
                class: Some("CIM_ComputerSystem"),
                deep: Some(false),
                class_origin: Some(false),
                ..E
            },
        ),
        (
            include_str!("wire/pywbemcli-ei-2.txt"),
            Expect {
                file: "pywbemcli-ei-2",
                op: "EnumerateInstances",
                class: Some("CIM_ComputerSystem"),
                deep: Some(false),
                local_only: Some(false),
                qualifiers: Some(false),
                class_origin: Some(false),
            },
        ),
    ];
    for (capture, e) in table {
        let (request, call) = intrinsic(capture);
        let file = e.file;
        assert_eq!(request.kind(), CallKind::Intrinsic, "{file}");
        assert_eq!(request.protocol_version, "1.0", "{file}");
        assert!(request.message_id == "4711" || request.message_id == "1001", "{file}");
        assert_eq!(call.name, e.op, "{file}");
        assert_eq!(call.namespace, "root/virt", "{file}");
        assert_eq!(call.class_name_param("ClassName").unwrap().as_deref(), e.class, "{file}");
        assert_eq!(call.bool_param("DeepInheritance").unwrap(), e.deep, "{file}");
        assert_eq!(call.bool_param("LocalOnly").unwrap(), e.local_only, "{file}");
        assert_eq!(call.bool_param("IncludeQualifiers").unwrap(), e.qualifiers, "{file}");
        assert_eq!(call.bool_param("IncludeClassOrigin").unwrap(), e.class_origin, "{file}");
        // None of the captures restricts properties: None, not an empty list.
        assert_eq!(call.property_list_param("PropertyList").unwrap(), None, "{file}");
    }
}

#[test]
fn association_and_instance_captures_carry_the_path() {
    let (_, gi) = intrinsic(include_str!("wire/wbemcli-gi-1.txt"));
    assert_eq!(gi.instance_name_param("InstanceName").unwrap(), Some(vm1()));
    let name = gi.instance_name_param("InstanceName").unwrap().unwrap();
    assert_eq!(name.keybindings[1], ("Name".to_string(), KeyValue::String("vm1".into())));

    let (_, ai) = intrinsic(include_str!("wire/wbemcli-ai-1.txt"));
    assert_eq!(ai.object_name_param("ObjectName").unwrap(), Some(ObjectName::Instance(vm1())));
    assert_eq!(ai.class_name_param("AssocClass").unwrap().as_deref(), Some("Xen_HostedDependency"));
    assert_eq!(ai.class_name_param("ResultClass").unwrap(), None);

    let (_, ain) = intrinsic(include_str!("wire/wbemcli-ain-1.txt"));
    assert_eq!(ain.class_name_param("ResultClass").unwrap().as_deref(), Some("Xen_HostComputerSystem"));
    assert_eq!(ain.object_name_param("objectname").unwrap(), Some(ObjectName::Instance(vm1())));

    let (_, ri) = intrinsic(include_str!("wire/wbemcli-ri-1.txt"));
    assert_eq!(ri.class_name_param("ResultClass").unwrap().as_deref(), Some("Xen_HostedDependency"));
    let (_, rin) = intrinsic(include_str!("wire/wbemcli-rin-1.txt"));
    assert_eq!(rin.params.len(), 1);

    let (_, open) = intrinsic(include_str!("wire/pywbemcli-ei-1.txt"));
    assert_eq!(open.u32_param("MaxObjectCount").unwrap(), Some(1000));
    assert_eq!(open.u32_param("OperationTimeout").unwrap(), None);
    assert_eq!(open.string_param("FilterQuery").unwrap(), None);
    // A boolean parameter asked for as a number is a typed error, not a panic.
    let e = open.u32_param("DeepInheritance").unwrap_err();
    assert_eq!(e.status, crate::cim::CimStatus::InvalidParameter);
    assert!(e.description.contains("DeepInheritance"), "{e}");
}

#[test]
fn extrinsic_captures_decode() {
    for (capture, typed) in [(include_str!("wire/wbemcli-cm-2.txt"), false), (include_str!("wire/pywbem-invokemethod.txt"), true)] {
        let request = parse_request(body(capture)).unwrap();
        assert_eq!(request.kind(), CallKind::Extrinsic);
        assert_eq!(request.method_name(), "RequestStateChange");
        assert_eq!(Some(request.method_name()), header(capture, "CIMMethod"));
        let Call::Extrinsic(call) = &request.call else { panic!("not extrinsic") };
        let MethodTarget::Instance(target) = &call.target else { panic!("not an instance target") };
        assert_eq!(*target, vm1().with_namespace(Some("root/virt")));
        // The CIMObject header names the same object (wbemcli percent-encodes it).
        let object = header(capture, "CIMObject").unwrap().replace("%2F", "/").replace("%3A", ":");
        assert_eq!(ObjectPath::parse(&object).unwrap(), *target);

        let state = call.param("requestedstate").unwrap();
        if typed {
            assert_eq!(state.param_type, Some(CimType::UInt16));
            assert_eq!(state.value, ParamValue::Value(CimValue::UInt16(2)));
        } else {
            // wbemcli sends no PARAMTYPE: the method's declaration types the text.
            assert_eq!(state.param_type, None);
            assert_eq!(state.value, ParamValue::Text("2".into()));
        }
        assert_eq!(state.value.to_value(CimType::UInt16, false).unwrap(), Some(CimValue::UInt16(2)));
        assert!(state.value.to_value(CimType::UInt16, true).is_err());
    }
}

#[test]
fn canned_responses_decode() {
    let responses = [
        include_str!("wire/wbemcli-ai-1.response.txt"),
        include_str!("wire/wbemcli-cm-1.response.txt"),
        include_str!("wire/wbemcli-cm-2.response.txt"),
        include_str!("wire/wbemcli-https-1.response.txt"),
        include_str!("wire/pywbem-invokemethod.response.txt"),
        include_str!("wire/pywbemcli-ei-1.response.txt"),
    ];
    for capture in responses {
        let response = parse_response(body(capture)).unwrap_or_else(|e| panic!("{e}"));
        match response.body {
            ResponseBody::Intrinsic { method, result: Ok(r) } if method == "GetClass" => {
                let Some(items) = r.return_value else { panic!("no IRETURNVALUE") };
                let [ReturnItem::Class(c)] = items.as_slice() else { panic!("{items:?}") };
                assert_eq!(c.name, "Xen_ComputerSystem");
                assert_eq!(c.key_properties().count(), 2);
                let m = c.method("RequestStateChange").unwrap();
                assert_eq!(m.return_type, CimType::UInt32);
                assert!(m.parameter("Job").unwrap().is_out());
                assert_eq!(m.parameter("Job").unwrap().reference_class.as_deref(), Some("CIM_ConcreteJob"));
                assert_eq!(m.parameter("TimeoutPeriod").unwrap().cim_type, CimType::DateTime);
                assert!(c.qualifier("Key").is_none());
                assert!(!c.property("Name").unwrap().qualifier("Key").unwrap().flavors.overridable);
            }
            ResponseBody::Intrinsic { method, result: Ok(r) } => {
                assert_eq!(method, "EnumerateInstances");
                let items = r.return_value.unwrap();
                let [ReturnItem::NamedInstance(i)] = items.as_slice() else { panic!("{items:?}") };
                assert_eq!(i.path.as_ref(), Some(&vm1()));
                assert_eq!(i.value("EnabledState"), Some(&CimValue::UInt16(2)));
                assert_eq!(i.value("OperationalStatus"), Some(&vec![2u16].into()));
            }
            ResponseBody::Intrinsic { result: Err(e), .. } | ResponseBody::Extrinsic { result: Err(e), .. } => {
                assert_eq!(e.status, crate::cim::CimStatus::NotSupported);
                assert!(e.description.contains("capture server"));
            }
            ResponseBody::Extrinsic { method, result: Ok(r) } => {
                assert_eq!(method, "RequestStateChange");
                let rv = r.return_value.unwrap();
                assert_eq!(rv.param_type, Some(CimType::UInt32));
                assert_eq!(rv.value, ParamValue::Value(CimValue::UInt32(4096)));
            }
            other => panic!("{other:?}"),
        }
    }
}
