//! Instances.

use super::qualifier::find_qualifier;
use super::{names_equal, CimError, CimValue, Class, KeyValue, ObjectPath, Property, Qualifier};

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub class_name: String,
    /// In output order.
    pub properties: Vec<Property>,
    pub qualifiers: Vec<Qualifier>,
    pub path: Option<ObjectPath>,
}

impl Instance {
    pub fn new(class_name: impl Into<String>) -> Instance {
        Instance { class_name: class_name.into(), properties: Vec::new(), qualifiers: Vec::new(), path: None }
    }

    /// Builder form of [`Instance::set`].
    pub fn with(mut self, name: &str, value: impl Into<CimValue>) -> Instance {
        self.set(name, value);
        self
    }

    pub fn with_path(mut self, path: ObjectPath) -> Instance {
        self.path = Some(path);
        self
    }

    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| names_equal(&p.name, name))
    }

    pub fn property_mut(&mut self, name: &str) -> Option<&mut Property> {
        self.properties.iter_mut().find(|p| names_equal(&p.name, name))
    }

    /// The value of a property; `None` when missing or NULL.
    pub fn value(&self, name: &str) -> Option<&CimValue> {
        self.property(name).and_then(|p| p.value.as_ref())
    }

    pub fn qualifier(&self, name: &str) -> Option<&Qualifier> {
        find_qualifier(&self.qualifiers, name)
    }

    /// Sets a property's value, adding the property when missing; its type follows the value.
    pub fn set(&mut self, name: &str, value: impl Into<CimValue>) {
        let fresh = Property::new(name, value);
        match self.property_mut(name) {
            Some(p) => {
                p.cim_type = fresh.cim_type;
                p.is_array = fresh.is_array;
                p.embedded_object = fresh.embedded_object;
                p.value = fresh.value;
            }
            None => self.properties.push(fresh),
        }
    }

    /// Adds or replaces a whole property (keeps its position when replacing).
    pub fn set_property(&mut self, property: Property) {
        match self.properties.iter().position(|p| names_equal(&p.name, &property.name)) {
            Some(i) => self.properties[i] = property,
            None => self.properties.push(property),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Property> {
        let i = self.properties.iter().position(|p| names_equal(&p.name, name))?;
        Some(self.properties.remove(i))
    }

    /// Keeps only the properties named in `list` (PropertyList semantics: `None` keeps all).
    pub fn retain_properties(&mut self, list: Option<&[String]>) {
        if let Some(list) = list {
            self.properties.retain(|p| list.iter().any(|n| names_equal(n, &p.name)));
        }
    }

    /// The instance path made of the class's key properties, in the class's key order.
    pub fn path_for(&self, class: &Class, namespace: Option<&str>) -> Result<ObjectPath, CimError> {
        let mut path = ObjectPath::new(namespace, &self.class_name);
        for key in class.key_properties() {
            let value = self
                .value(&key.name)
                .ok_or_else(|| CimError::invalid_parameter(format!("key property {} of {} has no value", key.name, self.class_name)))?;
            let kv = KeyValue::from_value(value).ok_or_else(|| {
                CimError::invalid_parameter(format!("key property {} of {} cannot be a key value", key.name, self.class_name))
            })?;
            path.keybindings.push((key.name.clone(), kv));
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CimType, Qualifier};
    use super::*;

    #[test]
    fn set_get_and_path() {
        let mut i = Instance::new("Xen_ComputerSystem")
            .with("CreationClassName", "Xen_ComputerSystem")
            .with("Name", "vm1")
            .with("EnabledState", 2u16);
        assert_eq!(i.value("name"), Some(&CimValue::from("vm1")));
        i.set("NAME", "vm2");
        assert_eq!(i.properties.len(), 3);
        assert_eq!(i.properties[1].name, "Name");
        assert_eq!(i.value("Name"), Some(&"vm2".into()));

        let key = |n: &str| Property::null(n, CimType::String, false).with_qualifier(Qualifier::new("Key", true));
        let class = Class::new("Xen_ComputerSystem", None).with_property(key("Name")).with_property(key("CreationClassName"));
        let path = i.path_for(&class, Some("root/virt")).unwrap();
        assert_eq!(path.to_string(), r#"/root/virt:Xen_ComputerSystem.Name="vm2",CreationClassName="Xen_ComputerSystem""#);
        i.remove("Name");
        assert!(i.path_for(&class, None).is_err());

        i.retain_properties(Some(&["enabledstate".to_string()]));
        assert_eq!(i.properties.len(), 1);
        i.retain_properties(None);
        assert_eq!(i.properties.len(), 1);
    }
}
