//! Tests of the whole compiler: the schema tree under mof/, broken inputs with their exact
//! positions, instances and aliases, namespaces and includes, repository queries.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::cim::{CimType, CimValue, KeyValue, ObjectPath};

use super::*;

fn schema() -> &'static Repository {
    static REPO: OnceLock<Repository> = OnceLock::new();
    REPO.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mof");
        Repository::load(&dir).unwrap_or_else(|e| panic!("the schema under {} does not compile:\n{e}", dir.display()))
    })
}

const VIRT: &str = "root/virt";
const INTEROP: &str = "root/interop";

fn strings(v: Option<&CimValue>) -> Vec<String> {
    v.and_then(CimValue::as_array).map(|a| a.values().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// Whether a ValueMap covers `n`, reading its ranges ("11..32767", "..", "0x8000..") as DSP0004 does.
fn value_map_covers(value_map: &[String], n: u64) -> bool {
    let parse = |s: &str| match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    };
    value_map.iter().any(|entry| match entry.split_once("..") {
        None => parse(entry) == Some(n),
        Some(("", "")) => false, // ".." names the unassigned values in between, not a range
        Some((lo, hi)) => parse(lo).is_none_or(|lo| lo <= n) && parse(hi).is_none_or(|hi| n <= hi),
    })
}

fn sorted_keys(class: &crate::cim::Class) -> Vec<&str> {
    let mut keys: Vec<&str> = class.key_properties().map(|p| p.name.as_str()).collect();
    keys.sort_unstable();
    keys
}

#[test]
fn schema_tree_has_the_expected_namespaces_and_counts() {
    let repo = schema();
    assert_eq!(repo.namespaces().collect::<Vec<_>>(), [INTEROP, VIRT]);
    assert_eq!(repo.class_names(INTEROP).len(), 54);
    assert_eq!(repo.class_names(VIRT).len(), 108);
    assert_eq!(repo.class_names(VIRT).iter().filter(|n| n.starts_with("Xen_")).count(), 49);
    assert_eq!(repo.qualifier_decls(INTEROP).count(), 66);
    assert_eq!(repo.qualifier_decls(VIRT).count(), 66);
    assert_eq!(repo.instances(INTEROP).count(), 17, "10 registered profiles and 7 profile references");
    assert_eq!(repo.instances(VIRT).count(), 0);
    assert!(repo.warnings().is_empty(), "{:?}", repo.warnings());
    assert!(repo.has_namespace("ROOT/Virt") && repo.has_namespace("/root/interop/"));
    assert!(!repo.has_namespace("root/cimv2"));
}

#[test]
fn every_class_resolves_to_its_chain_and_concrete_classes_have_keys() {
    let repo = schema();
    for ns in [INTEROP, VIRT] {
        for class in repo.classes(ns) {
            let chain = repo.superclasses(ns, &class.name);
            if let Some(sup) = &class.superclass {
                assert_eq!(chain[0], sup.as_str());
                let parent = repo.get_class(ns, sup).unwrap();
                for p in &parent.properties {
                    assert!(class.property(&p.name).is_some(), "{ns}:{} lacks inherited {}", class.name, p.name);
                }
            }
            let local = repo.get_local_class(ns, &class.name).unwrap();
            let exempt = local.is_abstract() || class.is_indication() || class.qualifier("Exception").is_some();
            assert!(exempt || class.key_properties().count() > 0, "{ns}:{} has no keys", class.name);
            for p in &class.properties {
                assert!(p.class_origin.is_some(), "{ns}:{}.{} has no class origin", class.name, p.name);
            }
        }
    }
}

#[test]
fn xen_computer_system_spot_checks() {
    let repo = schema();
    let cs = repo.get_class(VIRT, "xen_computersystem").expect("case-insensitive lookup");
    assert_eq!(cs.name, "Xen_ComputerSystem");
    assert!(repo.is_subclass_of(VIRT, "Xen_ComputerSystem", "CIM_ComputerSystem"));
    assert!(repo.is_subclass_of(VIRT, "Xen_ComputerSystem", "CIM_ManagedElement"));
    assert!(!repo.is_subclass_of(VIRT, "Xen_ComputerSystem", "Xen_ComputerSystem"));
    assert!(repo.is_a(VIRT, "Xen_ComputerSystem", "Xen_ComputerSystem"));
    assert!(!repo.is_subclass_of(VIRT, "CIM_ComputerSystem", "Xen_ComputerSystem"));
    assert_eq!(
        repo.superclasses(VIRT, "Xen_ComputerSystem"),
        [
            "CIM_ComputerSystem",
            "CIM_System",
            "CIM_EnabledLogicalElement",
            "CIM_LogicalElement",
            "CIM_ManagedSystemElement",
            "CIM_ManagedElement"
        ]
    );

    // Name is first declared in CIM_ManagedSystemElement, so it keeps that place when CIM_System
    // makes it a key; paths compare keybindings as a set, so the order does not matter.
    assert_eq!(sorted_keys(cs), ["CreationClassName", "Name"]);
    let name = cs.property("Name").unwrap();
    assert_eq!(name.class_origin.as_deref(), Some("CIM_System"));
    assert!(name.propagated);
    assert!(name.qualifier("Key").unwrap().propagated);
    assert!(name.qualifier("Override").is_none(), "Override is Restricted and stays in CIM_System");
    assert_eq!(name.qualifier("MaxLen").unwrap().value, Some(CimValue::UInt32(256)));
    let uuid = cs.property("UUID").unwrap();
    assert_eq!((uuid.class_origin.as_deref(), uuid.propagated), (Some("Xen_ComputerSystem"), false));

    let local = repo.get_local_class(VIRT, "Xen_ComputerSystem").unwrap();
    assert_eq!(local.properties.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["UUID", "OnTimeInMilliseconds"]);
    assert!(local.methods.is_empty());
    assert!(cs.qualifier("Description").is_some_and(|q| !q.propagated));
    assert!(cs.qualifier("Abstract").is_none());

    let rsc = cs.method("RequestStateChange").unwrap();
    assert_eq!(rsc.return_type, CimType::UInt32);
    assert_eq!(rsc.class_origin.as_deref(), Some("CIM_EnabledLogicalElement"));
    assert!(rsc.propagated);
    let params: Vec<(&str, CimType, bool, bool)> =
        rsc.parameters.iter().map(|p| (p.name.as_str(), p.cim_type, p.is_in(), p.is_out())).collect();
    assert_eq!(
        params,
        [
            ("RequestedState", CimType::UInt16, true, false),
            ("Job", CimType::Reference, false, true),
            ("TimeoutPeriod", CimType::DateTime, true, false),
        ]
    );
    assert_eq!(rsc.parameter("Job").unwrap().reference_class.as_deref(), Some("CIM_ConcreteJob"));
    let requested = strings(rsc.parameter("RequestedState").unwrap().qualifier("ValueMap").and_then(|q| q.value.as_ref()));
    for state in ["2", "3", "4", "6", "9", "10", "11"] {
        assert!(requested.iter().any(|v| v == state), "RequestedState lacks {state}");
    }
    let returns = strings(rsc.qualifier("ValueMap").and_then(|q| q.value.as_ref()));
    assert!(returns.iter().any(|v| v == "4096") && returns.iter().any(|v| v == "4097"));
}

#[test]
fn computer_system_state_value_maps() {
    let repo = schema();
    let cs = repo.get_class(VIRT, "CIM_ComputerSystem").unwrap();
    let enabled = cs.property("EnabledState").unwrap();
    assert_eq!(enabled.value, Some(CimValue::UInt16(5)));
    let map = strings(enabled.qualifier("ValueMap").and_then(|q| q.value.as_ref()));
    let values = strings(enabled.qualifier("Values").and_then(|q| q.value.as_ref()));
    assert_eq!(map.len(), values.len());
    for state in [2, 3, 4, 6, 9, 10, 11] {
        assert!(value_map_covers(&map, state), "EnabledState ValueMap does not cover {state}: {map:?}");
    }
    assert!(!value_map_covers(&map, 70000));
    // The states RequestStateChange can ask for are listed one by one in RequestedState.
    let requested = strings(cs.property("RequestedState").unwrap().qualifier("ValueMap").and_then(|q| q.value.as_ref()));
    for state in ["2", "3", "4", "6", "9", "10", "11"] {
        assert!(requested.iter().any(|v| v == state), "RequestedState lacks {state}");
    }
}

#[test]
fn every_value_map_matches_its_values() {
    let repo = schema();
    for ns in [INTEROP, VIRT] {
        for class in repo.classes(ns) {
            let mut elements: Vec<(String, &[crate::cim::Qualifier])> =
                class.properties.iter().map(|p| (format!("{}.{}", class.name, p.name), &p.qualifiers[..])).collect();
            for m in &class.methods {
                elements.push((format!("{}.{}()", class.name, m.name), &m.qualifiers[..]));
                elements.extend(m.parameters.iter().map(|p| (format!("{}.{}({})", class.name, m.name, p.name), &p.qualifiers[..])));
            }
            for (what, qualifiers) in elements {
                let find = |n: &str| qualifiers.iter().find(|q| q.name == n).and_then(|q| q.value.as_ref());
                if let (Some(map), Some(values)) = (find("ValueMap"), find("Values")) {
                    assert_eq!(strings(Some(map)).len(), strings(Some(values)).len(), "{ns}:{what}");
                }
            }
        }
    }
}

#[test]
fn virtualization_classes_spot_checks() {
    let repo = schema();
    let vsms = repo.get_class(VIRT, "Xen_VirtualSystemManagementService").unwrap();
    assert_eq!(sorted_keys(vsms), ["CreationClassName", "Name", "SystemCreationClassName", "SystemName"]);
    let names: Vec<&str> = vsms.methods.iter().map(|m| m.name.as_str()).collect();
    for m in
        ["DefineSystem", "DestroySystem", "ModifySystemSettings", "AddResourceSettings", "ModifyResourceSettings", "RemoveResourceSettings"]
    {
        assert!(names.contains(&m), "{m}");
    }
    let define = vsms.method("DefineSystem").unwrap();
    let settings = define.parameter("ResourceSettings").unwrap();
    assert!(settings.is_array && settings.cim_type == CimType::String);
    assert_eq!(settings.embedded_kind(), Some(crate::cim::EmbeddedKind::Instance));
    let resulting = define.parameter("ResultingSystem").unwrap();
    assert!(resulting.is_out() && !resulting.is_in());
    assert_eq!(resulting.reference_class.as_deref(), Some("CIM_ComputerSystem"));
    let add = vsms.method("AddResourceSettings").unwrap();
    let out = add.parameter("ResultingResourceSettings").unwrap();
    assert!(out.is_array && out.cim_type == CimType::Reference);

    for (class, keys) in [
        ("Xen_VirtualSystemSettingData", vec!["InstanceID"]),
        ("Xen_DiskResourceAllocationSettingData", vec!["InstanceID"]),
        ("Xen_Processor", vec!["CreationClassName", "DeviceID", "SystemCreationClassName", "SystemName"]),
        ("Xen_DiskPool", vec!["InstanceID"]),
        ("Xen_ConcreteJob", vec!["InstanceID"]),
        ("Xen_SystemDevice", vec!["GroupComponent", "PartComponent"]),
        ("Xen_HostedDependency", vec!["Antecedent", "Dependent"]),
        ("Xen_ElementConformsToProfile", vec!["ConformantStandard", "ManagedElement"]),
    ] {
        assert_eq!(sorted_keys(repo.get_class(VIRT, class).unwrap()), keys, "{class}");
    }

    let disk = repo.get_class(VIRT, "Xen_DiskResourceAllocationSettingData").unwrap();
    assert!(repo.is_subclass_of(VIRT, &disk.name, "CIM_StorageAllocationSettingData"));
    assert!(repo.is_subclass_of(VIRT, &disk.name, "CIM_ResourceAllocationSettingData"));
    assert_eq!(disk.property("VirtualQuantityUnits").unwrap().value, Some(CimValue::from("count")));
    assert!(repo.is_subclass_of(VIRT, "Xen_NetworkPort", "CIM_NetworkPort"));

    let component = repo.get_class(VIRT, "Xen_VirtualSystemSettingDataComponent").unwrap();
    assert!(component.is_association());
    assert_eq!(component.property("PartComponent").unwrap().reference_class.as_deref(), Some("CIM_ResourceAllocationSettingData"));
    assert!(component.property("GroupComponent").unwrap().is_key(), "Key propagates through the override");
    let system_device = repo.get_class(VIRT, "Xen_SystemDevice").unwrap();
    assert!(system_device.qualifier("Aggregation").is_some_and(|q| q.is_true()));
    assert!(system_device.property("PartComponent").unwrap().qualifier("Weak").is_some());

    let created = repo.get_class(VIRT, "Xen_ComputerSystemCreatedIndication").unwrap();
    assert!(created.is_indication() && created.key_properties().next().is_none());
    assert_eq!(created.property("SourceInstance").unwrap().embedded_kind(), Some(crate::cim::EmbeddedKind::Object));

    let job = repo.get_class(VIRT, "Xen_ConcreteJob").unwrap();
    let removal = job.property("TimeBeforeRemoval").unwrap();
    assert!(matches!(&removal.value, Some(CimValue::DateTime(d)) if d.is_interval()));
    assert_eq!(
        job.method("GetError").unwrap().parameter("Error").unwrap().qualifier("EmbeddedInstance").unwrap().value,
        Some("CIM_Error".into())
    );
}

#[test]
fn class_tree_queries() {
    let repo = schema();
    let roots = repo.subclasses(VIRT, None, false);
    assert!(roots.contains(&"CIM_ManagedElement") && roots.contains(&"CIM_Dependency") && roots.contains(&"CIM_Indication"));
    assert!(!roots.contains(&"CIM_System"));
    assert_eq!(repo.subclasses(VIRT, None, true).len(), repo.class_names(VIRT).len());
    let direct = repo.subclasses(VIRT, Some("cim_computersystem"), false);
    assert_eq!(direct, ["Xen_HostSystem", "Xen_ComputerSystem"]);
    let deep = repo.subclasses(VIRT, Some("CIM_System"), true);
    assert_eq!(deep, ["CIM_ComputerSystem", "Xen_HostSystem", "Xen_ComputerSystem"]);
    let rasd = repo.subclasses(VIRT, Some("CIM_ResourceAllocationSettingData"), true);
    assert_eq!(rasd.len(), 8);
    // Parents come before their children.
    let all = repo.subclasses(VIRT, Some("CIM_ManagedElement"), true);
    for (i, name) in all.iter().enumerate() {
        for sup in repo.superclasses(VIRT, name) {
            if sup != "CIM_ManagedElement" {
                assert!(all[..i].contains(&sup), "{sup} after {name}");
            }
        }
    }
    assert!(repo.subclasses(VIRT, Some("CIM_Nope"), true).is_empty());
    assert!(repo.subclasses("root/nope", None, true).is_empty());
    assert!(repo.get_class(INTEROP, "Xen_ComputerSystem").is_none(), "virtualization classes stay in root/virt");
    assert!(repo.get_class(INTEROP, "CIM_ElementConformsToProfile").is_some());
    assert!(repo.get_class(VIRT, "CIM_ElementConformsToProfile").is_some());
    assert!(repo.get_class(VIRT, "CIM_IndicationSubscription").is_none());
    let key = repo.qualifier_decl(VIRT, "KEY").unwrap();
    assert!(key.cim_type == CimType::Boolean && !key.flavors.overridable && key.scopes.property && key.scopes.reference);
}

#[test]
fn registered_profiles_are_static_instances_with_aliases_resolved() {
    let repo = schema();
    let profiles: Vec<_> = repo.instances_of(INTEROP, "CIM_RegisteredProfile", true).collect();
    assert_eq!(profiles.len(), 10);
    assert_eq!(repo.instances_of(INTEROP, "CIM_RegisteredProfile", false).count(), 0);
    let sv = profiles.iter().find(|p| p.value("RegisteredName") == Some(&"System Virtualization".into())).unwrap();
    assert_eq!(sv.value("RegisteredOrganization"), Some(&CimValue::UInt16(2)));
    assert_eq!(sv.value("RegisteredVersion"), Some(&"1.0.0".into()));
    assert!(sv.property("Caption").is_some_and(|p| p.value.is_none()), "unset properties are present and NULL");
    let sv_path = sv.path.clone().unwrap();
    assert_eq!(sv_path.to_string(), r#"/root/interop:Xen_RegisteredProfile.InstanceID="CIM:DSP1042-SystemVirtualization-1.0.0""#);

    let refs: Vec<_> = repo.instances_of(INTEROP, "CIM_ReferencedProfile", true).collect();
    assert_eq!(refs.len(), 7);
    for r in &refs {
        assert_eq!(r.value("Dependent").and_then(CimValue::as_reference), Some(&sv_path));
        let path = r.path.as_ref().unwrap();
        assert!(matches!(path.key("Antecedent"), Some(KeyValue::Reference(_))));
    }
    let vs = refs[0].value("Antecedent").and_then(CimValue::as_reference).unwrap();
    assert_eq!(vs.key("InstanceID").and_then(KeyValue::as_str), Some("CIM:DSP1057-VirtualSystem-1.0.0"));
}

#[test]
fn embedded_instances_in_mof_text() {
    let repo = schema();
    let text = r#"
        instance of Xen_VirtualSystemSettingData { ElementName = "vm1"; VirtualSystemType = "DMTF:xen"; Kernel = "/boot/vmlinuz"; };
        instance of Xen_MemResourceAllocationSettingData as $M { ResourceType = 4; VirtualQuantity = 512; AllocationUnits = "byte*2^20"; };
    "#;
    let got = repo.parse_instances(VIRT, text).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].class_name, "Xen_VirtualSystemSettingData");
    assert_eq!(got[0].properties.len(), 3, "only the given properties");
    assert!(got[0].path.is_none(), "InstanceID was not given");
    assert_eq!(got[1].value("VirtualQuantity"), Some(&CimValue::UInt64(512)));
    assert_eq!(got[1].value("ResourceType"), Some(&CimValue::UInt16(4)));

    let with_key = repo.parse_instances(VIRT, r#"instance of Xen_ProcResourceAllocationSettingData { InstanceID = "u/proc"; };"#).unwrap();
    assert_eq!(with_key[0].path.as_ref().unwrap().to_string(), r#"/root/virt:Xen_ProcResourceAllocationSettingData.InstanceID="u/proc""#);

    let err = repo.parse_instances(VIRT, "instance of Xen_Memory { Colour = 1; };").unwrap_err();
    assert_eq!(err.to_string(), "embedded instance:1:26: class 'Xen_Memory' has no property 'Colour'");
    let err = repo.parse_instances(VIRT, "instance of Xen_Memory { DeviceID = 1; };").unwrap_err();
    assert_eq!(err.to_string(), "embedded instance:1:37: expected a string value, found an integer");
    let err = repo.parse_instances(VIRT, "class X {};").unwrap_err();
    assert_eq!(err.to_string(), "embedded instance:1:1: expected 'instance of', found 'class'");
    assert!(repo.parse_instances("root/nope", "").is_err());
    assert!(repo.is_a(VIRT, "Xen_Memory", "CIM_LogicalDevice"));
}

const PRELUDE: &str = r#"
Qualifier Abstract : boolean = false, Scope(class, association, indication), Flavor(EnableOverride, Restricted);
Qualifier Association : boolean = false, Scope(association), Flavor(DisableOverride, ToSubclass);
Qualifier Indication : boolean = false, Scope(class, indication), Flavor(DisableOverride, ToSubclass);
Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride, ToSubclass);
Qualifier Override : string = null, Scope(property, reference, method), Flavor(EnableOverride, Restricted);
Qualifier Description : string = null, Scope(any), Flavor(EnableOverride, ToSubclass, Translatable);
Qualifier ValueMap : string[], Scope(property, method, parameter);
Qualifier In : boolean = true, Scope(parameter), Flavor(DisableOverride, ToSubclass);
Qualifier Out : boolean = false, Scope(parameter), Flavor(DisableOverride, ToSubclass);
Qualifier EmbeddedInstance : string = null, Scope(property, method, parameter);
"#;

fn with_prelude(text: &str) -> Result<Repository, MofError> {
    let mut repo = Repository::from_mof("prelude.mof", PRELUDE).expect("prelude compiles");
    repo.add_mof("mof/t.mof", text)?;
    Ok(repo)
}

#[test]
fn broken_inputs_give_exact_positions() {
    let cases: &[(&str, &str)] = &[
        // Missing semicolon.
        ("[Abstract] class T_A {\n    string Name\n};", "mof/t.mof:3:1: expected ';' after property declaration, found '}'"),
        // Unterminated string.
        ("[Description (\"oops)]\nclass T_A {};", "mof/t.mof:1:15: unterminated string literal"),
        // Unknown superclass.
        ("[Abstract]\nclass T_B : T_Nope {\n};", "mof/t.mof:2:13: superclass 'T_Nope' of class 'T_B' is not declared in namespace 'root/virt'"),
        // An override that names nothing.
        (
            "[Abstract] class T_A { string Name; };\n[Abstract] class T_B : T_A {\n    [Override (\"Nmae\")] string Nmae;\n};",
            "mof/t.mof:3:6: Override (\"Nmae\") on property 'Nmae' of class 'T_B' names nothing: no superclass of 'T_B' declares a property 'Nmae'",
        ),
        (
            "[Abstract] class T_A {\n  [Override (\"Go\")] uint32 Go();\n};",
            "mof/t.mof:2:4: Override (\"Go\") on method 'Go' of class 'T_A' names nothing: 'T_A' has no superclass",
        ),
        (
            "[Abstract] class T_A { string Name; };\n[Abstract] class T_B : T_A { [Override (\"Name\")] string Label; };",
            "mof/t.mof:2:31: Override (\"Name\") on property 'Label' must name the property itself",
        ),
        // Undeclared qualifier.
        ("[Abstract, Colour (\"red\")] class T_A {};", "mof/t.mof:1:12: qualifier 'Colour' is not declared in namespace 'root/virt'"),
        // Duplicate class.
        ("[Abstract] class T_A {};\n\n[Abstract] class t_a {};", "mof/t.mof:3:18: class 't_a' is already declared in namespace 'root/virt' (at mof/t.mof:1:18)"),
        // Bad integer literals.
        ("[Abstract] class T_A { uint8 X = 0x1G; };", "mof/t.mof:1:34: invalid integer literal '0x1G': 'G' is not a hexadecimal digit"),
        ("[Abstract] class T_A {\n\tuint16 X = 09;\n};", "mof/t.mof:2:13: invalid integer literal '09': '9' is not an octal digit (a leading 0 makes the literal octal)"),
        ("[Abstract] class T_A { uint8 X = 300; };", "mof/t.mof:1:34: integer 300 is out of range for uint8 (0 to 255)"),
        // Unknown type name.
        ("[Abstract] class T_A {\n  uint128 X;\n};", "mof/t.mof:2:3: unknown type name 'uint128'"),
        // Missing include file (relative to the including file: mof/nope.mof).
        ("// header\n#pragma include (\"nope.mof\")\n", "mof/t.mof:2:1: cannot read included file 'nope.mof': no such file"),
        // Semantic checks.
        ("class T_A { string Name; };", "mof/t.mof:1:7: class 'T_A' has no key property; a class that is not Abstract, an Indication or an Exception needs one"),
        ("[Key] class T_A {};", "mof/t.mof:1:2: qualifier 'Key' is not allowed on a class (its scope does not include it)"),
        ("[Abstract] class T_A { [Key (1)] string N; };", "mof/t.mof:1:30: expected a boolean value, found an integer"),
        ("[Abstract] class T_A { [ValueMap] uint8 N; };", "mof/t.mof:1:25: qualifier 'ValueMap' needs a value of type string[]"),
        ("[Abstract] class T_A { string N; uint8 n; };", "mof/t.mof:1:40: property 'n' is declared twice in class 'T_A'"),
        ("[Abstract] class T_A { uint32 M(uint8 a, string A); };", "mof/t.mof:1:49: parameter 'A' is declared twice in method 'M'"),
        ("[Abstract] class T_A { T_A REF Other; };", "mof/t.mof:1:32: reference 'Other' is only allowed in an association, and class 'T_A' is not one"),
        ("[Association] class T_L { [Key] T_A REF Left; };", "mof/t.mof:1:21: association 'T_L' has 1 reference(s); it needs at least two"),
        (
            "[Association] class T_L {\n  [Key] T_Gone REF Left;\n  [Key] T_Gone REF Right;\n};",
            "mof/t.mof:2:9: class 'T_Gone' named by the reference 'Left' of class 'T_L' is not declared in namespace 'root/virt'",
        ),
        (
            "[Abstract] class T_A { uint32 Get([Out, EmbeddedInstance (\"T_Err\")] string E); };",
            "mof/t.mof:1:41: class 'T_Err' named by the EmbeddedInstance qualifier in class 'T_A' is not declared in namespace 'root/virt'",
        ),
        (
            "[Abstract] class T_A { [Key] string Name; };\nclass T_B : T_A { [Key (false), Override (\"Name\")] string Name; };",
            "mof/t.mof:2:20: qualifier 'Key' has flavor DisableOverride in the superclass and cannot be given another value",
        ),
        (
            "[Abstract] class T_A { uint16 State; };\n[Abstract] class T_B : T_A { [Override (\"State\")] uint32 State; };",
            "mof/t.mof:2:58: property 'State' overrides T_A.State of type uint16 with type uint32",
        ),
        (
            "[Abstract] class T_X {};\n[Abstract] class T_Y {};\n[Association] class T_L { [Key] T_X REF A; [Key] T_X REF B; };\n[Association] class T_M : T_L { [Override (\"A\")] T_Y REF A; };",
            "mof/t.mof:4:58: reference 'A' overrides one to 'T_X' with 'T_Y', which is not a subclass of 'T_X'",
        ),
        ("Qualifier Key : boolean = true, Scope(property);", "mof/t.mof:1:11: qualifier 'Key' is already declared in namespace 'root/virt' (at prelude.mof:5:11)"),
        ("#pragma namespace (\"root//virt\")", "mof/t.mof:1:1: invalid namespace name 'root//virt'"),
        // Instances.
        ("instance of T_Nope { X = 1; };", "mof/t.mof:1:13: instance of undeclared class 'T_Nope' in namespace 'root/virt'"),
        ("[Abstract] class T_A { [Key] string N; };\ninstance of T_A { N = \"x\"; };", "mof/t.mof:2:13: cannot declare an instance of abstract class 'T_A'"),
        ("class T_A { [Key] string N; string V; };\ninstance of T_A { V = \"x\"; };", "mof/t.mof:2:1: instance of 'T_A' has no value for key property 'N'"),
        ("class T_A { [Key] string N; };\ninstance of T_A { N = \"x\"; N = \"y\"; };", "mof/t.mof:2:28: property 'N' is given twice"),
        (
            "class T_A { [Key] string N; };\ninstance of T_A { N = \"x\"; };\ninstance of T_A { N = \"x\"; };",
            "mof/t.mof:3:1: instance /root/virt:T_A.N=\"x\" is already declared (at mof/t.mof:2:1)",
        ),
        (
            "class T_A { [Key] string N; };\n[Association] class T_L { [Key] T_A REF A; [Key] T_A REF B; };\ninstance of T_L { A = $Nobody; B = $Nobody; };",
            "mof/t.mof:3:23: undefined alias '$Nobody'",
        ),
        (
            "class T_A { [Key] string N; };\ninstance of T_A as $X { N = \"1\"; };\ninstance of T_A as $x { N = \"2\"; };",
            "mof/t.mof:3:20: alias '$x' is already defined",
        ),
    ];
    for (text, want) in cases {
        match with_prelude(text) {
            Ok(_) => panic!("compiled but should fail with {want}:\n{text}"),
            Err(e) => assert_eq!(e.first().to_string(), *want, "{text}"),
        }
    }
}

#[test]
fn several_errors_are_reported_together() {
    let text = "[Abstract, Nope1] class T_A { [Nope2] string N; };\n[Abstract] class T_B : T_Gone {};\n[Abstract] class T_C : T_B {};";
    let e = with_prelude(text).unwrap_err();
    let messages: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "mof/t.mof:1:12: qualifier 'Nope1' is not declared in namespace 'root/virt'",
            "mof/t.mof:1:32: qualifier 'Nope2' is not declared in namespace 'root/virt'",
            "mof/t.mof:2:24: superclass 'T_Gone' of class 'T_B' is not declared in namespace 'root/virt'",
        ],
        "a class below a broken one adds no error of its own"
    );
    assert_eq!(e.to_string().lines().count(), 3);
}

