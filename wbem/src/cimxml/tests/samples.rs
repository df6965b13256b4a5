//! Objects that use every feature the codec has to carry.

use crate::cim::*;

pub fn key(name: &str, ty: CimType) -> Property {
    Property::null(name, ty, false)
        .with_qualifier(Qualifier::new("Key", true).with_flavors(Flavors { overridable: false, ..Flavors::default() }))
}

pub fn vm_path(name: &str) -> ObjectPath {
    ObjectPath::new(Some("root/virt"), "Xen_ComputerSystem").with_key("CreationClassName", "Xen_ComputerSystem").with_key("Name", name)
}

/// A path with every keybinding form: string, numeric (typed and not), boolean, reference.
pub fn odd_keys_path() -> ObjectPath {
    ObjectPath::new(None, "Xen_Odd")
        .with_key("S", "a \"quoted\" <&> value")
        .with_key("N", 42u32)
        .with_key("Untyped", KeyValue::numeric("-0x10", None))
        .with_key("B", false)
        .with_key("R", vm_path("vm1").with_host(Some("host.example".into())))
        .with_key("L", vm_path("vm2"))
}

pub fn embedded_address() -> Instance {
    Instance::new("Xen_Address")
        .with("Street", "Fritz & <the cat> Ave")
        .with("Town", Instance::new("Xen_Town").with("Name", "Fritz &amp; \"Town\""))
}

/// An instance with every type, NULLs, arrays with NULL elements, references and embedded objects.
pub fn full_instance() -> Instance {
    let mut i = Instance::new("Xen_Everything")
        .with("Name", "vm1")
        .with("Flag", true)
        .with("Text", "  spaces, <tags> & \"quotes\" 'apostrophes'\ttab\nnewline\rreturn é 😀 ]]> ")
        .with("Empty", "")
        .with("Letter", 'x')
        .with("U8", u8::MAX)
        .with("S8", i8::MIN)
        .with("U16", 2u16)
        .with("S16", -2i16)
        .with("U32", u32::MAX)
        .with("S32", i32::MIN)
        .with("U64", u64::MAX)
        .with("S64", i64::MIN)
        .with("R32", 0.1f32)
        .with("R64", -1.5e300f64)
        .with("When", CimDateTime::parse("20240229235959.123456-300").unwrap())
        .with("Wild", CimDateTime::parse("2024**********.******+000").unwrap())
        .with("Span", CimDateTime::parse("00000001020304.000005:000").unwrap())
        .with("States", vec![2u16, 3, 32768])
        .with("Names", vec!["a", "", "<b>"])
        .with("Host", vm_path("vm1").with_host(Some("h".into())))
        .with("Local", vm_path("vm2"))
        .with("Bare", ObjectPath::new(None, "Xen_Host").with_key("Name", "h"))
        .with("Address", embedded_address())
        .with("Schema", Class::new("Xen_Embedded", None).with_property(Property::null("P", CimType::String, false)));
    i.set("WithNull", CimArray::new(CimType::UInt8, vec![Some(1u8.into()), None, Some(3u8.into())]).unwrap());
    i.set("NoItems", CimArray::empty(CimType::SInt32));
    i.set("Addresses", CimArray::from_values(CimType::String, vec![embedded_address().into(), embedded_address().into()]).unwrap());
    for (name, ty, is_array) in
        [("NullString", CimType::String, false), ("NullU32", CimType::UInt32, false), ("NullArray", CimType::Real64, true)]
    {
        i.set_property(Property::null(name, ty, is_array));
    }
    let mut reference = Property::reference("NullRef", Some("CIM_ManagedElement".into()), None);
    reference.class_origin = Some("Xen_Everything".into());
    i.set_property(reference);
    i.set_property(Property::new("Origin", 7u16).tap(|p| {
        p.class_origin = Some("CIM_ManagedElement".into());
        p.propagated = true;
    }));
    i.qualifiers.push(Qualifier::new("Description", "instance-level qualifier"));
    i
}

