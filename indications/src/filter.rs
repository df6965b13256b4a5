//! Indication filters: the query checked when the filter is created, then evaluated on each
//! indication (ISA, embedded-property comparisons, AND/OR/NOT, LIKE) with its projection.

use wbem::cim::{names_equal, CimError, CimStatus, Instance};
use wbem::mof::Repository;
use wbem::ops::canonical_namespace;
use wbem::query::Query;

/// Where indications are produced: every indication class the daemon raises lives here.
pub const SOURCE_NAMESPACE: &str = "root/virt";

/// A filter ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    pub name: String,
    pub query: Query,
    /// Canonical names; empty means any namespace.
    pub source_namespaces: Vec<String>,
}

fn invalid(column: usize, message: String) -> CimError {
    CimError::new(CimStatus::InvalidQuery, format!("column {column}: {message}"))
}

/// The 1-based column of the class name after FROM, for errors about it.
fn from_column(text: &str, class: &str) -> usize {
    let lower = text.to_ascii_lowercase();
    let class = class.to_ascii_lowercase();
    let start = lower.find("from").map(|i| i + 4).unwrap_or(0);
    lower[start..].find(&class).map(|i| text[..start + i].chars().count() + 1).unwrap_or(1)
}

impl CompiledFilter {
    /// Parses and checks a filter's query: it must parse, and its FROM class must be an
    /// indication class of every source namespace (of root/virt when none is named).
    pub fn compile(
        repo: &Repository,
        name: &str,
        language: &str,
        text: &str,
        source_namespaces: &[String],
    ) -> Result<CompiledFilter, CimError> {
        let query = Query::parse_named(language, text)?;
        let namespaces: Vec<String> = source_namespaces.iter().map(|n| canonical_namespace(n)).collect();
        let check: Vec<String> = if namespaces.is_empty() { vec![SOURCE_NAMESPACE.to_string()] } else { namespaces.clone() };
        for ns in &check {
            if !repo.has_namespace(ns) {
                return Err(CimError::invalid_namespace(format!("source namespace {ns} does not exist")));
            }
            match repo.get_class(ns, &query.from_class) {
                None => {
                    return Err(invalid(from_column(text, &query.from_class), format!("{} is not a class of {ns}", query.from_class)));
                }
                Some(c) if !c.is_indication() => {
                    return Err(invalid(
                        from_column(text, &query.from_class),
                        format!("{} is not an indication class (filters select indications, such as CIM_InstModification)", c.name),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(CompiledFilter { name: name.to_string(), query, source_namespaces: namespaces })
    }

    /// Whether an indication raised in `namespace` passes the filter.
    pub fn matches(&self, repo: &Repository, namespace: &str, indication: &Instance) -> bool {
        if !self.source_namespaces.is_empty() && !self.source_namespaces.iter().any(|n| names_equal(n, namespace)) {
            return false;
        }
        if !repo.is_a(namespace, &indication.class_name, &self.query.from_class) {
            return false;
        }
        let hierarchy = |c: &str, a: &str| repo.is_a(namespace, c, a);
        self.query.matches(indication, &hierarchy)
    }

    /// The indication as this filter delivers it: the selected properties only.
    pub fn project(&self, indication: Instance) -> Instance {
        self.query.project(indication)
    }
}
