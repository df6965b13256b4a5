//! Writer rules: exact envelope, no self-closing tags, the attributes sblim wbemcli accepts,
//! the IncludeQualifiers / IncludeClassOrigin / LocalOnly options, and streaming in chunks.

use quick_xml::events::Event;
use quick_xml::Reader;

use super::samples::*;
use crate::cim::*;
use crate::cimxml::*;

fn s(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn envelope_and_error_are_exact() {
    let doc = error_response("4711", CallKind::Intrinsic, "EnumerateInstances", &CimError::not_supported("no"));
    assert_eq!(
        s(&doc),
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\"><MESSAGE ID=\"4711\" PROTOCOLVERSION=\"1.0\">\
<SIMPLERSP><IMETHODRESPONSE NAME=\"EnumerateInstances\"><ERROR CODE=\"7\" DESCRIPTION=\"no\"></ERROR></IMETHODRESPONSE></SIMPLERSP></MESSAGE></CIM>\n"
    );
    let doc = error_response("1", CallKind::Extrinsic, "M", &CimError::failed(""));
    assert!(s(&doc).contains("<METHODRESPONSE NAME=\"M\"><ERROR CODE=\"1\"></ERROR></METHODRESPONSE>"));
    let doc = error_response("1", CallKind::Export, "ExportIndication", &CimError::failed("x"));
    assert!(s(&doc).contains("<SIMPLEEXPRSP><EXPMETHODRESPONSE NAME=\"ExportIndication\"><ERROR"));
}

#[test]
fn empty_values_are_never_self_closing() {
    let mut instance = Instance::new("Xen_Empty");
    instance.set("S", "");
    instance.set("A", CimArray::new(CimType::String, vec![Some("".into()), None]).unwrap());
    instance.set("None", CimArray::empty(CimType::UInt8));
    instance.set_property(Property::null("P", CimType::String, false));
    instance.set_property(Property::null("PA", CimType::UInt16, true));
    instance.set_property(Property::reference("R", None, None));
    instance.path = Some(ObjectPath::new(Some("root/virt"), "Xen_Empty").with_key("S", "").with_key("N", KeyValue::numeric("", None)));
    let class = Class::new("Xen_Empty", None)
        .with_property(Property::null("P", CimType::String, false))
        .with_method(
            Method::new("M", CimType::UInt32)
                .with_parameter(Parameter::new("A", CimType::String, false))
                .with_parameter(Parameter::new("B", CimType::String, true))
                .with_parameter(Parameter::new("C", CimType::Reference, false))
                .with_parameter(Parameter::new("D", CimType::Reference, true)),
        )
        .with_qualifier(Qualifier::null("Q", CimType::String, false));
    let mut w = ResponseWriter::intrinsic("1", "X");
    w.begin_return_value();
    w.named_instance(&instance, &ObjectOptions::FULL);
    w.instance_with_path(&instance, &ObjectOptions::FULL);
    w.class(&class, &ObjectOptions::FULL);
    w.class_name("C");
    w.qualifier_declaration(&QualifierDecl::new("D", CimType::Boolean, false));
    w.value(Some(&"".into()));
    w.pull_result(None, true);
    let doc = s(&w.finish());
    for bad in ["/>", "<VALUE/>", "<PROPERTY NAME=\"P\" TYPE=\"string\"/>", "<KEYVALUE"] {
        if bad == "<KEYVALUE" {
            assert!(doc.contains("<KEYVALUE VALUETYPE=\"string\" TYPE=\"string\"></KEYVALUE>"), "{doc}");
        } else {
            assert!(!doc.contains(bad), "{bad} in {doc}");
        }
    }
    for expected in [
        "<PROPERTY NAME=\"P\" TYPE=\"string\"></PROPERTY>",
        "<PROPERTY.ARRAY NAME=\"PA\" TYPE=\"uint16\"></PROPERTY.ARRAY>",
        "<PROPERTY NAME=\"S\" TYPE=\"string\"><VALUE></VALUE></PROPERTY>",
        "<VALUE.ARRAY><VALUE></VALUE><VALUE.NULL></VALUE.NULL></VALUE.ARRAY>",
        "<PROPERTY.ARRAY NAME=\"None\" TYPE=\"uint8\"><VALUE.ARRAY></VALUE.ARRAY></PROPERTY.ARRAY>",
        "<PROPERTY.REFERENCE NAME=\"R\"></PROPERTY.REFERENCE>",
        "<PARAMETER NAME=\"A\" TYPE=\"string\"></PARAMETER>",
        "<PARAMETER.ARRAY NAME=\"B\" TYPE=\"string\"></PARAMETER.ARRAY>",
        "<PARAMETER.REFERENCE NAME=\"C\"></PARAMETER.REFERENCE>",
        "<PARAMETER.REFARRAY NAME=\"D\"></PARAMETER.REFARRAY>",
        "<QUALIFIER NAME=\"Q\" TYPE=\"string\"></QUALIFIER>",
        "<KEYVALUE VALUETYPE=\"numeric\"></KEYVALUE>",
        "<NAMESPACE NAME=\"root\"></NAMESPACE>",
        "<CLASSNAME NAME=\"C\"></CLASSNAME>",
        "<PARAMVALUE NAME=\"EnumerationContext\" PARAMTYPE=\"string\"></PARAMVALUE>",
    ] {
        assert!(doc.contains(expected), "{expected} missing from {doc}");
    }
}

/// The attributes sblim wbemcli's reader accepts per element (it rejects any other attribute).
fn wbemcli_attributes(element: &str) -> Option<&'static [&'static str]> {
    Some(match element {
        "CIM" => &["CIMVERSION", "DTDVERSION"],
        "MESSAGE" => &["ID", "PROTOCOLVERSION"],
        "IMETHODRESPONSE" | "METHODRESPONSE" | "CLASSNAME" | "KEYBINDING" | "NAMESPACE" => &["NAME"],
        "INSTANCE" | "INSTANCENAME" => &["CLASSNAME"],
        "CLASS" => &["NAME", "SUPERCLASS"],
        "PROPERTY" => &["NAME", "TYPE", "CLASSORIGIN", "PROPAGATED", "EMBEDDEDOBJECT"],
        "PROPERTY.ARRAY" => &["NAME", "TYPE", "CLASSORIGIN", "PROPAGATED", "ARRAYSIZE"],
        "PROPERTY.REFERENCE" => &["NAME", "REFERENCECLASS", "CLASSORIGIN", "PROPAGATED"],
        "METHOD" => &["NAME", "TYPE", "CLASSORIGIN", "PROPAGATED"],
        "PARAMETER" => &["NAME", "TYPE"],
        "PARAMETER.REFERENCE" => &["NAME", "REFERENCECLASS"],
        "PARAMETER.ARRAY" => &["NAME", "TYPE", "ARRAYSIZE"],
        "PARAMETER.REFARRAY" => &["NAME", "REFERENCECLASS", "ARRAYSIZE"],
        "KEYVALUE" => &["VALUETYPE", "TYPE"],
        "ERROR" => &["DESCRIPTION", "CODE"],
        "RETURNVALUE" => &["PARAMTYPE"],
        "PARAMVALUE" => &["NAME", "PARAMTYPE"],
        "SIMPLERSP"
        | "IRETURNVALUE"
        | "VALUE"
        | "VALUE.ARRAY"
        | "VALUE.REFERENCE"
        | "VALUE.NAMEDINSTANCE"
        | "VALUE.OBJECTWITHPATH"
        | "INSTANCEPATH"
        | "LOCALINSTANCEPATH"
        | "NAMESPACEPATH"
        | "LOCALNAMESPACEPATH"
        | "HOST"
        | "OBJECTPATH" => &[],
        // wbemcli skips qualifiers unparsed.
        "QUALIFIER" => return None,
        _ => return None,
    })
}

