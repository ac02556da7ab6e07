//! The connector registry: which `kind = "..."` values a configuration may use.
//!
//! Built from [`postured_connectors::builtin_kinds`] (the one registry entry per kind); a test
//! or an embedding program may [`Registry::register`] a kind of its own, which then goes
//! through exactly the same configuration, catalog, polling and scoring paths as a built-in one.
//!
//! Must not: know any connector kind by name.

use std::fmt;
use std::sync::Arc;

use postured_connectors::ConnectorKind;

/// The registered connector kinds, in registration order.
#[derive(Clone)]
pub struct Registry {
    kinds: Vec<Arc<dyn ConnectorKind>>,
}

impl Registry {
    /// The built-in kinds.
    pub fn builtin() -> Self {
        Self {
            kinds: postured_connectors::builtin_kinds(),
        }
    }

    /// Add a kind. Errors: a kind of that name is already registered.
    pub fn register(&mut self, kind: Arc<dyn ConnectorKind>) -> Result<(), String> {
        if self.get(kind.name()).is_some() {
            return Err(format!(
                "connector kind {:?} is already registered",
                kind.name()
            ));
        }
        self.kinds.push(kind);
        Ok(())
    }

    /// The kind registered under `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn ConnectorKind>> {
        self.kinds.iter().find(|k| k.name() == name)
    }

    /// Every registered kind's name, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.name()).collect()
    }

    /// Every registered kind's catalog: `(kind, TOML text)`.
    pub fn catalogs(&self) -> Vec<(&'static str, &'static str)> {
        self.kinds.iter().map(|k| (k.name(), k.catalog())).collect()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
