//! The messages xapi generates for every class from its fields: getters, setters, map and set
//! editors, records, lookups, and the plain constructor and destructor. One implementation
//! here serves every class; the datamodel decides which exist.

use crate::datamodel::{coerce, type_name, ClassDef, FieldDef, Qual, Type};
use crate::db::{default_fields, record_of};
use crate::error::{codes, ApiError, ApiResult};
use crate::model::Model;
use crate::value::Value;

/// The parameters of an implicit message after the session: (name, type).
pub fn implicit_params(c: &ClassDef, msg: &str) -> Option<Vec<(&'static str, Type)>> {
    let self_ref = ("self", Type::Ref(c.name));
    Some(match msg {
        "get_record" | "destroy" => vec![self_ref],
        "get_all" | "get_all_records" => vec![],
        "get_by_uuid" => vec![("uuid", Type::String)],
        "get_by_name_label" => vec![("label", Type::String)],
        "create" => vec![("args", Type::Record(c.name))],
        _ => {
            let (field, kind) = field_message(c, msg)?;
            match kind {
                Accessor::Get => vec![self_ref],
                Accessor::Set => vec![self_ref, ("value", field.ty)],
                Accessor::AddToMap | Accessor::RemoveFromMap => {
                    let Type::Map(k, v) = field.ty else { return None };
                    if kind == Accessor::AddToMap {
                        vec![self_ref, ("key", *k), ("value", *v)]
                    } else {
                        vec![self_ref, ("key", *k)]
                    }
                }
                Accessor::AddToSet | Accessor::RemoveFromSet => {
                    let Type::Set(e) = field.ty else { return None };
                    vec![self_ref, ("value", *e)]
                }
            }
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accessor {
    Get,
    Set,
    AddToMap,
    RemoveFromMap,
    AddToSet,
    RemoveFromSet,
}

/// Which field an accessor message names (`add_to_other_config` -> other_config).
pub fn field_message(c: &ClassDef, msg: &str) -> Option<(&'static FieldDef, Accessor)> {
    let candidates = [
        ("get_", Accessor::Get),
        ("set_", Accessor::Set),
        ("add_to_", Accessor::AddToMap),
        ("remove_from_", Accessor::RemoveFromMap),
        ("add_", Accessor::AddToSet),
        ("remove_", Accessor::RemoveFromSet),
    ];
    for (prefix, kind) in candidates {
        if let Some(name) = msg.strip_prefix(prefix) {
            if let Some(id) = c.field_id(name) {
                let f = c.field(id);
                let fits = match kind {
                    Accessor::AddToMap | Accessor::RemoveFromMap => matches!(f.ty, Type::Map(..)),
                    Accessor::AddToSet | Accessor::RemoveFromSet => matches!(f.ty, Type::Set(_)),
                    _ => true,
                };
                if fits {
                    return Some((f, kind));
                }
            }
        }
    }
    None
}

fn self_ref(args: &[Value]) -> &str {
    args.first().and_then(Value::as_str).unwrap_or("")
}

/// Builds a new object's fields from a `create` record: defaults, then every non-runtime
/// field the caller gave, checked against its type. Unknown members are ignored, as xapi does.
pub fn fields_from_record(c: &ClassDef, record: &Value) -> ApiResult<Vec<Value>> {
    let mut fields = default_fields(c.id);
    let Value::Struct(members) = record else {
        return Err(ApiError::new(codes::FIELD_TYPE_ERROR, ["args"]));
    };
    for (name, value) in members {
        let Some(id) = c.field_id(name) else { continue };
        let f = c.field(id);
        if f.qual == Qual::Runtime && f.name != "uuid" {
            continue;
        }
        if f.name == "uuid" {
            let given = value.as_str().unwrap_or("");
            if given.is_empty() {
                continue;
            }
            if uuid::Uuid::parse_str(given).is_err() {
                return Err(ApiError::new(codes::UUID_INVALID, [c.name, given]));
            }
        }
        fields[id.index()] = coerce(value.clone(), f.ty).map_err(|_| ApiError::new(codes::FIELD_TYPE_ERROR, [f.name]))?;
    }
    Ok(fields)
}

/// Runs an implicit message on any class.
pub fn generic(model: &Model, c: &'static ClassDef, msg: &str, args: Vec<Value>) -> ApiResult<Value> {
    let cid = c.id;
    match msg {
        "get_record" => {
            let data = model.db.read();
            let r = data.resolve(cid, self_ref(&args)).ok_or_else(|| ApiError::handle_invalid(c.name, self_ref(&args)))?;
            Ok(data.record(cid, r).unwrap())
        }
        "get_all" => Ok(Value::Array(model.db.read().rows(cid).map(|(r, _)| Value::Str(r.clone())).collect())),
        "get_all_records" => {
            let data = model.db.read();
            Ok(Value::Struct(data.rows(cid).map(|(r, row)| (r.clone(), record_of(cid, &row.fields))).collect()))
        }
        "get_by_uuid" => {
            let uuid = self_ref(&args);
            model.db.read().by_uuid(cid, uuid).map(|r| Value::Str(r.clone())).ok_or_else(|| crate::db::uuid_invalid(cid, uuid))
        }
        "get_by_name_label" => {
            let label = self_ref(&args);
            let Some(id) = c.field_id("name_label") else { return Err(ApiError::not_implemented(&format!("{}.{msg}", c.name))) };
            Ok(Value::Array(
                model.db.read().rows(cid).filter(|(_, row)| row.str(id) == label).map(|(r, _)| Value::Str(r.clone())).collect(),
            ))
        }
        "create" => {
            let fields = fields_from_record(c, &args[0])?;
            model.write(|tx| Ok(Value::Str(tx.insert(cid, fields))))
        }
        "destroy" => {
            let r = self_ref(&args).to_owned();
            model.write(|tx| tx.remove(cid, &r).map(|_| Value::void()))
        }
        _ => {
            let Some((field, kind)) = field_message(c, msg) else {
                return Err(ApiError::not_implemented(&format!("{}.{msg}", c.name)));
            };
            let id = c.field_id(field.name).unwrap();
            let r = {
                let data = model.db.read();
                data.resolve(cid, self_ref(&args)).ok_or_else(|| ApiError::handle_invalid(c.name, self_ref(&args)))?.to_owned()
            };
            if kind == Accessor::Get {
                return model.field(cid, &r, id);
            }
            let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
            model.write(|tx| {
                let uuid = tx.data().expect(cid, &r)?.str(crate::datamodel::FieldId(0)).to_owned();
                match kind {
                    Accessor::Set => tx.set(cid, &r, id, arg(1)),
                    Accessor::AddToMap => {
                        let key = arg(1).as_str().map(str::to_owned).unwrap_or_else(|| format!("{:?}", arg(1)));
                        let row = tx.data().expect(cid, &r)?;
                        if row.map(id).iter().any(|(k, _)| *k == key) {
                            return Err(ApiError::new(codes::MAP_DUPLICATE_KEY, [c.name, field.name, &uuid, &key]));
                        }
                        tx.update(cid, &r, id, |v| {
                            if let Value::Struct(m) = v {
                                m.push((key.clone(), arg(2)));
                            }
                        })
                    }
                    Accessor::RemoveFromMap => {
                        let key = arg(1).as_str().map(str::to_owned).unwrap_or_default();
                        tx.update(cid, &r, id, |v| {
                            if let Value::Struct(m) = v {
                                m.retain(|(k, _)| *k != key);
                            }
                        })
                    }
                    Accessor::AddToSet => tx.update(cid, &r, id, |v| {
                        if let Value::Array(items) = v {
                            if !items.contains(&arg(1)) {
                                items.push(arg(1));
                            }
                        }
                    }),
                    Accessor::RemoveFromSet => tx.update(cid, &r, id, |v| {
                        if let Value::Array(items) = v {
                            items.retain(|x| *x != arg(1));
                        }
                    }),
                    Accessor::Get => unreachable!(),
                }
                .map(|_| Value::void())
            })
        }
    }
}

/// A readable name of a parameter's type, for unmarshalling errors.
pub fn describe_type(ty: Type) -> String {
    type_name(ty)
}
