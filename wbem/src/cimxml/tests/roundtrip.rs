//! parse(write(x)) == x for every element, through whole requests and responses.

use super::samples::*;
use crate::cim::*;
use crate::cimxml::*;

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

/// Every document the writer produces in these tests also obeys the never-self-closing rule.
fn checked(bytes: Vec<u8>) -> Vec<u8> {
    assert!(!text(&bytes).contains("/>"), "self-closing tag in {}", text(&bytes));
    bytes
}

fn intrinsic_items(doc: &[u8]) -> (Vec<ReturnItem>, Vec<MethodParam>) {
    match parse_response(doc).unwrap_or_else(|e| panic!("{e}\n{}", text(doc))).body {
        ResponseBody::Intrinsic { result: Ok(r), .. } => (r.return_value.unwrap_or_default(), r.params),
        other => panic!("{other:?}"),
    }
}

#[test]
fn instances_round_trip_with_every_value_kind() {
    let original = full_instance().with_path(odd_keys_path());
    let mut w = ResponseWriter::intrinsic("7", "EnumerateInstances");
    w.named_instance(&original, &ObjectOptions::FULL);
    w.instance(&original, &ObjectOptions::FULL);
    let doc = checked(w.finish());
    let (items, params) = intrinsic_items(&doc);
    assert!(params.is_empty());
    let [ReturnItem::NamedInstance(named), ReturnItem::Instance(plain)] = items.as_slice() else { panic!("{items:?}") };
    assert_eq!(named, &original);
    // Field by field too, so a failure names the property.
    for (a, b) in named.properties.iter().zip(&original.properties) {
        assert_eq!(a, b, "property {}", b.name);
    }
    assert_eq!(plain.path, None);
    assert_eq!(plain.properties, original.properties);
    let town = named.value("Address").unwrap().as_instance().unwrap().value("Town").unwrap().as_instance().unwrap();
    assert_eq!(town.value("Name"), Some(&"Fritz &amp; \"Town\"".into()));
}

#[test]
fn classes_round_trip() {
    let original = full_class();
    let mut w = ResponseWriter::intrinsic("1", "GetClass");
    w.class(&original, &ObjectOptions::FULL);
    let (items, _) = intrinsic_items(&checked(w.finish()));
    let [ReturnItem::Class(c)] = items.as_slice() else { panic!("{items:?}") };
    for (a, b) in c.properties.iter().zip(&original.properties) {
        assert_eq!(a, b, "property {}", b.name);
    }
    for (a, b) in c.methods.iter().zip(&original.methods) {
        assert_eq!(a, b, "method {}", b.name);
    }
    assert_eq!(c, &original);
}

