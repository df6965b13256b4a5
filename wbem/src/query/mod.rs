//! The query languages of ExecQuery, OpenQueryInstances and indication filters: WQL (the
//! subset CIMOMs share: `SELECT * | props FROM class [WHERE cond]`) and the part of DMTF:CQL
//! (DSP0202) that indication filters use (`SourceInstance ISA CIM_X`, scoped property names such
//! as `SourceInstance.CIM_ComputerSystem::EnabledState`).
//!
//! Conditions: comparisons (`= <> != < <= > >=`), `IS [NOT] NULL`, `ISA`, `[NOT] LIKE`, `AND`,
//! `OR`, `NOT` and parentheses; literals are strings (`'..'` or `".."`), numbers, `TRUE`, `FALSE`
//! and `NULL`. Errors carry the column where parsing stopped and become CIM_ERR_INVALID_QUERY.
//!
//! Evaluation follows SQL's three-valued logic: a comparison with NULL is unknown, and a row
//! matches only when the whole condition is true.

mod eval;
mod parse;

use std::fmt;

use crate::cim::{CimError, CimStatus, CimValue, Instance};

pub use eval::ClassHierarchy;

/// Which grammar a query is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLanguage {
    Wql,
    Cql,
}

impl QueryLanguage {
    /// `WQL`, or `DMTF:CQL` / `CQL` (case-insensitive); anything else is
    /// CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED.
    pub fn from_name(name: &str) -> Result<QueryLanguage, CimError> {
        let n = name.trim();
        if n.eq_ignore_ascii_case("WQL") {
            Ok(QueryLanguage::Wql)
        } else if n.eq_ignore_ascii_case("DMTF:CQL") || n.eq_ignore_ascii_case("CQL") {
            Ok(QueryLanguage::Cql)
        } else {
            Err(CimError::new(
                CimStatus::QueryLanguageNotSupported,
                format!("query language '{n}' is not supported (WQL and DMTF:CQL are)"),
            ))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            QueryLanguage::Wql => "WQL",
            QueryLanguage::Cql => "DMTF:CQL",
        }
    }
}

/// A syntax error with the 1-based column where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl From<QueryError> for CimError {
    fn from(e: QueryError) -> CimError {
        CimError::new(CimStatus::InvalidQuery, e.to_string())
    }
}

/// A property named in a query: a chain of names, each optionally scoped by a class
/// (`SourceInstance.CIM_ComputerSystem::Name` is `[SourceInstance, Name]` with a scope on the
/// second).
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyRef {
    pub segments: Vec<String>,
}

impl fmt::Display for PropertyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("."))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Property(PropertyRef),
    Literal(Option<CimValue>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Compare(Operand, CompareOp, Operand),
    IsNull(Operand, bool),
    Isa(Operand, String),
    Like(Operand, String, bool),
    /// A bare boolean operand (`WHERE Enabled`).
    Truth(Operand),
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub language: QueryLanguage,
    pub text: String,
    /// `None` for `SELECT *`.
    pub select: Option<Vec<PropertyRef>>,
    pub from_class: String,
    pub alias: Option<String>,
    pub condition: Option<Condition>,
}

impl Query {
    pub fn parse(language: QueryLanguage, text: &str) -> Result<Query, QueryError> {
        parse::parse(language, text)
    }

    /// Parses with the language given by name (CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED or
    /// CIM_ERR_INVALID_QUERY on failure).
    pub fn parse_named(language: &str, text: &str) -> Result<Query, CimError> {
        let lang = QueryLanguage::from_name(language)?;
        Ok(Query::parse(lang, text)?)
    }

    /// Whether the instance satisfies the WHERE clause (true without one). `classes` answers the
    /// ISA tests.
    pub fn matches(&self, instance: &Instance, classes: &dyn ClassHierarchy) -> bool {
        match &self.condition {
            None => true,
            Some(c) => eval::eval(self, c, instance, classes) == Some(true),
        }
    }

    /// The names of the selected properties of the FROM class (last segments), `None` for `*`.
    pub fn selected_properties(&self) -> Option<Vec<String>> {
        self.select.as_ref().map(|list| list.iter().filter_map(|p| p.segments.last().cloned()).filter(|s| s != "*").collect())
    }

    /// The instance with only the selected properties (all with `SELECT *`).
    pub fn project(&self, mut instance: Instance) -> Instance {
        if let Some(list) = self.selected_properties() {
            let star = self.select.as_ref().is_some_and(|s| s.iter().any(|p| p.segments.last().is_some_and(|l| l == "*")));
            if !star {
                instance.retain_properties(Some(&list));
            }
        }
        instance
    }
}

#[cfg(test)]
mod tests;
