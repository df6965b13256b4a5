//! Malformed and hostile requests: each gives the right kind of error, and nothing panics.

use crate::cim::CimStatus;
use crate::cimxml::*;

const HEAD: &str =
    r#"<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="77" PROTOCOLVERSION="1.0"><SIMPLEREQ>"#;
const TAIL: &str = "</SIMPLEREQ></MESSAGE></CIM>";
const NS: &str = r#"<LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="virt"/></LOCALNAMESPACEPATH>"#;

fn imethod(params: &str) -> String {
    format!(r#"{HEAD}<IMETHODCALL NAME="CreateInstance">{NS}{params}</IMETHODCALL>{TAIL}"#)
}

fn new_instance(properties: &str) -> String {
    imethod(&format!(r#"<IPARAMVALUE NAME="NewInstance"><INSTANCE CLASSNAME="Xen_Foo">{properties}</INSTANCE></IPARAMVALUE>"#))
}

fn method(params: &str) -> String {
    format!(
        r#"{HEAD}<METHODCALL NAME="RequestStateChange"><LOCALINSTANCEPATH>{NS}<INSTANCENAME CLASSNAME="Xen_ComputerSystem"><KEYBINDING NAME="Name"><KEYVALUE>vm1</KEYVALUE></KEYBINDING></INSTANCENAME></LOCALINSTANCEPATH>{params}</METHODCALL>{TAIL}"#
    )
}

fn keyvalue(attrs: &str, text: &str) -> String {
    imethod(&format!(
        r#"<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="C"><KEYBINDING NAME="K"><KEYVALUE {attrs}>{text}</KEYVALUE></KEYBINDING></INSTANCENAME></IPARAMVALUE>"#
    ))
}

fn embedded(levels: usize) -> String {
    let mut inner = r#"<INSTANCE CLASSNAME="Leaf"></INSTANCE>"#.to_string();
    for _ in 0..levels {
        let mut escaped = Vec::new();
        crate::cimxml::escape::text(&mut escaped, &inner);
        inner = format!(
            r#"<INSTANCE CLASSNAME="Level"><PROPERTY NAME="Inner" TYPE="string" EmbeddedObject="instance"><VALUE>{}</VALUE></PROPERTY></INSTANCE>"#,
            String::from_utf8(escaped).unwrap()
        );
    }
    inner
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Http(ProtocolErrorKind),
    Cim(CimStatus),
}

use Expect::*;
use ProtocolErrorKind::*;

fn check(name: &str, body: &[u8], expect: Expect, mention: &str) {
    let result = parse_request(body);
    let err = match result {
        Ok(r) => panic!("{name}: accepted as {r:?}"),
        Err(e) => e,
    };
    let (got, description) = match &err {
        RequestError::Protocol(p) => (Http(p.kind), p.description.clone()),
        RequestError::Cim { error, message_id, method, .. } => {
            assert_eq!(message_id, "77", "{name}");
            assert!(!method.is_empty(), "{name}");
            (Cim(error.status), error.description.clone())
        }
    };
    assert_eq!(got, expect, "{name}: {err}");
    assert!(description.contains(mention), "{name}: '{description}' should mention '{mention}'");
    match got {
        Http(kind) => {
            assert_eq!(err.http_status(), kind.http_status());
            assert_eq!(err.cim_error_header(), Some(kind.header_value()));
            assert!(err.to_response().is_none());
        }
        Cim(_) => {
            assert_eq!(err.http_status(), 200);
            let response = parse_response(&err.to_response().unwrap()).unwrap();
            assert_eq!(response.message_id, "77");
        }
    }
}

#[test]
fn malformed_requests_give_the_right_error() {
    let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><CIM CIMVERSION="2.0" DTDVERSION="2.0">&lol3;</CIM>"#;
    let deep =
        imethod(&format!(r#"<IPARAMVALUE NAME="X">{}{}</IPARAMVALUE>"#, "<VALUE.ARRAY>".repeat(10_000), "</VALUE.ARRAY>".repeat(10_000)));
    let table: Vec<(&str, Vec<u8>, Expect, &str)> = vec![
        ("empty body", b"".to_vec(), Http(RequestNotWellFormed), "no root"),
        ("not xml", b"hello".to_vec(), Http(RequestNotWellFormed), "text outside"),
        ("invalid utf-8", [HEAD.as_bytes(), b"\xc3\x28", TAIL.as_bytes()].concat(), Http(RequestNotWellFormed), "UTF-8"),
        ("billion laughs", billion_laughs.into(), Http(RequestNotWellFormed), "DTD"),
        (
            "external entity",
            format!(r#"<!DOCTYPE CIM SYSTEM "file:///etc/passwd">{}"#, imethod("")).into(),
            Http(RequestNotWellFormed),
            "DTD",
        ),
        ("undeclared entity", imethod(r#"<IPARAMVALUE NAME="X"><VALUE>&xxe;</VALUE></IPARAMVALUE>"#).into(), Http(RequestNotWellFormed), "xxe"),
        ("10,000-deep nesting", deep.into(), Http(RequestNotValid), "deeper than 100"),
        ("mismatched end tag", imethod(r#"<IPARAMVALUE NAME="X"><VALUE>1</VALUE.ARRAY></IPARAMVALUE>"#).into(), Http(RequestNotWellFormed), "line 1"),
        ("unclosed", imethod("").replace("</CIM>", "").into(), Http(RequestNotWellFormed), "CIM"),
        ("garbage after root", format!("{}<CIM/>", imethod("")).into(), Http(RequestNotWellFormed), "after the root"),
        ("unknown element", imethod(r#"<IPARAMVALUE NAME="X"><FOO/></IPARAMVALUE>"#).into(), Http(RequestNotValid), "FOO"),
        ("unknown element in call", imethod("<BOGUS/>").into(), Http(RequestNotValid), "BOGUS"),
        ("bad nesting", imethod(r#"<IPARAMVALUE NAME="X"><IPARAMVALUE NAME="Y"/></IPARAMVALUE>"#).into(), Http(RequestNotValid), "IPARAMVALUE"),
        (
            "param inside namespace path",
            format!(r#"{HEAD}<IMETHODCALL NAME="GetClass"><LOCALNAMESPACEPATH><IPARAMVALUE NAME="X"/></LOCALNAMESPACEPATH></IMETHODCALL>{TAIL}"#).into(),
            Http(RequestNotValid),
            "NAMESPACE",
        ),
        ("text in element content", imethod("junk").into(), Http(RequestNotValid), "text"),
        ("value with child", imethod(r#"<IPARAMVALUE NAME="X"><VALUE><VALUE/></VALUE></IPARAMVALUE>"#).into(), Http(RequestNotValid), "VALUE"),
        ("two values", imethod(r#"<IPARAMVALUE NAME="X"><VALUE>1</VALUE><VALUE>2</VALUE></IPARAMVALUE>"#).into(), Http(RequestNotValid), "more than one"),
        ("missing IMETHODCALL NAME", format!("{HEAD}<IMETHODCALL>{NS}</IMETHODCALL>{TAIL}").into(), Http(RequestNotValid), "NAME"),
        ("empty METHODCALL NAME", method("").replace(r#"NAME="RequestStateChange""#, r#"NAME="""#).into(), Http(RequestNotValid), "empty NAME"),
        ("missing IPARAMVALUE NAME", imethod("<IPARAMVALUE><VALUE>1</VALUE></IPARAMVALUE>").into(), Http(RequestNotValid), "NAME"),
        ("missing PARAMVALUE NAME", method("<PARAMVALUE><VALUE>1</VALUE></PARAMVALUE>").into(), Http(RequestNotValid), "NAME"),
        ("missing NAMESPACE NAME", format!(r#"{HEAD}<IMETHODCALL NAME="GetClass"><LOCALNAMESPACEPATH><NAMESPACE/></LOCALNAMESPACEPATH></IMETHODCALL>{TAIL}"#).into(), Http(RequestNotValid), "NAME"),
        ("missing KEYBINDING NAME", keyvalue("", "x").replace(r#"<KEYBINDING NAME="K">"#, "<KEYBINDING>").into(), Http(RequestNotValid), "NAME"),
        ("missing INSTANCENAME CLASSNAME", keyvalue("", "x").replace(r#"INSTANCENAME CLASSNAME="C""#, "INSTANCENAME").into(), Http(RequestNotValid), "CLASSNAME"),
        ("missing PROPERTY NAME", new_instance(r#"<PROPERTY TYPE="string"><VALUE>x</VALUE></PROPERTY>"#).into(), Http(RequestNotValid), "NAME"),
        ("missing PROPERTY TYPE", new_instance(r#"<PROPERTY NAME="P"><VALUE>x</VALUE></PROPERTY>"#).into(), Http(RequestNotValid), "TYPE"),
        ("unknown TYPE", new_instance(r#"<PROPERTY NAME="P" TYPE="uint128"><VALUE>1</VALUE></PROPERTY>"#).into(), Http(RequestNotValid), "uint128"),
        ("bad boolean attribute", new_instance(r#"<PROPERTY NAME="P" TYPE="string" PROPAGATED="maybe"></PROPERTY>"#).into(), Http(RequestNotValid), "PROPAGATED"),
        ("bad VALUETYPE", keyvalue(r#"VALUETYPE="float""#, "1").into(), Http(RequestNotValid), "float"),
        ("mixed INSTANCENAME", keyvalue("", "x").replace("</KEYBINDING>", "</KEYBINDING><KEYVALUE>y</KEYVALUE>").into(), Http(RequestNotValid), "INSTANCENAME"),
        ("root is not CIM", b"<MESSAGE/>".to_vec(), Http(RequestNotValid), "root element"),
        ("missing MESSAGE ID", imethod("").replace(r#" ID="77""#, "").into(), Http(RequestNotValid), "ID"),
        ("missing CIMVERSION", imethod("").replace(r#" CIMVERSION="2.0""#, "").into(), Http(RequestNotValid), "CIMVERSION"),
        ("two calls", format!(r#"{HEAD}<IMETHODCALL NAME="A">{NS}</IMETHODCALL><IMETHODCALL NAME="B">{NS}</IMETHODCALL>{TAIL}"#).into(), Http(RequestNotValid), "exactly one call"),
        ("no namespace path", format!(r#"{HEAD}<IMETHODCALL NAME="A"></IMETHODCALL>{TAIL}"#).into(), Http(RequestNotValid), "LOCALNAMESPACEPATH"),
        ("empty namespace path", format!(r#"{HEAD}<IMETHODCALL NAME="A"><LOCALNAMESPACEPATH></LOCALNAMESPACEPATH></IMETHODCALL>{TAIL}"#).into(), Http(RequestNotValid), "at least one"),
        ("method call without path", format!(r#"{HEAD}<METHODCALL NAME="M"></METHODCALL>{TAIL}"#).into(), Http(RequestNotValid), "LOCALINSTANCEPATH"),
        ("response sent as request", format!(r#"{HEAD}<IMETHODRESPONSE NAME="A"/>{TAIL}"#).into(), Http(RequestNotValid), "IMETHODRESPONSE"),
        ("CIM version 3", imethod("").replace(r#"CIMVERSION="2.0""#, r#"CIMVERSION="3.0""#).into(), Http(UnsupportedCimVersion), "3.0"),
        ("DTD version 3", imethod("").replace(r#"DTDVERSION="2.0""#, r#"DTDVERSION="3.1""#).into(), Http(UnsupportedDtdVersion), "3.1"),
        ("protocol version 2", imethod("").replace(r#"PROTOCOLVERSION="1.0""#, r#"PROTOCOLVERSION="2.0""#).into(), Http(UnsupportedProtocolVersion), "2.0"),
        ("multiple requests", imethod("").replace("SIMPLEREQ", "MULTIREQ").into(), Http(MultipleRequestsUnsupported), "multiple"),
        (
            "too many attributes",
            imethod(&format!("<IPARAMVALUE NAME=\"X\" {}/>", (0..40).map(|i| format!("a{i}=\"\"")).collect::<Vec<_>>().join(" "))).into(),
            Http(RequestNotValid),
            "attributes",
        ),
        // Well-formed and valid, but a value that does not fit its type: a CIM-XML ERROR saying where.
        (
            "wrong type text in a property",
            new_instance(r#"<PROPERTY NAME="Count" TYPE="uint32"><VALUE>abc</VALUE></PROPERTY>"#).into(),
            Cim(CimStatus::InvalidParameter),
            r#"IPARAMVALUE "NewInstance" > INSTANCE "Xen_Foo" > PROPERTY "Count" > 'abc' is not a valid uint32 value"#,
        ),
        (
            "out of range",
            new_instance(r#"<PROPERTY NAME="Small" TYPE="uint8"><VALUE>256</VALUE></PROPERTY>"#).into(),
            Cim(CimStatus::InvalidParameter),
            "out of range for uint8",
        ),
        (
            "wrong type text in an array",
            new_instance(r#"<PROPERTY.ARRAY NAME="List" TYPE="sint16"><VALUE.ARRAY><VALUE>1</VALUE><VALUE>x</VALUE></VALUE.ARRAY></PROPERTY.ARRAY>"#)
                .into(),
            Cim(CimStatus::InvalidParameter),
            r#"PROPERTY.ARRAY "List" > element 1"#,
        ),
        (
            "bad datetime",
            new_instance(r#"<PROPERTY NAME="When" TYPE="datetime"><VALUE>20241301000000.000000+000</VALUE></PROPERTY>"#).into(),
            Cim(CimStatus::InvalidParameter),
            "month",
        ),
        (
            "wrong PARAMTYPE text",
            method(r#"<PARAMVALUE NAME="RequestedState" PARAMTYPE="uint16"><VALUE>two</VALUE></PARAMVALUE>"#).into(),
            Cim(CimStatus::InvalidParameter),
            r#"PARAMVALUE "RequestedState""#,
        ),
        (
            "reference as plain value",
            method(r#"<PARAMVALUE NAME="Job" PARAMTYPE="reference"><VALUE>x</VALUE></PARAMVALUE>"#).into(),
            Cim(CimStatus::InvalidParameter),
            "VALUE.REFERENCE",
        ),
        ("numeric key not a number", keyvalue(r#"VALUETYPE="numeric""#, "abc").into(), Cim(CimStatus::InvalidParameter), r#"KEYBINDING "K""#),
        ("boolean key not a boolean", keyvalue(r#"VALUETYPE="boolean""#, "maybe").into(), Cim(CimStatus::InvalidParameter), "maybe"),
        ("typed key out of range", keyvalue(r#"VALUETYPE="numeric" TYPE="uint8""#, "300").into(), Cim(CimStatus::InvalidParameter), "uint8"),
        (
            "duplicate parameter",
            imethod(r#"<IPARAMVALUE NAME="X"><VALUE>1</VALUE></IPARAMVALUE><IPARAMVALUE NAME="x"><VALUE>2</VALUE></IPARAMVALUE>"#).into(),
            Cim(CimStatus::InvalidParameter),
            "twice",
        ),
        (
            "duplicate property",
            new_instance(r#"<PROPERTY NAME="A" TYPE="string"></PROPERTY><PROPERTY NAME="a" TYPE="string"></PROPERTY>"#).into(),
            Cim(CimStatus::InvalidParameter),
            "twice",
        ),
        (
            "broken embedded instance",
            new_instance(r#"<PROPERTY NAME="E" TYPE="string" EmbeddedObject="instance"><VALUE>&lt;INSTANCE CLASSNAME="X"&gt;</VALUE></PROPERTY>"#).into(),
            Cim(CimStatus::InvalidParameter),
            "embedded object",
        ),
        (
            "embedded instance with a bad value",
            new_instance(&format!(
                r#"<PROPERTY NAME="E" TYPE="string" EmbeddedObject="instance"><VALUE>{}</VALUE></PROPERTY>"#,
                "&lt;INSTANCE CLASSNAME=&quot;X&quot;&gt;&lt;PROPERTY NAME=&quot;N&quot; TYPE=&quot;uint8&quot;&gt;&lt;VALUE&gt;-1&lt;/VALUE&gt;&lt;/PROPERTY&gt;&lt;/INSTANCE&gt;"
            ))
            .into(),
            Cim(CimStatus::InvalidParameter),
            r#"embedded object: INSTANCE "X" > PROPERTY "N""#,
        ),
        (
            "embedded objects nested too deep",
            imethod(&format!(r#"<IPARAMVALUE NAME="NewInstance">{}</IPARAMVALUE>"#, embedded(9))).into(),
            Cim(CimStatus::InvalidParameter),
            "nested deeper than 8",
        ),
        (
            "export with a bad instance",
            format!(
                r#"{}<EXPMETHODCALL NAME="ExportIndication"><EXPPARAMVALUE NAME="NewIndication"><INSTANCE CLASSNAME="CIM_InstCreation"><PROPERTY NAME="T" TYPE="datetime"><VALUE>now</VALUE></PROPERTY></INSTANCE></EXPPARAMVALUE></EXPMETHODCALL>{}"#,
                HEAD.replace("SIMPLEREQ", "SIMPLEEXPREQ"),
                TAIL.replace("SIMPLEREQ", "SIMPLEEXPREQ")
            )
            .into(),
            Cim(CimStatus::InvalidParameter),
            "EXPPARAMVALUE",
        ),
    ];
    for (name, body, expect, mention) in table {
        check(name, &body, expect, mention);
    }
    // Eight levels of embedding are fine.
    let ok = imethod(&format!(r#"<IPARAMVALUE NAME="NewInstance">{}</IPARAMVALUE>"#, embedded(8)));
    assert!(parse_request(ok.as_bytes()).is_ok());
}

#[test]
fn element_count_limit() {
    let body = imethod(&format!(r#"<IPARAMVALUE NAME="L"><VALUE.ARRAY>{}</VALUE.ARRAY></IPARAMVALUE>"#, "<VALUE>1</VALUE>".repeat(100)));
    let limits = ParseLimits { max_elements: 50, ..ParseLimits::default() };
    let RequestError::Protocol(p) = parse_request_with(body.as_bytes(), &limits).unwrap_err() else { panic!() };
    assert_eq!(p.kind, RequestNotValid);
    assert!(parse_request(body.as_bytes()).is_ok());
}

#[test]
fn string_and_array_limits_in_real_requests() {
    let limits = ParseLimits { max_string_bytes: 24, max_array_items: 3, ..ParseLimits::default() };
    let param = |inner: String| method(&format!(r#"<PARAMVALUE NAME="P">{inner}</PARAMVALUE>"#));
    let array = |n: usize| param(format!("<VALUE.ARRAY>{}</VALUE.ARRAY>", "<VALUE>1</VALUE>".repeat(n)));
    let refs = |n: usize| {
        let one = r#"<VALUE.REFERENCE><INSTANCENAME CLASSNAME="C"/></VALUE.REFERENCE>"#;
        param(format!("<VALUE.REFARRAY>{}</VALUE.REFARRAY>", one.repeat(n)))
    };
    let string = |n: usize| param(format!("<VALUE>{}</VALUE>", "&amp;".repeat(n)));
    let table: [(&str, String, String, &str); 3] = [
        ("VALUE.ARRAY", array(3), array(4), "VALUE.ARRAY with more than 3 items (max_array_items)"),
        ("VALUE.REFARRAY", refs(3), refs(4), "VALUE.REFARRAY with more than 3 items (max_array_items)"),
        ("string", string(24), string(25), "the text of element VALUE is longer than 24 bytes (max_string_bytes)"),
    ];
    for (what, at, over, mention) in table {
        if let Err(e) = parse_request_with(at.as_bytes(), &limits) {
            panic!("{what}: refused at the limit: {e:?}");
        }
        let Err(RequestError::Protocol(p)) = parse_request_with(over.as_bytes(), &limits) else { panic!("{what}: not refused") };
        assert_eq!(p.kind, RequestNotValid, "{what}");
        assert!(p.description.contains(mention), "{what}: {p}");
        assert!(parse_request(over.as_bytes()).is_ok(), "{what}: only the small limit refuses it");
    }
}

/// Every prefix of the captures, and the captures with bytes replaced, decode or fail cleanly.
#[test]
fn mangled_captures_never_panic() {
    let captures = [
        include_str!("wire/wbemcli-gi-1.txt"),
        include_str!("wire/wbemcli-cm-2.txt"),
        include_str!("wire/pywbem-invokemethod.txt"),
        include_str!("wire/pywbemcli-ei-1.txt"),
    ];
    let replacements: &[&[u8]] = &[b"<", b">", b"&", b"\"", b"/", b"\xff", b"\x00", b"]]>", b"<!--", b"&#0;", b"&lt;"];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for capture in captures {
        let body = &capture.as_bytes()[capture.find("\r\n\r\n").unwrap() + 4..];
        for end in 0..body.len() {
            let _ = parse_request(&body[..end]);
        }
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % body.len() as u64) as usize;
            let with = replacements[(seed >> 32) as usize % replacements.len()];
            let mangled = [&body[..at], with, &body[(at + 1).min(body.len())..]].concat();
            let _ = parse_request(&mangled);
            let _ = parse_response(&mangled);
        }
    }
}
