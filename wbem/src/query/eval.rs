//! Evaluates a WHERE clause over an instance, in three-valued logic (`None` = unknown).

use std::cmp::Ordering;

use super::{CompareOp, Condition, Operand, PropertyRef, Query, QueryLanguage};
use crate::cim::{names_equal, CimValue, Instance};

/// Answers `ISA`: whether `class` is `ancestor` or derives from it.
pub trait ClassHierarchy {
    fn is_a(&self, class: &str, ancestor: &str) -> bool;
}

impl<F: Fn(&str, &str) -> bool> ClassHierarchy for F {
    fn is_a(&self, class: &str, ancestor: &str) -> bool {
        self(class, ancestor)
    }
}

/// What an operand evaluates to: a value, NULL, or a whole (embedded) instance.
enum Val<'a> {
    Null,
    Value(&'a CimValue),
    Object(&'a Instance),
}

fn resolve<'a>(query: &Query, r: &PropertyRef, instance: &'a Instance) -> Val<'a> {
    let mut segments: &[String] = &r.segments;
    // `FromClass.Prop` or `alias.Prop` names a property of the instance itself.
    if segments.len() > 1 {
        let first = &segments[0];
        let is_self = names_equal(first, &query.from_class) || query.alias.as_deref().is_some_and(|a| names_equal(a, first));
        if is_self {
            segments = &segments[1..];
        }
    } else if names_equal(&segments[0], &query.from_class) || query.alias.as_deref().is_some_and(|a| names_equal(a, &segments[0])) {
        return Val::Object(instance);
    }
    let mut current = instance;
    for (i, name) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match current.value(name) {
            None => return Val::Null,
            Some(CimValue::Instance(inner)) => {
                if last {
                    return Val::Object(inner);
                }
                current = inner;
            }
            Some(v) if last => return Val::Value(v),
            Some(_) => return Val::Null,
        }
    }
    Val::Object(current)
}

fn operand<'a>(query: &Query, op: &'a Operand, instance: &'a Instance) -> Val<'a> {
    match op {
        Operand::Literal(None) => Val::Null,
        Operand::Literal(Some(v)) => Val::Value(v),
        Operand::Property(r) => resolve(query, r, instance),
    }
}

fn as_f64(v: &CimValue) -> Option<f64> {
    match v {
        CimValue::Real32(r) => Some(f64::from(*r)),
        CimValue::Real64(r) => Some(*r),
        v => v.as_integer().map(|i| i as f64),
    }
}

fn compare_values(a: &CimValue, b: &CimValue) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_integer(), b.as_integer()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (as_f64(a), as_f64(b)) {
        return x.partial_cmp(&y);
    }
    match (a, b) {
        (CimValue::String(x), CimValue::String(y)) => Some(x.cmp(y)),
        (CimValue::Char16(x), CimValue::Char16(y)) => Some(x.cmp(y)),
        (CimValue::Char16(x), CimValue::String(y)) | (CimValue::String(y), CimValue::Char16(x)) => Some(x.to_string().cmp(y)),
        (CimValue::Boolean(x), CimValue::Boolean(y)) => Some(x.cmp(y)),
        (CimValue::DateTime(x), CimValue::DateTime(y)) => Some(x.to_string().cmp(&y.to_string())),
        (CimValue::DateTime(x), CimValue::String(y)) | (CimValue::String(y), CimValue::DateTime(x)) => Some(x.to_string().cmp(y)),
        (CimValue::Reference(x), CimValue::Reference(y)) => (x == y).then_some(Ordering::Equal).or(Some(Ordering::Less)),
        (CimValue::Reference(x), CimValue::String(y)) | (CimValue::String(y), CimValue::Reference(x)) => {
            match crate::cim::ObjectPath::parse(y) {
                Ok(p) if crate::provider::same_instance(x, &p) => Some(Ordering::Equal),
                _ => Some(Ordering::Less),
            }
        }
        // An enumeration compared with its numeric text ('2' = 2) compares as numbers.
        (CimValue::String(s), n) if as_f64(n).is_some() => s.trim().parse::<f64>().ok()?.partial_cmp(&as_f64(n)?),
        (n, CimValue::String(s)) if as_f64(n).is_some() => as_f64(n)?.partial_cmp(&s.trim().parse::<f64>().ok()?),
        _ => None,
    }
}