#[test]
fn every_return_item_round_trips() {
    let host = |p: ObjectPath| p.with_host(Some("cimom.example:5989".into()));
    let instance = full_instance().with_path(host(vm_path("vm1")));
    let class_path = host(ObjectPath::new(Some("root/virt"), "Xen_ComputerSystem"));
    let class_object = CimObject::Class { path: Some(class_path.clone()), class: full_class() };
    let local_class = CimObject::Class { path: Some(ObjectPath::new(Some("root/virt"), "Xen_ComputerSystem")), class: full_class() };
    let decls = qualifier_declarations();
    let mut w = ResponseWriter::intrinsic("1", "Mixed");
    w.class_name("Xen_ComputerSystem");
    w.instance_name(&odd_keys_path());
    w.instance_name(&ObjectPath::new(None, "Xen_Singleton"));
    w.instance_name(&ObjectPath::new(None, "Xen_Bare").with_key("", "only"));
    w.instance_name(&ObjectPath::new(None, "Xen_BareRef").with_key("", vm_path("x")));
    w.instance_path(&host(vm_path("vm1")));
    w.object_path(&host(vm_path("vm1")), false);
    w.object_path(&class_path, true);
    w.instance_with_path(&instance, &ObjectOptions::FULL);
    w.object_with_path(&CimObject::Instance(instance.clone()), &ObjectOptions::FULL);
    w.instance_object_with_path(&instance, &ObjectOptions::FULL);
    w.object_with_path(&class_object, &ObjectOptions::FULL);
    w.write_item(|out| write::value_object_with_local_path(out, &local_class, &ObjectOptions::FULL));
    let local_instance = CimObject::Instance(full_instance().with_path(vm_path("vm3")));
    w.write_item(|out| write::value_object_with_local_path(out, &local_instance, &ObjectOptions::FULL));
    w.write_item(|out| write::value_object(out, &CimObject::Class { path: None, class: full_class() }, &ObjectOptions::FULL));
    w.write_item(|out| write::value_object(out, &CimObject::Instance(full_instance()), &ObjectOptions::FULL));
    for d in &decls {
        w.qualifier_declaration(d);
    }
    w.value(Some(&CimValue::UInt64(12)));
    w.value(Some(&vec!["a", "b"].into()));
    w.write_item(|out| write::value_reference(out, &vm_path("r")));
    w.write_item(|out| write::value_reference(out, &ObjectPath::new(None, "X").with_key("K", 1u8)));
    let doc = checked(w.finish());
    let (items, _) = intrinsic_items(&doc);
    let mut expected = vec![
        ReturnItem::ClassName("Xen_ComputerSystem".into()),
        ReturnItem::InstanceName(odd_keys_path()),
        ReturnItem::InstanceName(ObjectPath::new(None, "Xen_Singleton")),
        ReturnItem::InstanceName(ObjectPath::new(None, "Xen_Bare").with_key("", "only")),
        ReturnItem::InstanceName(ObjectPath::new(None, "Xen_BareRef").with_key("", vm_path("x"))),
        ReturnItem::InstancePath(host(vm_path("vm1"))),
        ReturnItem::ObjectPath(host(vm_path("vm1"))),
        ReturnItem::ObjectPath(class_path),
        ReturnItem::InstanceWithPath(instance.clone()),
        ReturnItem::ObjectWithPath(CimObject::Instance(instance.clone())),
        ReturnItem::ObjectWithPath(CimObject::Instance(instance)),
        ReturnItem::ObjectWithPath(class_object),
        ReturnItem::ObjectWithLocalPath(local_class),
        ReturnItem::ObjectWithLocalPath(local_instance),
        ReturnItem::Object(CimObject::Class { path: None, class: full_class() }),
        ReturnItem::Object(CimObject::Instance(full_instance())),
    ];
    expected.extend(decls.into_iter().map(ReturnItem::QualifierDecl));
    expected.push(ReturnItem::Value("12".into()));
    expected.push(ReturnItem::ValueArray(vec![Some("a".into()), Some("b".into())]));
    expected.push(ReturnItem::ValueReference(vm_path("r")));
    expected.push(ReturnItem::ValueReference(ObjectPath::new(None, "X").with_key("K", 1u8)));
    assert_eq!(items.len(), expected.len());
    for (got, want) in items.iter().zip(&expected) {
        assert_eq!(got, want);
    }
}

#[test]
fn pull_and_method_responses_round_trip() {
    let instance = full_instance().with_path(vm_path("vm1").with_host(Some("h".into())));
    let mut w = ResponseWriter::intrinsic("9", "OpenEnumerateInstances");
    w.instance_with_path(&instance, &ObjectOptions::default());
    w.pull_result(Some("ctx-1"), false);
    let doc = checked(w.finish());
    let s = text(&doc);
    assert!(s.find("</IRETURNVALUE>").unwrap() < s.find("<PARAMVALUE NAME=\"EnumerationContext\"").unwrap());
    let (items, params) = intrinsic_items(&doc);
    assert_eq!(items.len(), 1);
    assert_eq!(params[0].name, "EnumerationContext");
    assert_eq!(params[0].value, ParamValue::Value("ctx-1".into()));
    assert_eq!(params[1].name, "EndOfSequence");
    assert_eq!(params[1].value, ParamValue::Value(false.into()));

    let mut w = ResponseWriter::intrinsic("9", "PullInstancesWithPath");
    w.pull_result(None, true);
    let (items, params) = intrinsic_items(&checked(w.finish()));
    assert!(items.is_empty());
    assert_eq!(params[0].value, ParamValue::Null);
    assert_eq!(params[1].value, ParamValue::Value(true.into()));

    let job = vm_path("job").with_host(Some("h".into()));
    let mut w = ResponseWriter::extrinsic("10", "RequestStateChange");
    w.return_value(Some(&CimValue::UInt32(4096)), CimType::UInt32);
    w.output_param(&MethodParam::typed("Job", CimValue::Reference(job.clone())));
    w.output_param(&MethodParam::typed("Codes", vec![1i32, -1].into()));
    w.output_param(&MethodParam::typed("Result", CimValue::Instance(Box::new(embedded_address()))));
    w.output_param(&MethodParam::new("Nothing", ParamValue::Null));
    let doc = checked(w.finish());
    let response = parse_response(&doc).unwrap();
    assert_eq!(response.message_id, "10");
    let ResponseBody::Extrinsic { method, result: Ok(r) } = response.body else { panic!() };
    assert_eq!(method, "RequestStateChange");
    let rv = r.return_value.unwrap();
    assert_eq!((rv.param_type, rv.value), (Some(CimType::UInt32), ParamValue::Value(4096u32.into())));
    assert_eq!(r.params[0], MethodParam::typed("Job", CimValue::Reference(job)));
    assert_eq!(r.params[1], MethodParam::typed("Codes", vec![1i32, -1].into()));
    // Embedded objects come back as their text, which decodes to the instance.
    assert_eq!(r.params[2].embedded_object, Some(EmbeddedKind::Instance));
    let ParamValue::Text(xml) = &r.params[2].value else { panic!("{:?}", r.params[2]) };
    assert_eq!(decode_embedded_object(xml).unwrap(), CimObject::Instance(embedded_address()));
    assert_eq!(r.params[3].value, ParamValue::Null);

    let mut w = ResponseWriter::extrinsic("11", "DefineSystem");
    w.return_value(None, CimType::UInt32);
    let ResponseBody::Extrinsic { result: Ok(r), .. } = parse_response(&checked(w.finish())).unwrap().body else { panic!() };
    assert_eq!(r.return_value.unwrap().value, ParamValue::Null);
}