fn assert_wbemcli_readable(doc: &[u8]) {
    let text = std::str::from_utf8(doc).unwrap();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\" ?>"), "wbemcli reads only version and encoding");
    let mut reader = Reader::from_str(text);
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => {
                let name = std::str::from_utf8(e.name().as_ref()).unwrap().to_string();
                let Some(allowed) = wbemcli_attributes(&name) else { continue };
                for a in e.attributes() {
                    let a = a.unwrap();
                    let key = std::str::from_utf8(a.key.as_ref()).unwrap().to_ascii_uppercase();
                    assert!(allowed.contains(&key.as_str()), "wbemcli rejects attribute {key} on {name}");
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
}

#[test]
fn responses_use_only_attributes_wbemcli_reads() {
    // What the wbemcli commands receive: ei, ein, gi, gc, ai/ri, ain/rin, cm and errors.
    let mut instance = full_instance().with_path(vm_path("vm1").with_host(Some("h".into())));
    // wbemcli's PROPERTY.ARRAY has no EmbeddedObject attribute (see the report on embedded arrays).
    instance.remove("Addresses");
    let mut w = ResponseWriter::intrinsic("4711", "EnumerateInstances");
    w.named_instance(&instance, &ObjectOptions::FULL);
    w.instance(&instance, &ObjectOptions::FULL);
    w.instance_name(&odd_keys_path());
    w.class(&full_class(), &ObjectOptions::FULL);
    w.instance_object_with_path(&instance, &ObjectOptions::FULL);
    w.object_path(&vm_path("vm1"), false);
    w.class_name("Xen_ComputerSystem");
    assert_wbemcli_readable(&w.finish());
    let mut w = ResponseWriter::extrinsic("4711", "RequestStateChange");
    w.return_value(Some(&4096u32.into()), CimType::UInt32);
    w.output_param(&MethodParam::typed("Job", CimValue::Reference(vm_path("job"))));
    assert_wbemcli_readable(&w.finish());
    assert_wbemcli_readable(&error_response("4711", CallKind::Intrinsic, "GetInstance", &cim_error()));
}

#[test]
fn class_options_control_qualifiers_origin_and_local_only() {
    let class = full_class();
    let write = |opts: ObjectOptions| {
        let mut out = Vec::new();
        write::class(&mut out, &class, &opts);
        s(&out)
    };
    let full = write(ObjectOptions::FULL);
    assert!(full.contains("<QUALIFIER NAME=\"Description\""));
    assert!(full.contains("CLASSORIGIN=\"CIM_EnabledLogicalElement\""));
    assert!(full.contains("PROPAGATED=\"true\""));
    assert!(full.contains("<METHOD NAME=\"Inherited\""));
    assert!(full.contains("<PROPERTY NAME=\"Settings\" TYPE=\"string\" EmbeddedObject=\"instance\">"));
    assert!(full.contains("<QUALIFIER NAME=\"Key\" TYPE=\"boolean\" OVERRIDABLE=\"false\"><VALUE>TRUE</VALUE></QUALIFIER>"));
    assert!(full.contains("<PROPERTY.ARRAY NAME=\"Sizes\" TYPE=\"uint64\" ARRAYSIZE=\"2\">"));

    let bare = write(ObjectOptions::default());
    assert!(!bare.contains("<QUALIFIER"));
    assert!(!bare.contains("CLASSORIGIN"));
    assert!(bare.contains("<PROPERTY NAME=\"EnabledState\" TYPE=\"uint16\" PROPAGATED=\"true\"></PROPERTY>"));

    let local = write(ObjectOptions { local_only: true, ..ObjectOptions::default() });
    assert!(!local.contains("EnabledState"), "propagated property left out");
    assert!(!local.contains("Inherited"), "propagated method left out");
    assert!(local.contains("<PROPERTY NAME=\"Name\" TYPE=\"string\"><VALUE>default</VALUE></PROPERTY>"));
}

#[test]
fn embedded_objects_are_escaped_cim_xml() {
    let mut out = Vec::new();
    let inst = Instance::new("Outer").with("Inner", Instance::new("Xen_In").with("N", "a&b"));
    write::instance(&mut out, &inst, &ObjectOptions::default());
    assert_eq!(
        s(&out),
        "<INSTANCE CLASSNAME=\"Outer\"><PROPERTY NAME=\"Inner\" TYPE=\"string\" EmbeddedObject=\"instance\"><VALUE>\
&lt;INSTANCE CLASSNAME=\"Xen_In\"&gt;&lt;PROPERTY NAME=\"N\" TYPE=\"string\"&gt;&lt;VALUE&gt;a&amp;amp;b&lt;/VALUE&gt;&lt;/PROPERTY&gt;&lt;/INSTANCE&gt;\
</VALUE></PROPERTY></INSTANCE>"
    );
}

#[test]
fn ten_thousand_instances_stream_in_bounded_chunks() {
    let make = |n: usize| {
        Instance::new("Xen_ComputerSystem")
            .with("CreationClassName", "Xen_ComputerSystem")
            .with("Name", format!("vm-{n:05}"))
            .with("EnabledState", 2u16)
            .with("OperationalStatus", vec![2u16])
            .with_path(vm_path(&format!("vm-{n:05}")).local())
    };
    let mut w = ResponseWriter::intrinsic("1", "EnumerateInstances");
    w.begin_return_value();
    let mut streamed = w.take_chunk();
    let mut max_buffered = 0;
    for n in 0..10_000 {
        w.named_instance(&make(n), &ObjectOptions::default());
        max_buffered = max_buffered.max(w.buffered_len());
        if w.buffered_len() >= 16 * 1024 {
            streamed.extend(w.take_chunk());
        }
    }
    streamed.extend(w.finish());
    assert!(max_buffered < 17 * 1024, "buffer grew to {max_buffered}");

    let mut whole = ResponseWriter::intrinsic("1", "EnumerateInstances");
    whole.begin_return_value();
    for n in 0..10_000 {
        whole.named_instance(&make(n), &ObjectOptions::default());
    }
    assert_eq!(streamed, whole.finish(), "chunks concatenate to the same document");

    let ResponseBody::Intrinsic { result: Ok(r), .. } = parse_response(&streamed).unwrap().body else { panic!() };
    let items = r.return_value.unwrap();
    assert_eq!(items.len(), 10_000);
    assert_eq!(items[9_999], ReturnItem::NamedInstance(make(9_999)));
}
