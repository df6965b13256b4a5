//! The MOF compiler (DSP0004 CIM Infrastructure, the 2.x grammar that DMTF schemas use) and the class
//! repository the server loads at start.
//!
//! Two stages: [`parser`] turns text into a syntax tree with positions ([`ast`]), knowing nothing of
//! the object model; the compiler then types it against the qualifier declarations and classes of
//! each namespace, checks it, resolves inheritance and stores the result in a [`Repository`].
//!
//! ```no_run
//! use wbem::mof::Repository;
//! let repo = Repository::load("mof")?; // mof/namespaces.mof and everything it includes
//! let cs = repo.get_class("root/virt", "Xen_ComputerSystem").unwrap();
//! assert!(repo.is_subclass_of("root/virt", &cs.name, "CIM_ComputerSystem"));
//! # Ok::<(), wbem::mof::MofError>(())
//! ```
//!
//! Every error carries `file:line:col` and says what was expected
//! (`mof/xen/Xen_VSSD.mof:12:5: expected ';' after property declaration, found '}'`).

pub mod ast;
mod classes;
mod compiler;
pub mod diag;
mod instances;
pub mod lexer;
mod loader;
pub mod parser;
mod qualifiers;
mod repository;
mod resolve;
mod values;

#[cfg(test)]
mod tests;

pub use diag::{Diagnostic, Location, MofError, Pos, SyntaxError};
pub use parser::parse;
pub use repository::{ClassEntry, Repository};
