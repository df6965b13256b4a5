//! Generates the datamodel tables from `datamodel/classes.dm`, the one place where the Xen-API
//! classes, fields, messages and enums are declared (as xapi does with `datamodel*.ml`).
//!
//! Output (`$OUT_DIR/datamodel_gen.rs`, included by `src/datamodel.rs`):
//! - `CLASSES`: every class with its fields, explicit messages and implicit message names;
//! - `ENUMS`: enum values;
//! - `class::X`: a `ClassId` constant per class;
//! - a module per class (`vm`, `vbd`, ...) with a `FieldId` constant per field, so that code
//!   names fields with checked identifiers instead of strings.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

struct Field {
    name: String,
    ty: String,
    qual: String,
    default: Option<String>,
    deprecated: bool,
}

struct Param {
    name: String,
    ty: String,
    optional: bool,
}

struct Message {
    name: String,
    ret: String,
    takes_session: bool,
    params: Vec<Param>,
    flags: Vec<String>,
}

struct Class {
    name: String,
    doc: String,
    fields: Vec<Field>,
    messages: Vec<Message>,
    implicit: Vec<String>,
}

fn main() {
    let src = Path::new("datamodel/classes.dm");
    println!("cargo:rerun-if-changed={}", src.display());
    let text = std::fs::read_to_string(src).expect("read datamodel/classes.dm");
    let (classes, enums, relations) = parse(&text);
    let mut out = generate(&classes, &enums, &relations);
    let errors_src = Path::new("datamodel/errors.json");
    println!("cargo:rerun-if-changed={}", errors_src.display());
    out.push_str(&generate_errors(&std::fs::read_to_string(errors_src).expect("read datamodel/errors.json")));
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("datamodel_gen.rs");
    std::fs::write(dest, out).unwrap();
}

fn fail(line_no: usize, msg: &str) -> ! {
    panic!("datamodel/classes.dm:{line_no}: {msg}");
}

type Relation = ((String, String), (String, String));
type Enum = (String, Vec<String>);

fn parse(text: &str) -> (Vec<Class>, Vec<Enum>, Vec<Relation>) {
    let mut classes: Vec<Class> = Vec::new();
    let mut enums = Vec::new();
    let mut relations = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kw, rest) = line.split_once(' ').unwrap_or((line, ""));
        let cells: Vec<&str> = rest.split(" | ").map(str::trim).collect();
        match kw {
            "class" => classes.push(Class {
                name: cells[0].to_owned(),
                doc: cells.get(1).unwrap_or(&"").to_string(),
                fields: vec![],
                messages: vec![],
                implicit: vec![],
            }),
            "enum" => enums.push((
                cells[0].to_owned(),
                cells.get(1).unwrap_or_else(|| fail(n, "enum without values")).split_whitespace().map(str::to_owned).collect(),
            )),
            "field" => {
                let class = classes.last_mut().unwrap_or_else(|| fail(n, "field outside a class"));
                if cells.len() < 4 {
                    fail(n, "field needs name | type | qualifier | default");
                }
                class.fields.push(Field {
                    name: cells[0].to_owned(),
                    ty: cells[1].to_owned(),
                    qual: cells[2].to_owned(),
                    default: Some(cells[3]).filter(|d| !d.is_empty()).map(str::to_owned),
                    deprecated: cells.iter().skip(4).any(|c| c.contains("deprecated") || c.contains("REMOVED")),
                });
            }
            "message" => {
                let class = classes.last_mut().unwrap_or_else(|| fail(n, "message outside a class"));
                let mut params = Vec::new();
                let mut takes_session = false;
                for p in cells.get(2).unwrap_or(&"").split(", ").filter(|p| !p.is_empty()) {
                    let (ty, name) = p.rsplit_once(' ').unwrap_or_else(|| fail(n, "parameter needs a type and a name"));
                    if ty == "session ref" && name == "session_id" && params.is_empty() && !takes_session {
                        takes_session = true;
                        continue;
                    }
                    let optional = name.ends_with('?');
                    params.push(Param { name: name.trim_end_matches('?').to_owned(), ty: ty.to_owned(), optional });
                }
                class.messages.push(Message {
                    name: cells[0].to_owned(),
                    ret: cells.get(1).unwrap_or(&"void").to_string(),
                    takes_session,
                    params,
                    flags: cells.get(3).map(|f| f.split_whitespace().map(str::to_owned).collect()).unwrap_or_default(),
                });
            }
            "relation" => {
                let end = |s: &str| -> (String, String) {
                    let (c, f) = s.split_once('.').unwrap_or_else(|| fail(n, "relation ends are Class.field"));
                    (c.to_owned(), f.to_owned())
                };
                relations.push((end(cells[0]), end(cells.get(1).unwrap_or_else(|| fail(n, "relation needs two ends")))));
            }
            "implicit" => {
                let class = classes.last_mut().unwrap_or_else(|| fail(n, "implicit outside a class"));
                class.implicit.extend(rest.split_whitespace().map(str::to_owned));
            }
            _ => fail(n, &format!("unknown keyword {kw:?}")),
        }
    }
    (classes, enums, relations)
}