#[test]
fn errors_round_trip() {
    for kind in [CallKind::Intrinsic, CallKind::Extrinsic, CallKind::Export] {
        let doc = checked(error_response("5", kind, "GetInstance", &cim_error()));
        let response = parse_response(&doc).unwrap();
        let error = match response.body {
            ResponseBody::Intrinsic { result: Err(e), .. } if kind == CallKind::Intrinsic => e,
            ResponseBody::Extrinsic { result: Err(e), .. } if kind == CallKind::Extrinsic => e,
            ResponseBody::Export { result: Err(e), .. } if kind == CallKind::Export => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(error, cim_error());
    }
    let mut w = ResponseWriter::export("6", "ExportIndication");
    w.begin_return_value();
    let response = parse_response(&checked(w.finish())).unwrap();
    assert_eq!(
        response.body,
        ResponseBody::Export {
            method: "ExportIndication".into(),
            result: Ok(IntrinsicResult { return_value: Some(vec![]), params: vec![] })
        }
    );
}

#[test]
fn intrinsic_requests_round_trip() {
    let named = full_instance().with_path(odd_keys_path());
    let params: Vec<(String, ParamValue)> = vec![
        ("ClassName".into(), ParamValue::ClassName("Xen_ComputerSystem".into())),
        ("InstanceName".into(), ParamValue::InstanceName(odd_keys_path())),
        ("PropertyList".into(), ParamValue::TextArray(vec![Some("Name".into()), None, Some("EnabledState".into())])),
        ("EmptyList".into(), ParamValue::TextArray(vec![])),
        ("DeepInheritance".into(), ParamValue::Text("TRUE".into())),
        ("Nothing".into(), ParamValue::Null),
        ("Ref".into(), ParamValue::Reference(vm_path("vm1").with_host(Some("h".into())))),
        ("Refs".into(), ParamValue::RefArray(vec![Some(vm_path("a")), None])),
        ("QualifierDeclaration".into(), ParamValue::QualifierDecl(Box::new(qualifier_declarations().remove(2)))),
        ("NewClass".into(), ParamValue::Class(Box::new(full_class()))),
        ("NewInstance".into(), ParamValue::Instance(Box::new(full_instance()))),
        ("ModifiedInstance".into(), ParamValue::Instance(Box::new(named.clone()))),
    ];
    let doc = checked(intrinsic_request("42", "Mixed", "root/virt", &params));
    let request = parse_request(&doc).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(request.message_id, "42");
    let Call::Intrinsic(call) = request.call else { panic!() };
    assert_eq!(call.namespace, "root/virt");
    for ((n1, v1), (n2, v2)) in call.params.iter().zip(&params) {
        assert_eq!((n1, v1), (n2, v2));
    }
    assert_eq!(call.params, params);
    assert_eq!(call.property_list_param("propertylist").unwrap(), Some(vec!["Name".into(), "EnabledState".into()]));
    assert_eq!(call.property_list_param("EmptyList").unwrap(), Some(vec![]));
    assert_eq!(call.property_list_param("Nothing").unwrap(), None);
    assert_eq!(call.property_list_param("Absent").unwrap(), None);
    assert_eq!(call.instance_param("ModifiedInstance").unwrap(), Some(named));
    assert_eq!(call.instance_param("NewInstance").unwrap().unwrap().path, None);
    assert_eq!(call.class_param("NewClass").unwrap(), Some(full_class()));
    assert_eq!(call.qualifier_decl_param("QualifierDeclaration").unwrap(), Some(qualifier_declarations().remove(2)));
    assert_eq!(call.object_name_param("ClassName").unwrap(), Some(ObjectName::Class("Xen_ComputerSystem".into())));
    assert_eq!(call.bool_param("deepinheritance").unwrap(), Some(true));
    assert_eq!(call.bool_param("Nothing").unwrap(), None);
    let e = call.class_name_param("InstanceName").unwrap_err();
    assert!(e.description.contains("InstanceName") && e.description.contains("CLASSNAME"), "{e}");
    assert!(call.instance_name_param("ClassName").is_err());
    assert!(call.class_param("NewInstance").is_err());
    assert!(call.instance_param("NewClass").is_err());
    assert!(call.qualifier_decl_param("NewClass").is_err());
    assert!(call.property_list_param("ClassName").is_err());
    assert_eq!(
        call.value_param("Ref", CimType::Reference, false).unwrap(),
        Some(CimValue::Reference(vm_path("vm1").with_host(Some("h".into()))))
    );
    assert_eq!(call.value_param("DeepInheritance", CimType::Boolean, false).unwrap(), Some(true.into()));
    assert!(call.value_param("DeepInheritance", CimType::UInt8, false).is_err());
}

#[test]
fn extrinsic_and_export_requests_round_trip() {
    let embedded_text = write::embedded_text(&CimValue::Instance(Box::new(embedded_address()))).unwrap();
    let params = vec![
        MethodParam::typed("RequestedState", 2u16.into()),
        MethodParam::new("Untyped", ParamValue::Text("2".into())),
        MethodParam::typed("Codes", CimArray::new(CimType::SInt32, vec![Some(1i32.into()), None]).unwrap().into()),
        MethodParam::typed("Job", CimValue::Reference(vm_path("job"))),
        MethodParam::typed(
            "Affected",
            CimArray::from_values(CimType::Reference, vec![vm_path("a").into(), vm_path("b").into()]).unwrap().into(),
        ),
        MethodParam::new("UntypedRef", ParamValue::Reference(vm_path("c"))),
        MethodParam {
            name: "Settings".into(),
            param_type: Some(CimType::String),
            embedded_object: Some(EmbeddedKind::Instance),
            value: ParamValue::Text(embedded_text.clone()),
        },
        MethodParam {
            name: "MofSettings".into(),
            param_type: Some(CimType::String),
            embedded_object: Some(EmbeddedKind::Instance),
            value: ParamValue::TextArray(vec![Some("instance of Xen_Foo { Name = \"x\"; };".into())]),
        },
        MethodParam::new("Class", ParamValue::ClassName("Xen_Foo".into())),
        MethodParam::new("Name", ParamValue::InstanceName(odd_keys_path())),
        MethodParam::new("Object", ParamValue::Instance(Box::new(full_instance()))),
        MethodParam::new("Schema", ParamValue::Class(Box::new(full_class()))),
        MethodParam::new("Null", ParamValue::Null),
    ];
    for target in [MethodTarget::Instance(vm_path("vm1")), MethodTarget::Class(ObjectPath::new(Some("root/virt"), "Xen_VSMS"))] {
        let doc = checked(extrinsic_request("3", "DefineSystem", &target, &params));
        let request = parse_request(&doc).unwrap_or_else(|e| panic!("{e}"));
        let Call::Extrinsic(call) = request.call else { panic!() };
        assert_eq!(call.target, target);
        for (a, b) in call.params.iter().zip(&params) {
            assert_eq!(a, b);
        }
        assert_eq!(call.params.len(), params.len());
        assert_eq!(call.param("settings").unwrap().value, ParamValue::Text(embedded_text.clone()));
    }

    let indication = Instance::new("CIM_InstCreation")
        .with("IndicationTime", CimDateTime::parse("20240101000000.000000+000").unwrap())
        .with("SourceInstance", embedded_address());
    let doc = checked(export_indication_request("1001", &indication));
    let request = parse_request(&doc).unwrap();
    assert_eq!(request.kind(), CallKind::Export);
    assert_eq!(request.method_name(), "ExportIndication");
    let Call::Export(call) = &request.call else { panic!() };
    assert_eq!(call.indication(), Some(&indication));
    let doc = checked(export_request("2", "ExportIndication", &[("NewIndication", None)]));
    let Call::Export(call) = parse_request(&doc).unwrap().call else { panic!() };
    assert_eq!(call.params, vec![("NewIndication".to_string(), None)]);
}
