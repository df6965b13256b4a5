//! Qualifier declarations and the typing of qualifier lists against them (DSP0004 5.6).

use crate::cim::{CimType, CimValue, Flavors, Qualifier, QualifierDecl, Scopes};

use super::ast::{Ident, QualifierDeclaration, QualifierUse};
use super::diag::SyntaxError;
use super::values::{typed, Aliases, ScalarForArray};

/// The kind of element a qualifier list is attached to, for the scope check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    Class,
    Association,
    Indication,
    Property,
    Reference,
    Method,
    Parameter,
    /// Instances and their property values: DSP0004 gives them no scope of their own.
    Instance,
}

impl Element {
    fn allowed_by(self, s: &Scopes) -> bool {
        match self {
            Element::Class => s.class,
            Element::Association => s.association,
            Element::Indication => s.indication,
            Element::Property => s.property,
            Element::Reference => s.reference,
            Element::Method => s.method,
            Element::Parameter => s.parameter,
            Element::Instance => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Element::Class => "class",
            Element::Association => "association",
            Element::Indication => "indication",
            Element::Property => "property",
            Element::Reference => "reference",
            Element::Method => "method",
            Element::Parameter => "parameter",
            Element::Instance => "instance",
        }
    }
}

/// Applies flavor keywords on top of `base`, refusing contradictions such as
/// `EnableOverride, DisableOverride`.
fn apply_flavors(mut base: Flavors, words: &[Ident]) -> Result<Flavors, SyntaxError> {
    let mut seen_override: Option<&Ident> = None;
    let mut seen_propagation: Option<&Ident> = None;
    for w in words {
        let slot = match w.name.to_ascii_lowercase().as_str() {
            "enableoverride" => {
                base.overridable = true;
                &mut seen_override
            }
            "disableoverride" => {
                base.overridable = false;
                &mut seen_override
            }
            "tosubclass" => {
                base.tosubclass = true;
                &mut seen_propagation
            }
            "restricted" => {
                base.tosubclass = false;
                &mut seen_propagation
            }
            "toinstance" => {
                base.toinstance = true;
                continue;
            }
            "translatable" => {
                base.translatable = true;
                continue;
            }
            _ => return Err(SyntaxError::new(w.pos, format!("unknown flavor '{}'", w.name))),
        };
        if let Some(prev) = *slot {
            if !prev.is(&w.name) {
                return Err(SyntaxError::new(w.pos, format!("flavor '{}' contradicts '{}'", w.name, prev.name)));
            }
        }
        *slot = Some(w);
    }
    Ok(base)
}

/// Lowers `Qualifier Name : type = default, Scope(...), Flavor(...);`.
pub fn lower_declaration(ast: &QualifierDeclaration) -> Result<QualifierDecl, SyntaxError> {
    let cim_type = CimType::from_name(ast.ty.name()).expect("every MOF intrinsic type is a CIM type");
    let mut decl = QualifierDecl::new(ast.name.name.clone(), cim_type, ast.array.is_some());
    decl.array_size = ast.array.flatten();
    if let Some(v) = &ast.default {
        decl.value = typed(v, cim_type, decl.is_array, &Aliases::new(), ScalarForArray::Wrap)?;
    }
    for s in &ast.scopes {
        let scopes = &mut decl.scopes;
        match s.name.to_ascii_lowercase().as_str() {
            "any" => *scopes = Scopes::any(),
            "class" => scopes.class = true,
            "association" => scopes.association = true,
            "indication" => scopes.indication = true,
            "property" => scopes.property = true,
            "reference" => scopes.reference = true,
            "method" => scopes.method = true,
            "parameter" => scopes.parameter = true,
            // Qualifiers on qualifier declarations do not exist in MOF; the scope is accepted for
            // schemas that list it.
            "qualifier" => {}
            _ => return Err(SyntaxError::new(s.pos, format!("unknown scope '{}'", s.name))),
        }
    }
    decl.flavors = apply_flavors(Flavors::default(), &ast.flavors)?;
    Ok(decl)
}

/// Types a qualifier list against the declarations in scope: the qualifiers that type correctly,
/// and an error for each that does not (every problem in the list is reported, not only the first).
pub fn lower_list<'d>(
    uses: &[QualifierUse],
    element: Element,
    decl_of: impl Fn(&str) -> Option<&'d QualifierDecl>,
    namespace: &str,
) -> (Vec<Qualifier>, Vec<SyntaxError>) {
    let mut out: Vec<Qualifier> = Vec::with_capacity(uses.len());
    let mut errors = Vec::new();
    for u in uses {
        match lower_one(u, element, &decl_of, namespace) {
            Ok(q) if out.iter().any(|o| o.name.eq_ignore_ascii_case(&q.name)) => {
                errors.push(SyntaxError::new(u.name.pos, format!("qualifier '{}' appears twice in the same list", u.name.name)));
            }
            Ok(q) => out.push(q),
            Err(e) => errors.push(e),
        }
    }
    (out, errors)
}

