//! Reads MOF files, follows `#pragma include` and tracks `#pragma namespace`, producing the flat
//! list of declarations to compile, each tagged with its file and namespace.
//!
//! Choices where DSP0004 is silent:
//! - an included path is relative to the directory of the including file;
//! - `#pragma namespace` lasts until the next one or the end of the file that contains it, so an
//!   included file that switches namespace does not change the namespace of its includer; an included
//!   file starts in its includer's namespace;
//! - the pragmas `locale`, `instancelocale`, `nonlocal`, `nonlocaltype`, `source` and `sourcetype`
//!   are accepted and ignored; any other unknown pragma is a warning.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cim::is_valid_namespace;

use super::ast::{Pragma, Production};
use super::diag::{Diagnostic, MofError};
use super::parser::parse;

/// One declaration, with where it came from and the namespace it goes to.
#[derive(Debug, Clone)]
pub struct Item {
    pub file: Arc<str>,
    pub namespace: Arc<str>,
    pub production: Production,
}

#[derive(Debug, Default)]
pub struct Loaded {
    pub items: Vec<Item>,
    pub warnings: Vec<Diagnostic>,
}

const IGNORED_PRAGMAS: [&str; 6] = ["locale", "instancelocale", "nonlocal", "nonlocaltype", "source", "sourcetype"];

/// Reads `entry` and everything it includes.
pub fn load_file(entry: &Path, default_namespace: &str) -> Result<Loaded, MofError> {
    let name: Arc<str> = entry.display().to_string().into();
    let text = std::fs::read_to_string(entry)
        .map_err(|e| MofError::single(Diagnostic::new(&name, Default::default(), format!("cannot read MOF file: {}", io_reason(&e)))))?;
    let mut loader = Loader::default();
    loader.walk(&name, entry, &text, default_namespace.into())?;
    Ok(loader.out)
}

/// Compiles a text that is not a file; includes are relative to the directory part of `name`.
pub fn load_text(name: &str, text: &str, default_namespace: &str) -> Result<Loaded, MofError> {
    let mut loader = Loader::default();
    loader.walk(&name.into(), Path::new(name), text, default_namespace.into())?;
    Ok(loader.out)
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[derive(Default)]
struct Loader {
    /// The files being read, outermost first, to refuse include cycles.
    stack: Vec<PathBuf>,
    out: Loaded,
}

impl Loader {
    fn walk(&mut self, name: &Arc<str>, path: &Path, text: &str, mut namespace: Arc<str>) -> Result<(), MofError> {
        let productions = parse(text).map_err(|e| MofError::single(e.in_file(name)))?;
        let identity = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        self.stack.push(identity);
        for production in productions {
            match production {
                Production::Pragma(p) => self.pragma(name, path, &p, &mut namespace)?,
                production => self.out.items.push(Item { file: name.clone(), namespace: namespace.clone(), production }),
            }
        }
        self.stack.pop();
        Ok(())
    }

    fn pragma(&mut self, name: &Arc<str>, path: &Path, p: &Pragma, namespace: &mut Arc<str>) -> Result<(), MofError> {
        let fail = |message: String| MofError::single(Diagnostic::new(name, p.pos, message));
        let pragma = p.name.name.to_ascii_lowercase();
        match pragma.as_str() {
            "include" => {
                if p.value.is_empty() {
                    return Err(fail("#pragma include needs a file name".into()));
                }
                let target = path.parent().unwrap_or(Path::new("")).join(&p.value);
                let identity = target.canonicalize().unwrap_or_else(|_| target.clone());
                if self.stack.contains(&identity) {
                    return Err(fail(format!("include cycle: '{}' is already being read", p.value)));
                }
                let text = std::fs::read_to_string(&target)
                    .map_err(|e| fail(format!("cannot read included file '{}': {}", p.value, io_reason(&e))))?;
                let included: Arc<str> = target.display().to_string().into();
                self.walk(&included, &target, &text, namespace.clone())
            }
            "namespace" => {
                let ns = p.value.trim_matches('/');
                if !is_valid_namespace(ns) {
                    return Err(fail(format!("invalid namespace name '{}'", p.value)));
                }
                *namespace = ns.into();
                Ok(())
            }
            _ if IGNORED_PRAGMAS.contains(&pragma.as_str()) => Ok(()),
            _ => {
                self.out.warnings.push(Diagnostic::new(name, p.pos, format!("unknown pragma '{}' ignored", p.name.name)));
                Ok(())
            }
        }
    }
}