/// Turns a type in xapi's notation (`(string -> enum vm_operations) map`, `VM ref set`) into
/// a `Type` constant expression.
fn type_expr(ty: &str) -> String {
    let ty = ty.trim();
    if let Some(inner) = ty.strip_suffix(" map") {
        let inner = inner.trim().strip_prefix('(').and_then(|s| s.strip_suffix(')')).expect("map type in parentheses");
        let (k, v) = inner.split_once(" -> ").expect("map type with ->");
        return format!("Type::Map(&{}, &{})", type_expr(k), type_expr(v));
    }
    if let Some(inner) = ty.strip_suffix(" set") {
        return format!("Type::Set(&{})", type_expr(inner));
    }
    if let Some(class) = ty.strip_suffix(" ref") {
        return format!("Type::Ref({class:?})");
    }
    if let Some(class) = ty.strip_suffix(" record") {
        return if class.starts_with('<') { "Type::AnyRecord".into() } else { format!("Type::Record({class:?})") };
    }
    if let Some(name) = ty.strip_prefix("enum ") {
        return format!("Type::Enum({name:?})");
    }
    match ty {
        "string" => "Type::String".into(),
        "int" => "Type::Int".into(),
        "float" => "Type::Float".into(),
        "bool" => "Type::Bool".into(),
        "datetime" => "Type::DateTime".into(),
        "void" => "Type::Void".into(),
        "an event batch" => "Type::EventBatch".into(),
        other => panic!("datamodel: unknown type {other:?}"),
    }
}

fn qual_expr(q: &str) -> &'static str {
    match q {
        "RW" => "Qual::ReadWrite",
        "RO/constructor" => "Qual::Constructor",
        "RO/runtime" => "Qual::Runtime",
        other => panic!("datamodel: unknown qualifier {other:?}"),
    }
}

fn const_name(field: &str) -> String {
    let s = field.to_ascii_uppercase();
    if s.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        format!("F_{s}")
    } else {
        s
    }
}

