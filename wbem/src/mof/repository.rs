//! The class repository: namespaces holding qualifier declarations, classes and the static instances
//! declared in MOF, built by the compiler and read by the operation dispatcher.
//!
//! Each class is stored twice: resolved (inherited properties, methods and ToSubclass qualifiers
//! merged in, `class_origin` and `propagated` set) so that GetClass with LocalOnly=false is a lookup,
//! and local (only what its own declaration says) for LocalOnly=true.

use std::collections::HashMap;
use std::path::Path;

use crate::cim::{fold_name, names_equal, Class, Instance, QualifierDecl};

use super::compiler::{compile, compile_embedded_instances};
use super::diag::{Diagnostic, Location, MofError};
use super::loader::{load_file, load_text};

/// One class with its two forms.
#[derive(Debug, Clone)]
pub struct ClassEntry {
    /// With everything inherited: what GetClass returns by default.
    pub resolved: Class,
    /// Only the elements and qualifiers the class's own declaration gives (LocalOnly=true).
    pub local: Class,
    /// Where the class is declared.
    pub location: Location,
    /// Direct subclasses, as indexes into the namespace's classes, in declaration order.
    children: Vec<usize>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Namespace {
    pub name: String,
    qualifiers: Vec<(QualifierDecl, Location)>,
    qualifier_index: HashMap<String, usize>,
    classes: Vec<ClassEntry>,
    class_index: HashMap<String, usize>,
    instances: Vec<(Instance, Location)>,
}

impl Namespace {
    pub fn qualifier(&self, name: &str) -> Option<&(QualifierDecl, Location)> {
        self.qualifier_index.get(&fold_name(name)).map(|&i| &self.qualifiers[i])
    }

    pub fn add_qualifier(&mut self, decl: QualifierDecl, location: Location) {
        self.qualifier_index.insert(fold_name(&decl.name), self.qualifiers.len());
        self.qualifiers.push((decl, location));
    }

    pub fn class(&self, name: &str) -> Option<&ClassEntry> {
        self.class_index.get(&fold_name(name)).map(|&i| &self.classes[i])
    }

    /// Adds a class whose superclass, if any, is already in this namespace.
    pub fn add_class(&mut self, resolved: Class, local: Class, location: Location) {
        let index = self.classes.len();
        if let Some(parent) = resolved.superclass.as_deref().and_then(|s| self.class_index.get(&fold_name(s))) {
            self.classes[*parent].children.push(index);
        }
        self.class_index.insert(fold_name(&resolved.name), index);
        self.classes.push(ClassEntry { resolved, local, location, children: Vec::new() });
    }

    pub fn instances(&self) -> &[(Instance, Location)] {
        &self.instances
    }

    pub fn add_instance(&mut self, instance: Instance, location: Location) {
        self.instances.push((instance, location));
    }
}

/// Namespaces of classes, qualifier declarations and static instances compiled from MOF.
#[derive(Debug, Clone, Default)]
pub struct Repository {
    namespaces: Vec<Namespace>,
    warnings: Vec<Diagnostic>,
}

fn ns_key(ns: &str) -> String {
    fold_name(ns.trim_matches('/'))
}

impl Repository {
    /// The file of a schema directory that includes the rest.
    pub const ENTRY_FILE: &'static str = "namespaces.mof";
    /// Where declarations go before any `#pragma namespace`.
    pub const DEFAULT_NAMESPACE: &'static str = "root/virt";

    /// An empty repository.
    pub fn new() -> Repository {
        Repository::default()
    }

    /// Compiles the schema directory `dir` (its [`Repository::ENTRY_FILE`] and what that includes).
    /// Any error in any file fails the load; warnings are kept in [`Repository::warnings`] and logged.
    pub fn load(dir: impl AsRef<Path>) -> Result<Repository, MofError> {
        Repository::load_file(dir.as_ref().join(Repository::ENTRY_FILE))
    }

    /// Compiles one MOF file and what it includes.
    pub fn load_file(path: impl AsRef<Path>) -> Result<Repository, MofError> {
        let mut repo = Repository::new();
        repo.add_mof_file(path)?;
        Ok(repo)
    }

    /// Compiles a MOF text (its includes are relative to the directory part of `name`).
    pub fn from_mof(name: &str, text: &str) -> Result<Repository, MofError> {
        let mut repo = Repository::new();
        repo.add_mof(name, text)?;
        Ok(repo)
    }

    /// Compiles a MOF file on top of what the repository holds; on error the repository is unchanged.
    pub fn add_mof_file(&mut self, path: impl AsRef<Path>) -> Result<(), MofError> {
        let loaded = load_file(path.as_ref(), Repository::DEFAULT_NAMESPACE)?;
        *self = compile(self.clone(), loaded)?;
        Ok(())
    }

    /// Compiles a MOF text on top of what the repository holds (test classes over the real schema);
    /// on error the repository is unchanged.
    pub fn add_mof(&mut self, name: &str, text: &str) -> Result<(), MofError> {
        let loaded = load_text(name, text, Repository::DEFAULT_NAMESPACE)?;
        *self = compile(self.clone(), loaded)?;
        Ok(())
    }

    /// Warnings of every compilation so far (unknown pragmas, overrides without `Override`...).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    pub(super) fn push_warnings(&mut self, warnings: impl IntoIterator<Item = Diagnostic>) {
        for w in warnings {
            tracing::warn!(target: "wbem::mof", "{w}");
            self.warnings.push(w);
        }
    }

    pub(super) fn namespace(&self, ns: &str) -> Option<&Namespace> {
        let key = ns_key(ns);
        self.namespaces.iter().find(|n| ns_key(&n.name) == key)
    }

