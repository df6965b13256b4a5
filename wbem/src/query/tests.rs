use super::*;
use crate::cim::{CimStatus, Instance};

fn hierarchy(class: &str, ancestor: &str) -> bool {
    let chain: &[(&str, &[&str])] = &[
        ("Xen_ComputerSystem", &["Xen_ComputerSystem", "CIM_ComputerSystem", "CIM_System", "CIM_ManagedElement"]),
        ("Xen_TestElement", &["Xen_TestElement", "CIM_ManagedElement"]),
    ];
    chain.iter().any(|(c, ancestors)| c.eq_ignore_ascii_case(class) && ancestors.iter().any(|a| a.eq_ignore_ascii_case(ancestor)))
}

fn vm() -> Instance {
    Instance::new("Xen_ComputerSystem")
        .with("Name", "vm-1")
        .with("ElementName", "web server")
        .with("EnabledState", 2u16)
        .with("NumberOfBlades", 3u32)
        .with("Dedicated", vec![2u16, 14])
        .with("Ready", true)
}

fn indication() -> Instance {
    Instance::new("CIM_InstModification")
        .with("SourceInstance", vm())
        .with("PreviousInstance", vm().with("EnabledState", 3u16))
        .with("IndicationIdentifier", "7")
}

#[test]
fn wql_conditions() {
    let table: &[(&str, bool)] = &[
        ("SELECT * FROM Xen_ComputerSystem", true),
        ("select * from xen_computersystem where Name = 'vm-1'", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE Name = \"vm-2\"", false),
        ("SELECT * FROM Xen_ComputerSystem WHERE EnabledState = 2", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE EnabledState <> 2", false),
        ("SELECT * FROM Xen_ComputerSystem WHERE EnabledState != 3", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE EnabledState >= 2 AND NumberOfBlades < 4", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE EnabledState > 2 OR NumberOfBlades <= 2", false),
        ("SELECT * FROM Xen_ComputerSystem WHERE NOT (EnabledState = 3)", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE Description IS NULL", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE Name IS NOT NULL", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE Description = 'x'", false),
        ("SELECT * FROM Xen_ComputerSystem WHERE NOT Description = 'x'", false),
        ("SELECT * FROM Xen_ComputerSystem WHERE ElementName LIKE 'web%'", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE ElementName LIKE '_eb s[a-f]rver'", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE ElementName NOT LIKE '%db%'", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE Xen_ComputerSystem.Name = 'vm-1'", true),
        ("SELECT * FROM Xen_ComputerSystem AS cs WHERE cs.Name = 'vm-1'", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE Dedicated = 14", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE Ready", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE Ready = FALSE", false),
        ("SELECT * FROM Xen_ComputerSystem WHERE EnabledState = '2'", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE Xen_ComputerSystem ISA CIM_System", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE NumberOfBlades = 3.0", true),
        ("SELECT * FROM Xen_ComputerSystem WHERE NumberOfBlades > -1", true),
    ];
    for (text, expected) in table {
        let q = Query::parse(QueryLanguage::Wql, text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(q.matches(&vm(), &hierarchy), *expected, "{text}");
    }
}

#[test]
fn cql_indication_filters() {
    let table: &[(&str, bool)] = &[
        ("SELECT * FROM CIM_InstModification WHERE SourceInstance ISA CIM_ComputerSystem", true),
        ("SELECT * FROM CIM_InstModification WHERE SourceInstance ISA Xen_TestElement", false),
        ("SELECT * FROM CIM_InstModification WHERE SourceInstance.CIM_ComputerSystem::EnabledState = 2", true),
        (
            "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA CIM_ComputerSystem AND \
             SourceInstance.CIM_ComputerSystem::EnabledState <> PreviousInstance.CIM_ComputerSystem::EnabledState",
            true,
        ),
        ("SELECT * FROM CIM_InstModification WHERE SourceInstance.ElementName LIKE 'web.*'", true),
        ("SELECT * FROM CIM_InstModification WHERE SourceInstance.ElementName LIKE 'db.*'", false),
        ("SELECT * FROM CIM_InstModification WHERE Missing ISA CIM_ComputerSystem", false),
    ];
    for (text, expected) in table {
        let q = Query::parse(QueryLanguage::Cql, text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(q.matches(&indication(), &hierarchy), *expected, "{text}");
    }
}

#[test]
fn errors_carry_columns() {
    let table: &[(&str, usize, &str)] = &[
        ("", 1, "empty"),
        ("SELEC * FROM X", 1, "expected SELECT"),
        ("SELECT FROM X", 8, "expected a property name"),
        ("SELECT * X", 10, "expected FROM"),
        ("SELECT * FROM", 14, "class name"),
        ("SELECT * FROM X WHERE", 22, "expected a property name or a literal"),
        ("SELECT * FROM X WHERE a = 'b", 27, "unterminated"),
        ("SELECT * FROM X WHERE (a = 1", 29, "expected ')'"),
        ("SELECT * FROM X WHERE a = 1 b", 29, "unexpected"),
        ("SELECT * FROM X WHERE a LIKE 3", 30, "string pattern"),
        ("SELECT * FROM X WHERE a # 1", 25, "unexpected character"),
        ("SELECT * FROM X WHERE a ISA", 28, "class name"),
        ("SELECT * FROM X WHERE 'a'", 26, "expected a comparison"),
    ];
    for (text, column, fragment) in table {
        let e = Query::parse(QueryLanguage::Wql, text).expect_err(text);
        assert_eq!(e.column, *column, "{text}: {e}");
        assert!(e.message.contains(fragment), "{text}: {e}");
        let cim: crate::cim::CimError = e.into();
        assert_eq!(cim.status, CimStatus::InvalidQuery);
    }
    let deep = format!("SELECT * FROM X WHERE {}a = 1{}", "(".repeat(500), ")".repeat(500));
    assert!(Query::parse(QueryLanguage::Wql, &deep).unwrap_err().message.contains("nested"));
    let nots = format!("SELECT * FROM X WHERE {}a = 1", "NOT ".repeat(500));
    assert!(Query::parse(QueryLanguage::Wql, &nots).is_err());
}

#[test]
fn languages_and_projection() {
    assert_eq!(QueryLanguage::from_name("wql").unwrap(), QueryLanguage::Wql);
    assert_eq!(QueryLanguage::from_name("DMTF:CQL").unwrap(), QueryLanguage::Cql);
    assert_eq!(QueryLanguage::from_name("SQL").unwrap_err().status, CimStatus::QueryLanguageNotSupported);
    assert_eq!(Query::parse_named("XPath", "x").unwrap_err().status, CimStatus::QueryLanguageNotSupported);
    let q = Query::parse(QueryLanguage::Wql, "SELECT Name, EnabledState FROM Xen_ComputerSystem").unwrap();
    assert_eq!(q.selected_properties().unwrap(), vec!["Name", "EnabledState"]);
    let projected = q.project(vm());
    assert_eq!(projected.properties.len(), 2);
    let all = Query::parse(QueryLanguage::Wql, "SELECT * FROM Xen_ComputerSystem").unwrap();
    assert_eq!(all.project(vm()).properties.len(), vm().properties.len());
    assert_eq!(all.from_class, "Xen_ComputerSystem");
}

#[test]
fn like_patterns() {
    let wql: &[(&str, &str, bool)] = &[
        ("abc", "a%", true),
        ("abc", "%c", true),
        ("abc", "%b%", true),
        ("abc", "a_c", true),
        ("abc", "a_", false),
        ("abc", "[a-b]bc", true),
        ("abc", "[^a]bc", false),
        ("a[c", "a[c", true),
        ("", "%", true),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "%a%a%a%a%a%a%c", false),
    ];
    for (t, p, m) in wql {
        assert_eq!(eval::like(QueryLanguage::Wql, t, p), *m, "{t} LIKE {p}");
    }
    let cql: &[(&str, &str, bool)] =
        &[("abc", "a.*", true), ("abc", "a.c", true), ("abc", "ab", false), ("a.c", "a\\.c", true), ("abc", "a\\.c", false)];
    for (t, p, m) in cql {
        assert_eq!(eval::like(QueryLanguage::Cql, t, p), *m, "{t} LIKE {p}");
    }
}