#[test]
fn a_failed_compilation_leaves_the_repository_unchanged() {
    let mut repo = with_prelude("class T_A { [Key] string N; };").unwrap();
    let before = repo.class_names(VIRT).len();
    assert!(repo.add_mof("more.mof", "class T_B { [Key] string N; };\nclass T_C : T_Gone {};").is_err());
    assert_eq!(repo.class_names(VIRT).len(), before);
    assert!(repo.get_class(VIRT, "T_B").is_none());
    repo.add_mof("more.mof", "class T_B : T_A {};").unwrap();
    assert!(repo.is_subclass_of(VIRT, "T_B", "T_A"));
}

#[test]
fn values_defaults_and_inheritance_of_defaults() {
    let text = r#"
        [Abstract] class T_A {
            [Key] string N;
            uint16 State = 5;
            string Names[] = {"a", "b" "c", NULL};
            real32 Ratio = 1;
            char16 Sep = '\x2C';
            datetime Wait = "00000000000500.000000:000";
            sint64 Low = -0x8000000000000000;
            uint8 Bits = 1010b;
            uint8 Oct = 017;
            boolean On = TRUE;
            string Gone = "x";
        };
        class T_B : T_A {
            [Override ("State")] uint16 State;
            [Override ("Gone")] string Gone = NULL;
        };
    "#;
    let repo = with_prelude(text).unwrap();
    let b = repo.get_class(VIRT, "T_B").unwrap();
    let v = |n: &str| b.property(n).unwrap().value.clone();
    assert_eq!(v("State"), Some(CimValue::UInt16(5)), "an override without a default keeps the inherited one");
    assert_eq!(v("Gone"), None, "an override with NULL clears it");
    let names = v("Names").unwrap();
    assert_eq!(names.as_array().unwrap().elements(), &[Some("a".into()), Some("bc".into()), None]);
    assert_eq!(v("Ratio"), Some(CimValue::Real32(1.0)));
    assert_eq!(v("Sep"), Some(CimValue::Char16(',')));
    assert!(matches!(v("Wait"), Some(CimValue::DateTime(d)) if d.is_interval()));
    assert_eq!(v("Low"), Some(CimValue::SInt64(i64::MIN)));
    assert_eq!(v("Bits"), Some(CimValue::UInt8(10)));
    assert_eq!(v("Oct"), Some(CimValue::UInt8(15)));
    assert_eq!(v("On"), Some(CimValue::Boolean(true)));
    assert!(b.property("State").unwrap().class_origin.as_deref() == Some("T_B"));
    assert!(!b.property("State").unwrap().propagated && b.property("On").unwrap().propagated);
}