    /// The namespace, created on first use.
    pub(super) fn namespace_mut(&mut self, ns: &str) -> &mut Namespace {
        let key = ns_key(ns);
        match self.namespaces.iter().position(|n| ns_key(&n.name) == key) {
            Some(i) => &mut self.namespaces[i],
            None => {
                self.namespaces.push(Namespace { name: ns.trim_matches('/').to_string(), ..Namespace::default() });
                self.namespaces.last_mut().expect("just pushed")
            }
        }
    }

    /// Namespace names in the order they were first declared into.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces.iter().map(|n| n.name.as_str())
    }

    /// Case-insensitive; leading and trailing slashes are ignored.
    pub fn has_namespace(&self, ns: &str) -> bool {
        self.namespace(ns).is_some()
    }

    /// The resolved class (inherited elements included), by case-insensitive name.
    pub fn get_class(&self, ns: &str, name: &str) -> Option<&Class> {
        self.class_entry(ns, name).map(|e| &e.resolved)
    }

    /// The class as its own declaration gives it (for LocalOnly=true).
    pub fn get_local_class(&self, ns: &str, name: &str) -> Option<&Class> {
        self.class_entry(ns, name).map(|e| &e.local)
    }

    pub fn class_entry(&self, ns: &str, name: &str) -> Option<&ClassEntry> {
        self.namespace(ns)?.class(name)
    }

    /// Class names of a namespace in declaration order (superclasses before their subclasses).
    pub fn class_names(&self, ns: &str) -> Vec<&str> {
        self.classes(ns).map(|c| c.name.as_str()).collect()
    }

    /// Resolved classes of a namespace in declaration order.
    pub fn classes(&self, ns: &str) -> impl Iterator<Item = &Class> {
        self.namespace(ns).into_iter().flat_map(|n| n.classes.iter().map(|e| &e.resolved))
    }

    /// Subclasses of `name` (direct ones, or all of them when `deep`), parents before children;
    /// with `name` = `None`, the classes without superclass (or every class when `deep`), as
    /// EnumerateClassNames wants them. Empty when the namespace or class is unknown.
    pub fn subclasses(&self, ns: &str, name: Option<&str>, deep: bool) -> Vec<&str> {
        let Some(n) = self.namespace(ns) else { return Vec::new() };
        let starts: Vec<usize> = match name {
            Some(name) => match n.class_index.get(&fold_name(name)) {
                Some(&i) => n.classes[i].children.clone(),
                None => return Vec::new(),
            },
            None => (0..n.classes.len()).filter(|&i| n.classes[i].resolved.superclass.is_none()).collect(),
        };
        let mut out = Vec::new();
        let mut stack: Vec<usize> = starts.into_iter().rev().collect();
        while let Some(i) = stack.pop() {
            out.push(n.classes[i].resolved.name.as_str());
            if deep {
                stack.extend(n.classes[i].children.iter().rev());
            }
        }
        out
    }

    /// The superclass chain of `name`, from its direct superclass up to the root.
    pub fn superclasses(&self, ns: &str, name: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut current = self.get_class(ns, name);
        while let Some(sup) = current.and_then(|c| c.superclass.as_deref()).and_then(|s| self.get_class(ns, s)) {
            out.push(sup.name.as_str());
            current = Some(sup);
        }
        out
    }

    /// Whether `sub` derives from `sup`, directly or not; a class is not its own subclass.
    pub fn is_subclass_of(&self, ns: &str, sub: &str, sup: &str) -> bool {
        self.superclasses(ns, sub).iter().any(|s| names_equal(s, sup))
    }

    /// Whether `class` is `ancestor` or one of its subclasses (the ISA of queries and of
    /// deep-inheritance enumeration).
    pub fn is_a(&self, ns: &str, class: &str, ancestor: &str) -> bool {
        match self.get_class(ns, class) {
            Some(c) => names_equal(&c.name, ancestor) || self.is_subclass_of(ns, class, ancestor),
            None => false,
        }
    }

    /// Qualifier declarations of a namespace, in declaration order.
    pub fn qualifier_decls(&self, ns: &str) -> impl Iterator<Item = &QualifierDecl> {
        self.namespace(ns).into_iter().flat_map(|n| n.qualifiers.iter().map(|(q, _)| q))
    }

    pub fn qualifier_decl(&self, ns: &str, name: &str) -> Option<&QualifierDecl> {
        self.namespace(ns)?.qualifier(name).map(|(q, _)| q)
    }

    /// Instances declared in MOF (`instance of ...`) into a namespace, in declaration order, with
    /// their paths and every property of their class (defaults where the MOF gives no value).
    pub fn instances(&self, ns: &str) -> impl Iterator<Item = &Instance> {
        self.namespace(ns).into_iter().flat_map(|n| n.instances.iter().map(|(i, _)| i))
    }

    /// Static instances of `class` or, when `deep`, of its subclasses too.
    pub fn instances_of<'a>(&'a self, ns: &'a str, class: &'a str, deep: bool) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances(ns).filter(move |i| if deep { self.is_a(ns, &i.class_name, class) } else { names_equal(&i.class_name, class) })
    }

    /// Compiles instance declarations sent as MOF text (an embedded instance parameter such as
    /// `instance of Xen_VirtualSystemSettingData { ElementName = "vm1"; };`) against the classes of
    /// `ns`. Only the properties the text gives are set; keys may be missing, in which case the
    /// instance has no path. The repository is not changed.
    pub fn parse_instances(&self, ns: &str, text: &str) -> Result<Vec<Instance>, MofError> {
        compile_embedded_instances(self, ns, text)
    }
}