pub trait Tap: Sized {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

impl Tap for Property {}
impl Tap for Parameter {}
impl Tap for Method {}

pub fn full_class() -> Class {
    let mut valuemap = Property::null("EnabledState", CimType::UInt16, false)
        .with_qualifier(Qualifier::new("ValueMap", vec!["2", "3", ".."]))
        .with_qualifier(
            Qualifier::new("Values", vec!["Enabled", "Disabled", "DMTF Reserved"])
                .with_flavors(Flavors { translatable: true, ..Flavors::default() }),
        );
    valuemap.class_origin = Some("CIM_EnabledLogicalElement".into());
    valuemap.propagated = true;
    let mut embedded =
        Property::null("Settings", CimType::String, false).with_qualifier(Qualifier::new("EmbeddedInstance", "CIM_SettingData"));
    embedded.embedded_object = Some(EmbeddedKind::Instance);
    let mut array = Property::new("Sizes", vec![1u64, 2]);
    array.array_size = Some(2);
    let method = Method::new("RequestStateChange", CimType::UInt32)
        .with_parameter(Parameter::new("RequestedState", CimType::UInt16, false).with_qualifier(Qualifier::new("In", true)))
        .with_parameter(
            Parameter::new("Job", CimType::Reference, false)
                .tap(|p| p.reference_class = Some("CIM_ConcreteJob".into()))
                .with_qualifier(Qualifier::new("In", false))
                .with_qualifier(Qualifier::new("Out", true)),
        )
        .with_parameter(Parameter::new("TimeoutPeriod", CimType::DateTime, false))
        .with_parameter(Parameter::new("Codes", CimType::SInt32, true).tap(|p| p.array_size = Some(4)))
        .with_parameter(Parameter::new("Affected", CimType::Reference, true).tap(|p| {
            p.reference_class = Some("CIM_ManagedElement".into());
            p.array_size = Some(3);
        }))
        .with_parameter(Parameter::new("Untyped", CimType::Reference, false))
        .tap(|m| m.qualifiers.push(Qualifier::new("Description", "changes the state")));
    let inherited = Method::new("Inherited", CimType::Boolean).tap(|m| {
        m.class_origin = Some("CIM_ManagedElement".into());
        m.propagated = true;
    });
    Class::new("Xen_ComputerSystem", Some("CIM_ComputerSystem".into()))
        .with_qualifier(Qualifier::new("Description", "A virtual machine"))
        .with_qualifier(Qualifier::new("Version", "2.22.0").with_flavors(Flavors {
            tosubclass: false,
            toinstance: true,
            ..Flavors::default()
        }))
        .with_qualifier(Qualifier::null("Experimental", CimType::Boolean, false))
        .with_property(key("CreationClassName", CimType::String))
        .with_property(key("Name", CimType::String).tap(|p| p.value = Some("default".into())))
        .with_property(valuemap)
        .with_property(embedded)
        .with_property(array)
        .with_property(Property::reference("Host", Some("Xen_HostSystem".into()), Some(vm_path("h"))))
        .with_property(Property::null("Installed", CimType::DateTime, false))
        .with_method(method)
        .with_method(inherited)
}

pub fn qualifier_declarations() -> Vec<QualifierDecl> {
    let mut key = QualifierDecl::new("Key", CimType::Boolean, false);
    key.value = Some(false.into());
    key.scopes = Scopes { property: true, reference: true, ..Scopes::default() };
    key.flavors = Flavors { overridable: false, ..Flavors::default() };
    let mut valuemap = QualifierDecl::new("ValueMap", CimType::String, true);
    valuemap.scopes = Scopes { property: true, method: true, parameter: true, ..Scopes::default() };
    let mut sized = QualifierDecl::new("Sized", CimType::UInt8, true);
    sized.array_size = Some(2);
    sized.value = Some(vec![1u8, 2].into());
    sized.scopes = Scopes::any();
    sized.flavors = Flavors { overridable: true, tosubclass: false, toinstance: true, translatable: true };
    let description = QualifierDecl::new("Description", CimType::String, false);
    vec![key, valuemap, sized, description]
}

pub fn cim_error() -> CimError {
    let mut e = CimError::not_found("no VM named \"vm9\" <here>");
    e.instances.push(Instance::new("CIM_Error").with("CIMStatusCode", 6u32).with("Message", "not found"));
    e
}