fn generate(classes: &[Class], enums: &[Enum], relations: &[Relation]) -> String {
    let mut o = String::new();
    let class_index = |name: &str| {
        classes.iter().position(|c| c.name == name).unwrap_or_else(|| panic!("datamodel: relation names unknown class {name}"))
    };
    let field_index = |ci: usize, name: &str| {
        classes[ci].fields.iter().position(|f| f.name == name).unwrap_or_else(|| panic!("datamodel: relation names unknown field {name}"))
    };
    o.push_str("/// Bound relations: (class, many-to-one field) kept in (class, set field).\npub static RELATIONS: &[Relation] = &[\n");
    for ((c1, f1), (c2, f2)) in relations {
        let (a, b) = (class_index(c1), class_index(c2));
        writeln!(
            o,
            "    Relation {{ from: (ClassId({a}), FieldId({})), to: (ClassId({b}), FieldId({})) }},",
            field_index(a, f1),
            field_index(b, f2)
        )
        .unwrap();
    }
    o.push_str("];\n\n");
    o.push_str("// @generated by build.rs from datamodel/classes.dm. Do not edit.\n\n");
    o.push_str("pub static CLASSES: &[ClassDef] = &[\n");
    for (ci, c) in classes.iter().enumerate() {
        writeln!(o, "    ClassDef {{ id: ClassId({ci}), name: {:?}, doc: {:?}, fields: &[", c.name, c.doc).unwrap();
        for f in &c.fields {
            writeln!(
                o,
                "        FieldDef {{ name: {:?}, ty: {}, qual: {}, default: {:?}, deprecated: {} }},",
                f.name,
                type_expr(&f.ty),
                qual_expr(&f.qual),
                f.default,
                f.deprecated
            )
            .unwrap();
        }
        o.push_str("    ], messages: &[\n");
        for m in &c.messages {
            write!(
                o,
                "        MessageDef {{ name: {:?}, ret: {}, takes_session: {}, params: &[",
                m.name,
                type_expr(&m.ret),
                m.takes_session
            )
            .unwrap();
            for p in &m.params {
                write!(o, "ParamDef {{ name: {:?}, ty: {}, optional: {} }}, ", p.name, type_expr(&p.ty), p.optional).unwrap();
            }
            writeln!(o, "], flags: &{:?} }},", m.flags).unwrap();
        }
        writeln!(o, "    ], implicit: &{:?} }},", c.implicit).unwrap();
    }
    o.push_str("];\n\n");
    o.push_str("pub static ENUMS: &[EnumDef] = &[\n");
    for (name, values) in enums {
        writeln!(o, "    EnumDef {{ name: {name:?}, values: &{values:?} }},").unwrap();
    }
    o.push_str("];\n\n");
    o.push_str(
        "/// A `ClassId` per class, named as on the wire.\n#[allow(non_upper_case_globals)]\npub mod class {\n    use super::ClassId;\n",
    );
    for (ci, c) in classes.iter().enumerate() {
        writeln!(o, "    pub const {}: ClassId = ClassId({ci});", c.name).unwrap();
    }
    o.push_str("}\n\n");
    for c in classes {
        let mut seen = HashSet::new();
        writeln!(o, "/// Field identifiers of class `{}`.\npub mod {} {{\n    use super::FieldId;", c.name, c.name.to_ascii_lowercase())
            .unwrap();
        for (fi, f) in c.fields.iter().enumerate() {
            let name = const_name(&f.name);
            assert!(seen.insert(name.clone()), "datamodel: field constant {name} of {} collides", c.name);
            writeln!(o, "    pub const {name}: FieldId = FieldId({fi});").unwrap();
        }
        o.push_str("}\n\n");
    }
    o
}

/// Error codes from `datamodel/errors.json` (code -> [[argument names], description]).
fn generate_errors(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).expect("errors.json is JSON");
    let mut o = String::from(
        "/// Xen-API error codes, as xapi declares them (a few are lowercase there).\n#[allow(non_upper_case_globals)]\npub mod codes {\n",
    );
    let mut table = String::from("/// Every error code with its declared argument names.\npub static ERRORS: &[(&str, &[&str])] = &[\n");
    let map = v.as_object().expect("errors.json is an object");
    for (code, spec) in map {
        let args: Vec<&str> = spec[0].as_array().expect("argument list").iter().map(|a| a.as_str().unwrap()).collect();
        writeln!(o, "    pub const {code}: &str = {code:?};").unwrap();
        writeln!(table, "    ({code:?}, &{args:?}),").unwrap();
    }
    o.push_str("}\n\n");
    o.push_str(&table);
    o.push_str("];\n");
    o
}
