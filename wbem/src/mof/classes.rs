//! Class declarations: typing against the namespace, the checks that need source positions
//! (superclass, overrides, DisableOverride, keys, references), then resolution.

use std::collections::HashSet;

use crate::cim::{fold_name, names_equal, CimType, CimValue, Class, Method, Parameter, Property, Qualifier};

use super::ast::{ClassDecl, DataType, Feature, Ident, MethodDecl, ParameterDecl, PropertyDecl, QualifierUse, ValueKind};
use super::diag::{Pos, SyntaxError};
use super::qualifiers::{lower_list, Element};
use super::repository::Namespace;
use super::resolve::resolve;
use super::values::{typed, Aliases, ScalarForArray};

/// A class name that must exist once the whole compilation is done (the target of a reference, the
/// class of an EmbeddedInstance qualifier): MOF may name a class before declaring it.
#[derive(Debug, Clone)]
pub struct NamedClass {
    pub class_name: String,
    pub pos: Pos,
    /// Says who names it, for the error message.
    pub context: String,
}

#[derive(Debug)]
pub struct CompiledClass {
    pub local: Class,
    pub resolved: Class,
    /// Problems that do not prevent storing the class (the compilation fails anyway, but later
    /// classes see this one and do not report follow-on errors).
    pub errors: Vec<SyntaxError>,
    pub warnings: Vec<SyntaxError>,
    pub named_classes: Vec<NamedClass>,
}

/// Compiles a class declaration. `Err` means it cannot be stored at all (its superclass is unknown).
pub fn compile_class(decl: &ClassDecl, ns: &Namespace, aliases: &Aliases) -> Result<CompiledClass, SyntaxError> {
    let superclass = match &decl.superclass {
        Some(s) => Some(
            &ns.class(&s.name)
                .ok_or_else(|| {
                    SyntaxError::new(
                        s.pos,
                        format!("superclass '{}' of class '{}' is not declared in namespace '{}'", s.name, decl.name.name, ns.name),
                    )
                })?
                .resolved,
        ),
        None => None,
    };
    let mut c = ClassCompiler {
        ns,
        aliases,
        class_name: &decl.name.name,
        superclass,
        is_association: flag(&decl.qualifiers, "Association") || superclass.is_some_and(Class::is_association),
        errors: Vec::new(),
        warnings: Vec::new(),
        named_classes: Vec::new(),
    };
    let element = if c.is_association {
        Element::Association
    } else if flag(&decl.qualifiers, "Indication") || superclass.is_some_and(Class::is_indication) {
        Element::Indication
    } else {
        Element::Class
    };
    let qualifiers = c.qualifiers(&decl.qualifiers, element, superclass.map(|s| &s.qualifiers[..]));
    let mut local = Class::new(decl.name.name.clone(), superclass.map(|s| s.name.clone()));
    local.qualifiers = qualifiers;

    let mut seen_properties = HashSet::new();
    let mut seen_methods = HashSet::new();
    for feature in &decl.features {
        match feature {
            Feature::Property(p) => {
                if !seen_properties.insert(fold_name(&p.name.name)) {
                    c.error(p.name.pos, format!("property '{}' is declared twice in class '{}'", p.name.name, c.class_name));
                    continue;
                }
                if let Some(prop) = c.property(p) {
                    local.properties.push(prop);
                }
            }
            Feature::Method(m) => {
                if !seen_methods.insert(fold_name(&m.name.name)) {
                    c.error(m.name.pos, format!("method '{}' is declared twice in class '{}'", m.name.name, c.class_name));
                    continue;
                }
                if let Some(method) = c.method(m) {
                    local.methods.push(method);
                }
            }
        }
    }

    let resolved = resolve(&local, superclass);
    c.check_resolved(decl, &local, &resolved);
    Ok(CompiledClass { local, resolved, errors: c.errors, warnings: c.warnings, named_classes: c.named_classes })
}

/// Whether `class` is `ancestor` or derives from it; `None` while `class` is not declared yet.
fn derives_from(ns: &Namespace, class: &str, ancestor: &str) -> Option<bool> {
    let mut current = &ns.class(class)?.resolved;
    loop {
        if names_equal(&current.name, ancestor) {
            return Some(true);
        }
        match current.superclass.as_deref().and_then(|s| ns.class(s)) {
            Some(sup) => current = &sup.resolved,
            None => return Some(false),
        }
    }
}

/// Whether a qualifier list sets a boolean qualifier (`[Association]`, `[Indication (true)]`).
fn flag(uses: &[QualifierUse], name: &str) -> bool {
    uses.iter().any(|u| u.name.is(name) && u.value.as_ref().is_none_or(|v| v.kind == ValueKind::Boolean(true)))
}

fn find_use<'a>(uses: &'a [QualifierUse], name: &str) -> Option<&'a QualifierUse> {
    uses.iter().find(|u| u.name.is(name))
}

