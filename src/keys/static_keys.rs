//! [`StaticKeys`]: keys fixed at start-up, selected by `kid`.

use std::sync::Arc;

use jsonwebtoken::Algorithm;

use super::{KeyLookup, KeySource, VerificationKey};

/// A fixed set of keys. A token with a `kid` selects the key of that id; a token without one
/// selects the only key of its algorithm (several candidates → no key: name them with `kid`).
///
/// ```
/// use jsonwebtoken::Algorithm;
/// use tower_jwt_guard::keys::{KeyLookup, KeySource, StaticKeys};
/// use tower_jwt_guard::VerificationKey;
///
/// let keys = StaticKeys::new(vec![VerificationKey::hmac(Algorithm::HS256, [1u8; 32])?]);
/// assert!(matches!(keys.lookup(None, Algorithm::HS256), KeyLookup::Found(_)));
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticKeys {
    keys: Vec<Arc<VerificationKey>>,
}

impl StaticKeys {
    /// A source holding `keys`.
    pub fn new(keys: impl IntoIterator<Item = VerificationKey>) -> Self {
        StaticKeys { keys: keys.into_iter().map(Arc::new).collect() }
    }

    /// Adds a key.
    pub fn push(&mut self, key: VerificationKey) {
        self.keys.push(Arc::new(key));
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A `kid` that names more than one key: lookups by `kid` would silently pick the first.
    pub(crate) fn duplicate_kid(&self) -> Option<&str> {
        let kids: Vec<&str> = self.keys.iter().filter_map(|key| key.kid()).collect();
        kids.iter().enumerate().find(|(i, kid)| kids[..*i].contains(kid)).map(|(_, kid)| *kid)
    }
}

impl KeySource for StaticKeys {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        let found = match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid() == Some(kid)),
            None => {
                let mut candidates = self.keys.iter().filter(|k| k.algorithm() == alg);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        };
        found.map_or(KeyLookup::Unknown, |key| KeyLookup::Found(Arc::clone(key)))
    }

    fn algorithms(&self) -> Option<Vec<Algorithm>> {
        Some(self.keys.iter().map(|k| k.algorithm()).collect())
    }
}