fn compare(query: &Query, l: &Operand, op: CompareOp, r: &Operand, instance: &Instance) -> Option<bool> {
    let lv = operand(query, l, instance);
    let rv = operand(query, r, instance);
    let value = |v: &Val| -> Option<CimValue> {
        match v {
            Val::Null | Val::Object(_) => None,
            Val::Value(v) => Some((*v).clone()),
        }
    };
    if let (Val::Object(a), Val::Object(b)) = (&lv, &rv) {
        let same = a == b;
        return match op {
            CompareOp::Eq => Some(same),
            CompareOp::Ne => Some(!same),
            _ => None,
        };
    }
    let (a, b) = (value(&lv)?, value(&rv)?);
    if let CimValue::Array(arr) = &a {
        // An array equals a scalar when one element does (CQL's ANY, the common WQL reading).
        let hits = arr.values().any(|e| compare_values(e, &b) == Some(Ordering::Equal));
        return match op {
            CompareOp::Eq => Some(hits),
            CompareOp::Ne => Some(!hits),
            _ => None,
        };
    }
    let ord = compare_values(&a, &b)?;
    Some(match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
    })
}

/// WQL LIKE: `%` any run, `_` one character, `[abc]` / `[^abc]` / `[a-z]` a set. CQL LIKE
/// (DSP0202) is a small regular expression: `.` one character, `*` repeats what precedes it.
pub(super) fn like(language: QueryLanguage, text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    match language {
        QueryLanguage::Wql => wql_like(&t, &p),
        QueryLanguage::Cql => cql_like(&t, &p),
    }
}

fn wql_like(t: &[char], p: &[char]) -> bool {
    // Iterative matching with backtracking to the last '%': linear-ish, no recursion blow-up.
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '%' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '_' => {
                    ti += 1;
                    pi += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, len)) = set_match(&p[pi..], t[ti]) {
                        if matched {
                            ti += 1;
                            pi += len;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        ti += 1;
                        pi += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    ti += 1;
                    pi += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

/// Matches `[...]` at the start of `p` against `c`: `Some((matched, pattern length))`, `None` when
/// the bracket is not closed.
fn set_match(p: &[char], c: char) -> Option<(bool, usize)> {
    let close = p.iter().skip(1).position(|x| *x == ']')? + 1;
    let body = &p[1..close];
    let (negate, body) = match body.first() {
        Some('^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut hit = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            hit |= (body[i]..=body[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= body[i] == c;
            i += 1;
        }
    }
    Some((hit != negate, close + 1))
}

fn cql_like(t: &[char], p: &[char]) -> bool {
    // Dynamic programming over (pattern atom, text position); atoms are a char or '.', each
    // optionally followed by '*'. '\' escapes the next character.
    let mut atoms: Vec<(Option<char>, bool)> = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let (atom, next) = match p[i] {
            '\\' if i + 1 < p.len() => (Some(p[i + 1]), i + 2),
            '.' => (None, i + 1),
            c => (Some(c), i + 1),
        };
        let repeated = p.get(next) == Some(&'*');
        atoms.push((atom, repeated));
        i = if repeated { next + 1 } else { next };
    }
    let mut reach = vec![false; t.len() + 1];
    reach[0] = true;
    for (atom, repeated) in atoms {
        let matches = |c: char| atom.is_none_or(|a| a == c);
        let mut next = vec![false; t.len() + 1];
        for j in 0..=t.len() {
            if !reach[j] {
                continue;
            }
            if repeated {
                next[j] = true;
                let mut k = j;
                while k < t.len() && matches(t[k]) {
                    k += 1;
                    next[k] = true;
                }
            } else if j < t.len() && matches(t[j]) {
                next[j + 1] = true;
            }
        }
        reach = next;
    }
    reach[t.len()]
}

fn not(v: Option<bool>) -> Option<bool> {
    v.map(|b| !b)
}

pub(super) fn eval(query: &Query, c: &Condition, instance: &Instance, classes: &dyn ClassHierarchy) -> Option<bool> {
    match c {
        Condition::And(a, b) => match (eval(query, a, instance, classes), eval(query, b, instance, classes)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Condition::Or(a, b) => match (eval(query, a, instance, classes), eval(query, b, instance, classes)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        Condition::Not(a) => not(eval(query, a, instance, classes)),
        Condition::Compare(l, op, r) => compare(query, l, *op, r, instance),
        Condition::IsNull(o, want_null) => {
            let is_null = matches!(operand(query, o, instance), Val::Null);
            Some(is_null == *want_null)
        }
        Condition::Isa(o, class) => match operand(query, o, instance) {
            Val::Object(i) => Some(classes.is_a(&i.class_name, class)),
            Val::Null => None,
            _ => Some(false),
        },
        Condition::Like(o, pattern, positive) => match operand(query, o, instance) {
            Val::Value(CimValue::String(s)) => Some(like(query.language, s, pattern) == *positive),
            Val::Null => None,
            _ => Some(false),
        },
        Condition::Truth(o) => match operand(query, o, instance) {
            Val::Value(CimValue::Boolean(b)) => Some(*b),
            Val::Null => None,
            _ => Some(false),
        },
    }
}