struct ClassCompiler<'a> {
    ns: &'a Namespace,
    aliases: &'a Aliases,
    class_name: &'a str,
    superclass: Option<&'a Class>,
    is_association: bool,
    errors: Vec<SyntaxError>,
    warnings: Vec<SyntaxError>,
    named_classes: Vec<NamedClass>,
}

impl<'a> ClassCompiler<'a> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(SyntaxError::new(pos, message));
    }

    /// Types a qualifier list and refuses new values for inherited DisableOverride qualifiers.
    fn qualifiers(&mut self, uses: &[QualifierUse], element: Element, inherited: Option<&[Qualifier]>) -> Vec<Qualifier> {
        // Qualifiers that fail to type are left out; the class is still stored so that later
        // declarations do not report follow-on errors.
        let (list, errors) = lower_list(uses, element, |n| self.ns.qualifier(n).map(|(d, _)| d), &self.ns.name);
        self.errors.extend(errors);
        for q in &list {
            let fixed =
                inherited.into_iter().flatten().find(|i| names_equal(&i.name, &q.name) && i.flavors.tosubclass && !i.flavors.overridable);
            if let Some(fixed) = fixed.filter(|f| f.value != q.value) {
                let pos = find_use(uses, &q.name).map_or(Pos::default(), |u| u.name.pos);
                self.error(
                    pos,
                    format!("qualifier '{}' has flavor DisableOverride in the superclass and cannot be given another value", fixed.name),
                );
            }
            if names_equal(&q.name, "EmbeddedInstance") {
                if let (Some(CimValue::String(class)), Some(u)) = (&q.value, find_use(uses, &q.name)) {
                    self.named_classes.push(NamedClass {
                        class_name: class.clone(),
                        pos: u.name.pos,
                        context: format!("EmbeddedInstance qualifier in class '{}'", self.class_name),
                    });
                }
            }
        }
        list
    }

    /// The type of a property or parameter; references also record the class they name.
    fn data_type(&mut self, ty: &DataType, owner: &Ident, what: &str) -> (CimType, Option<String>) {
        match ty {
            DataType::Prim(p) => (CimType::from_name(p.name()).expect("every MOF intrinsic type is a CIM type"), None),
            DataType::Ref(class) => {
                self.named_classes.push(NamedClass {
                    class_name: class.name.clone(),
                    pos: class.pos,
                    context: format!("{what} '{}' of class '{}'", owner.name, self.class_name),
                });
                (CimType::Reference, Some(class.name.clone()))
            }
        }
    }

    /// Checks an element's `Override` qualifier against the superclass element of the same name
    /// (`parent`), and returns what the element overrides.
    fn overrides<'p, T>(&mut self, uses: &[QualifierUse], name: &Ident, kind: &str, parent: Option<&'p T>) -> Option<&'p T> {
        let Some(u) = find_use(uses, "Override") else {
            if parent.is_some() {
                self.warnings.push(SyntaxError::new(
                    name.pos,
                    format!(
                        "{kind} '{}' redeclares an inherited {kind} without Override (\"{}\"); treated as an override",
                        name.name, name.name
                    ),
                ));
            }
            return parent;
        };
        let target = match u.value.as_ref().map(|v| &v.kind) {
            Some(ValueKind::String(s)) => s.clone(),
            // A malformed Override value is reported by the qualifier typing.
            _ => return parent,
        };
        if !names_equal(&target, &name.name) {
            self.error(u.name.pos, format!("Override (\"{target}\") on {kind} '{}' must name the {kind} itself", name.name));
            return None;
        }
        if parent.is_none() {
            let why = match self.superclass {
                Some(_) => format!("no superclass of '{}' declares a {kind} '{target}'", self.class_name),
                None => format!("'{}' has no superclass", self.class_name),
            };
            self.error(
                u.name.pos,
                format!("Override (\"{target}\") on {kind} '{}' of class '{}' names nothing: {why}", name.name, self.class_name),
            );
        }
        parent
    }

    fn property(&mut self, p: &PropertyDecl) -> Option<Property> {
        let (cim_type, reference_class) = self.data_type(&p.ty, &p.name, "reference");
        let is_ref = cim_type == CimType::Reference;
        if is_ref && !self.is_association {
            self.error(
                p.name.pos,
                format!("reference '{}' is only allowed in an association, and class '{}' is not one", p.name.name, self.class_name),
            );
        }
        if is_ref && p.array.is_some() {
            self.error(p.name.pos, format!("reference '{}' cannot be an array", p.name.name));
        }
        let element = if is_ref { Element::Reference } else { Element::Property };
        let parent = self.superclass.and_then(|s| s.property(&p.name.name));
        let qualifiers = self.qualifiers(&p.qualifiers, element, parent.map(|pp| &pp.qualifiers[..]));
        let mut prop = Property::null(p.name.name.clone(), cim_type, p.array.is_some());
        prop.array_size = p.array.flatten();
        prop.reference_class = reference_class;
        prop.class_origin = Some(self.class_name.to_string());
        prop.value = match &p.default {
            Some(v) => match typed(v, cim_type, prop.is_array, self.aliases, ScalarForArray::Refuse) {
                Ok(value) => value,
                Err(e) => {
                    self.errors.push(e);
                    None
                }
            },
            None => None,
        };
        if prop.is_array && qualifiers.iter().any(|q| names_equal(&q.name, "Key") && q.is_true()) {
            self.error(p.name.pos, format!("key property '{}' cannot be an array", p.name.name));
        }
        prop.qualifiers = qualifiers;
        if let Some(parent) = self.overrides(&p.qualifiers, &p.name, "property", parent) {
            if parent.cim_type != prop.cim_type || parent.is_array != prop.is_array {
                let show = |t: CimType, a: bool| format!("{t}{}", if a { "[]" } else { "" });
                self.error(
                    p.name.pos,
                    format!(
                        "property '{}' overrides {}.{} of type {} with type {}",
                        p.name.name,
                        parent.class_origin.as_deref().unwrap_or("?"),
                        parent.name,
                        show(parent.cim_type, parent.is_array),
                        show(prop.cim_type, prop.is_array)
                    ),
                );
            }
            if let (Some(new), Some(old)) = (&prop.reference_class, &parent.reference_class) {
                if derives_from(self.ns, new, old) == Some(false) {
                    self.error(
                        p.name.pos,
                        format!("reference '{}' overrides one to '{old}' with '{new}', which is not a subclass of '{old}'", p.name.name),
                    );
                }
            }
            // An override that gives no default keeps the inherited one.
            if p.default.is_none() {
                prop.value = parent.value.clone();
            }
        }
        Some(prop)
    }

    fn parameter(&mut self, p: &ParameterDecl, method: &str, parent: Option<&Parameter>) -> Parameter {
        let (cim_type, reference_class) = self.data_type(&p.ty, &p.name, &format!("parameter of method '{method}'"));
        let qualifiers = self.qualifiers(&p.qualifiers, Element::Parameter, parent.map(|pp| &pp.qualifiers[..]));
        if p.default.is_some() {
            self.warnings.push(SyntaxError::new(p.name.pos, format!("default value of parameter '{}' ignored", p.name.name)));
        }
        let mut param = Parameter::new(p.name.name.clone(), cim_type, p.array.is_some());
        param.array_size = p.array.flatten();
        param.reference_class = reference_class;
        param.qualifiers = qualifiers;
        param
    }

    fn method(&mut self, m: &MethodDecl) -> Option<Method> {
        let return_type = match &m.return_type {
            DataType::Prim(p) => CimType::from_name(p.name()).expect("every MOF intrinsic type is a CIM type"),
            DataType::Ref(class) => {
                self.error(class.pos, format!("method '{}' cannot return a reference (DSP0004 2.x)", m.name.name));
                return None;
            }
        };
        let parent = self.superclass.and_then(|s| s.method(&m.name.name));
        let qualifiers = self.qualifiers(&m.qualifiers, Element::Method, parent.map(|pm| &pm.qualifiers[..]));
        let mut method = Method::new(m.name.name.clone(), return_type);
        method.qualifiers = qualifiers;
        method.class_origin = Some(self.class_name.to_string());
        let mut seen = HashSet::new();
        for p in &m.parameters {
            if !seen.insert(fold_name(&p.name.name)) {
                self.error(p.name.pos, format!("parameter '{}' is declared twice in method '{}'", p.name.name, m.name.name));
                continue;
            }
            let parent_param = parent.and_then(|pm| pm.parameter(&p.name.name));
            let param = self.parameter(p, &m.name.name, parent_param);
            method.parameters.push(param);
        }
        if let Some(parent) = self.overrides(&m.qualifiers, &m.name, "method", parent) {
            if parent.return_type != return_type {
                self.error(
                    m.name.pos,
                    format!("method '{}' overrides one returning {} with return type {}", m.name.name, parent.return_type, return_type),
                );
            }
        }
        Some(method)
    }

    /// Checks that need the whole resolved class.
    fn check_resolved(&mut self, decl: &ClassDecl, local: &Class, resolved: &Class) {
        let exempt = local.is_abstract() || resolved.is_indication() || resolved.qualifier("Exception").is_some_and(Qualifier::is_true);
        if !exempt && resolved.key_properties().next().is_none() {
            self.error(
                decl.name.pos,
                format!(
                    "class '{}' has no key property; a class that is not Abstract, an Indication or an Exception needs one",
                    decl.name.name
                ),
            );
        }
        let refs = resolved.reference_properties().count();
        if resolved.is_association() && refs < 2 {
            self.error(decl.name.pos, format!("association '{}' has {refs} reference(s); it needs at least two", decl.name.name));
        }
    }
}
