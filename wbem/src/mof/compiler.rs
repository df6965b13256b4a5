//! Compiles loaded declarations into a repository, in source order: a qualifier must be declared
//! before use and a superclass before its subclasses (as DSP0004 requires of MOF), while classes named
//! by references and EmbeddedInstance qualifiers only need to exist at the end.

use std::collections::HashSet;
use std::sync::Arc;

use crate::cim::{fold_name, Instance, ObjectPath};

use super::ast::{ClassDecl, Ident, InstanceDecl, QualifierDeclaration};
use super::classes::{compile_class, NamedClass};
use super::diag::{Diagnostic, Location, MofError, SyntaxError};
use super::instances::{alias_target, compile_instance, Mode};
use super::loader::{Item, Loaded};
use super::parser::parse_instances;
use super::qualifiers::lower_declaration;
use super::repository::Repository;
use super::values::Aliases;

struct Compiler {
    repo: Repository,
    aliases: Aliases,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    named_classes: Vec<(Arc<str>, Arc<str>, NamedClass)>,
    /// Classes that could not be stored (unknown superclass), by (namespace, class) folded: their
    /// subclasses are skipped silently instead of each reporting a follow-on error.
    broken: HashSet<(String, String)>,
}

/// Compiles `loaded` on top of `repo`; any error fails the whole compilation.
pub fn compile(repo: Repository, loaded: Loaded) -> Result<Repository, MofError> {
    let mut c = Compiler {
        repo,
        aliases: Aliases::new(),
        errors: Vec::new(),
        warnings: loaded.warnings,
        named_classes: Vec::new(),
        broken: HashSet::new(),
    };
    for item in &loaded.items {
        c.item(item);
    }
    c.check_named_classes();
    if !c.errors.is_empty() {
        return Err(MofError { errors: c.errors });
    }
    c.repo.push_warnings(c.warnings);
    Ok(c.repo)
}

impl Compiler {
    fn fail(&mut self, file: &Arc<str>, e: SyntaxError) {
        self.errors.push(e.in_file(file));
    }

    fn item(&mut self, item: &Item) {
        use super::ast::Production;
        match &item.production {
            Production::Qualifier(q) => self.qualifier(item, q),
            Production::Class(c) => self.class(item, c),
            Production::Instance(i) => self.instance(item, i),
            Production::Pragma(_) => unreachable!("the loader consumes pragmas"),
        }
    }

    fn qualifier(&mut self, item: &Item, q: &QualifierDeclaration) {
        let decl = match lower_declaration(q) {
            Ok(d) => d,
            Err(e) => return self.fail(&item.file, e),
        };
        let ns = self.repo.namespace_mut(&item.namespace);
        if let Some((_, first)) = ns.qualifier(&decl.name) {
            let message = format!("qualifier '{}' is already declared in namespace '{}' (at {first})", q.name.name, ns.name);
            return self.fail(&item.file, SyntaxError::new(q.name.pos, message));
        }
        ns.add_qualifier(decl, Location::new(&item.file, q.name.pos));
    }

    fn register_alias(&mut self, file: &Arc<str>, alias: &Ident, target: ObjectPath) {
        if self.aliases.insert(fold_name(&alias.name), target).is_some() {
            self.fail(file, SyntaxError::new(alias.pos, format!("alias '${}' is already defined", alias.name)));
        }
    }

    fn class(&mut self, item: &Item, decl: &ClassDecl) {
        let ns_key = fold_name(&item.namespace);
        if decl.superclass.as_ref().is_some_and(|s| self.broken.contains(&(ns_key.clone(), fold_name(&s.name)))) {
            self.broken.insert((ns_key, fold_name(&decl.name.name)));
            return;
        }
        let ns = self.repo.namespace_mut(&item.namespace);
        if let Some(first) = ns.class(&decl.name.name) {
            let message = format!("class '{}' is already declared in namespace '{}' (at {})", decl.name.name, ns.name, first.location);
            return self.fail(&item.file, SyntaxError::new(decl.name.pos, message));
        }
        let compiled = match compile_class(decl, ns, &self.aliases) {
            Ok(c) => c,
            Err(e) => {
                self.broken.insert((ns_key, fold_name(&decl.name.name)));
                return self.fail(&item.file, e);
            }
        };
        ns.add_class(compiled.resolved, compiled.local, Location::new(&item.file, decl.name.pos));
        for e in compiled.errors {
            self.fail(&item.file, e);
        }
        self.warnings.extend(compiled.warnings.into_iter().map(|w| w.in_file(&item.file)));
        self.named_classes.extend(compiled.named_classes.into_iter().map(|n| (item.file.clone(), item.namespace.clone(), n)));
        if let Some(alias) = &decl.alias {
            self.register_alias(&item.file, alias, ObjectPath::new(Some(&item.namespace), decl.name.name.clone()));
        }
    }

    fn instance(&mut self, item: &Item, decl: &InstanceDecl) {
        let ns = self.repo.namespace_mut(&item.namespace);
        let instance = match compile_instance(decl, ns, &self.aliases, Mode::Static) {
            Ok(i) => i,
            Err(errors) => {
                for e in errors {
                    self.fail(&item.file, e);
                }
                return;
            }
        };
        let duplicate = ns.instances().iter().find(|(other, _)| other.path.is_some() && other.path == instance.path);
        if let Some((_, first)) = duplicate {
            let path = instance.path.as_ref().map(ToString::to_string).unwrap_or_default();
            let message = format!("instance {path} is already declared (at {first})");
            return self.fail(&item.file, SyntaxError::new(decl.pos, message));
        }
        let target = alias_target(&instance, &ns.name);
        ns.add_instance(instance, Location::new(&item.file, decl.pos));
        if let Some(alias) = &decl.alias {
            self.register_alias(&item.file, alias, target);
        }
    }

    fn check_named_classes(&mut self) {
        for (file, ns, named) in std::mem::take(&mut self.named_classes) {
            let known = self.repo.namespace(&ns).is_some_and(|n| n.class(&named.class_name).is_some());
            if !known && !self.broken.contains(&(fold_name(&ns), fold_name(&named.class_name))) {
                let message = format!("class '{}' named by the {} is not declared in namespace '{ns}'", named.class_name, named.context);
                self.fail(&file, SyntaxError::new(named.pos, message));
            }
        }
    }
}

/// See [`Repository::parse_instances`].
pub fn compile_embedded_instances(repo: &Repository, ns: &str, text: &str) -> Result<Vec<Instance>, MofError> {
    let file: Arc<str> = "embedded instance".into();
    let decls = parse_instances(text).map_err(|e| MofError::single(e.in_file(&file)))?;
    let Some(namespace) = repo.namespace(ns) else {
        return Err(MofError::single(Diagnostic::new(&file, Default::default(), format!("unknown namespace '{ns}'"))));
    };
    let mut aliases = Aliases::new();
    let mut out = Vec::with_capacity(decls.len());
    let mut errors = Vec::new();
    for decl in &decls {
        match compile_instance(decl, namespace, &aliases, Mode::Embedded) {
            Ok(instance) => {
                if let Some(alias) = &decl.alias {
                    aliases.insert(fold_name(&alias.name), alias_target(&instance, &namespace.name));
                }
                out.push(instance);
            }
            Err(es) => errors.extend(es.into_iter().map(|e| e.in_file(&file))),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(MofError { errors })
    }
}
