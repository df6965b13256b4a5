//! Which provider serves which class in which namespace.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::Provider;
use crate::cim::fold_name;

type Key = (String, String);

fn key(namespace: &str, class: &str) -> Key {
    (crate::ops::canonical_namespace(namespace), fold_name(class))
}

/// Providers by (namespace, class). Registration can happen while the server runs (a provider
/// module that starts late); lookups take a read lock only.
#[derive(Default)]
pub struct ProviderRegistry {
    by_class: RwLock<HashMap<Key, Arc<dyn Provider>>>,
}

impl std::fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let map = self.by_class.read();
        let mut keys: Vec<String> = map.keys().map(|(n, c)| format!("{n}:{c}")).collect();
        keys.sort();
        f.debug_struct("ProviderRegistry").field("classes", &keys).finish()
    }
}

impl ProviderRegistry {
    pub fn new() -> ProviderRegistry {
        ProviderRegistry::default()
    }

    /// Registers `provider` for every class it names. A class can have one provider only: a
    /// second registration for the same class is refused with the class named.
    pub fn register(&self, provider: Arc<dyn Provider>) -> Result<(), String> {
        let classes = provider.classes();
        let mut map = self.by_class.write();
        for c in &classes {
            if map.contains_key(&key(&c.namespace, &c.class_name)) {
                return Err(format!("class {} in namespace {} already has a provider", c.class_name, c.namespace));
            }
        }
        for c in classes {
            map.insert(key(&c.namespace, &c.class_name), provider.clone());
        }
        Ok(())
    }

    /// The provider of exactly this class.
    pub fn provider(&self, namespace: &str, class: &str) -> Option<Arc<dyn Provider>> {
        self.by_class.read().get(&key(namespace, class)).cloned()
    }

    /// Whether some provider serves this class.
    pub fn has_provider(&self, namespace: &str, class: &str) -> bool {
        self.by_class.read().contains_key(&key(namespace, class))
    }
}