#[test]
fn overrides_without_override_qualifier_warn() {
    let repo =
        with_prelude("[Abstract] class T_A { string N; };\n[Abstract] class T_B : T_A { string N; };\n#pragma frobnicate (\"x\")").unwrap();
    let warnings: Vec<String> = repo.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "mof/t.mof:3:1: unknown pragma 'frobnicate' ignored",
            "mof/t.mof:2:37: property 'N' redeclares an inherited property without Override (\"N\"); treated as an override",
        ]
    );
    assert_eq!(repo.get_class(VIRT, "T_B").unwrap().property("N").unwrap().class_origin.as_deref(), Some("T_B"));
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn includes_and_namespace_pragmas() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "namespaces.mof", "#pragma namespace (\"root/a\")\n#pragma include (\"sub/one.mof\")\nclass T_Top { [Key] string N; };\n");
    write(
        dir,
        "sub/one.mof",
        &format!(
            "{PRELUDE}\n#pragma include (\"two.mof\")\n#pragma namespace (\"root/b\")\n{PRELUDE}\nclass T_InB {{ [Key] string N; }};\n"
        ),
    );
    write(dir, "sub/two.mof", "class T_Two { [Key] string N; };\n#pragma locale (\"en_US\")\n");
    let repo = Repository::load(dir).unwrap();
    assert_eq!(repo.namespaces().collect::<Vec<_>>(), ["root/a", "root/b"]);
    // sub/two.mof is relative to sub/one.mof; the namespace pragma of sub/one.mof ends with it.
    assert_eq!(repo.class_names("root/a"), ["T_Two", "T_Top"]);
    assert_eq!(repo.class_names("root/b"), ["T_InB"]);
    assert!(repo.warnings().is_empty(), "locale is a known pragma: {:?}", repo.warnings());
    let loc = &repo.class_entry("root/a", "T_Two").unwrap().location;
    assert_eq!(loc.to_string(), format!("{}:1:7", dir.join("sub/two.mof").display()));

    write(dir, "sub/two.mof", "#pragma include (\"../namespaces.mof\")\n");
    let e = Repository::load(dir).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:1:1: include cycle: '../namespaces.mof' is already being read", dir.join("sub/two.mof").display())
    );

    write(dir, "sub/two.mof", "class T_Two { [Key] string N; }\n");
    let e = Repository::load(dir).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:2:1: expected ';' after the body of class 'T_Two', found end of file", dir.join("sub/two.mof").display())
    );

    let e = Repository::load(dir.join("nowhere")).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: cannot read MOF file: no such file", dir.join("nowhere/namespaces.mof").display()));
}

#[test]
fn reference_keys_and_path_values() {
    let text = r#"
        class T_A { [Key] string N; [Key] uint32 Id; };
        [Association] class T_L { [Key] T_A REF Left; [Key] T_A REF Right; };
        instance of T_A as $One { N = "one"; Id = 1; };
        instance of T_L { Left = $One; Right = "//host/root/other:T_A.N=\"two\",Id=2"; };
    "#;
    let repo = with_prelude(text).unwrap();
    let link = repo.instances_of(VIRT, "T_L", false).next().unwrap();
    let right = link.value("Right").and_then(CimValue::as_reference).unwrap();
    assert_eq!(right.host.as_deref(), Some("host"));
    assert_eq!(right.namespace.as_deref(), Some("root/other"));
    let left = link.value("Left").and_then(CimValue::as_reference).unwrap();
    assert_eq!(left, &ObjectPath::new(Some(VIRT), "T_A").with_key("N", "one").with_key("Id", 1u32));
    let path = link.path.as_ref().unwrap();
    assert_eq!(path.key("left").and_then(KeyValue::as_reference), Some(left));
}