fn lower_one<'d>(
    u: &QualifierUse,
    element: Element,
    decl_of: &impl Fn(&str) -> Option<&'d QualifierDecl>,
    namespace: &str,
) -> Result<Qualifier, SyntaxError> {
    let at = |message: String| SyntaxError::new(u.name.pos, message);
    let decl =
        decl_of(&u.name.name).ok_or_else(|| at(format!("qualifier '{}' is not declared in namespace '{namespace}'", u.name.name)))?;
    if !element.allowed_by(&decl.scopes) {
        return Err(at(format!("qualifier '{}' is not allowed on a {} (its scope does not include it)", decl.name, element.name())));
    }
    let value = match &u.value {
        Some(v) => typed(v, decl.cim_type, decl.is_array, &Aliases::new(), ScalarForArray::Wrap)?,
        None if decl.cim_type == CimType::Boolean && !decl.is_array => Some(CimValue::Boolean(true)),
        None => {
            let array = if decl.is_array { "[]" } else { "" };
            return Err(at(format!("qualifier '{}' needs a value of type {}{array}", decl.name, decl.cim_type)));
        }
    };
    let flavors = apply_flavors(decl.flavors, &u.flavors)?;
    // The declaration's spelling, so that `key` and `KEY` come out as `Key`.
    Ok(Qualifier { name: decl.name.clone(), cim_type: decl.cim_type, is_array: decl.is_array, value, propagated: false, flavors })
}

#[cfg(test)]
mod tests {
    use super::super::ast::Production;
    use super::super::parser::parse;
    use super::*;

    fn decls(src: &str) -> Vec<QualifierDecl> {
        parse(src)
            .unwrap()
            .into_iter()
            .map(|p| match p {
                Production::Qualifier(q) => lower_declaration(&q).unwrap(),
                _ => panic!(),
            })
            .collect()
    }

    fn uses(src: &str) -> Vec<QualifierUse> {
        match parse(&format!("{src} class X {{}};")).unwrap().remove(0) {
            Production::Class(c) => c.qualifiers,
            _ => panic!(),
        }
    }

    const DECLS: &str = r#"
        Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride, ToSubclass);
        Qualifier Description : string = null, Scope(any), Flavor(EnableOverride, ToSubclass, Translatable);
        Qualifier ValueMap : string[], Scope(property, method, parameter);
        Qualifier Version : string = null, Scope(class, association, indication), Flavor(Restricted, Translatable);
        Qualifier MaxLen : uint32 = null, Scope(property, method, parameter);
    "#;

    #[test]
    fn declarations() {
        let d = decls(DECLS);
        assert_eq!(d.len(), 5);
        assert_eq!(d[0].value, Some(CimValue::Boolean(false)));
        assert!(d[0].scopes.property && d[0].scopes.reference && !d[0].scopes.class);
        assert!(!d[0].flavors.overridable && d[0].flavors.tosubclass);
        assert!(d[1].scopes.is_any() && d[1].flavors.translatable && d[1].value.is_none());
        assert!(d[2].is_array && d[2].value.is_none());
        assert!(!d[3].flavors.tosubclass && d[3].flavors.overridable);
        let bad = |src: &str| match parse(src).unwrap().remove(0) {
            Production::Qualifier(q) => lower_declaration(&q).unwrap_err().message,
            _ => panic!(),
        };
        assert_eq!(bad("Qualifier Q : boolean, Scope(everything);"), "unknown scope 'everything'");
        assert_eq!(bad("Qualifier Q : boolean, Scope(any), Flavor(Sticky);"), "unknown flavor 'Sticky'");
        assert_eq!(
            bad("Qualifier Q : boolean, Scope(any), Flavor(EnableOverride, DisableOverride);"),
            "flavor 'DisableOverride' contradicts 'EnableOverride'"
        );
        assert_eq!(bad("Qualifier Q : uint8 = 300, Scope(any);"), "integer 300 is out of range for uint8 (0 to 255)");
    }

    #[test]
    fn lists_are_typed_and_checked() {
        let d = decls(DECLS);
        let find = |n: &str| d.iter().find(|q| q.name.eq_ignore_ascii_case(n));
        let (list, errors) =
            lower_list(&uses(r#"[key, Description("d"): Restricted, ValueMap("1"), MaxLen(64)]"#), Element::Property, find, "root/x");
        assert!(errors.is_empty());
        assert_eq!(list[0].name, "Key");
        assert!(list[0].is_true());
        assert!(!list[1].flavors.tosubclass && list[1].flavors.translatable);
        assert_eq!(list[2].value.as_ref().unwrap().as_array().unwrap().len(), 1);
        assert_eq!(list[3].value, Some(CimValue::UInt32(64)));

        let (list, errors) = lower_list(&uses(r#"[Key, Nope, Version("1"), MaxLen, Key, MaxLen("x")]"#), Element::Property, find, "root/x");
        assert_eq!(list.len(), 1, "Key typed correctly and is kept");
        let messages: Vec<_> = errors.iter().map(|e| (e.pos.col, e.message.as_str())).collect();
        assert_eq!(
            messages,
            [
                (7, "qualifier 'Nope' is not declared in namespace 'root/x'"),
                (13, "qualifier 'Version' is not allowed on a property (its scope does not include it)"),
                (27, "qualifier 'MaxLen' needs a value of type uint32"),
                (35, "qualifier 'Key' appears twice in the same list"),
                (47, "expected a uint32 value, found a string"),
            ]
        );
        assert!(lower_list(&uses("[Version(\"2.22.0\")]"), Element::Association, find, "n").1.is_empty());
        assert!(lower_list(&uses("[Key]"), Element::Instance, find, "n").1.is_empty());
    }
}
