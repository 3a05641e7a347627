//! [`StaticKeys`]: keys fixed at start-up, selected by `kid`.

use std::collections::HashMap;
use std::sync::Arc;

use crate::primitives::algorithm::Algorithm;

use super::{KeyLookup, KeySource, VerificationKey};

/// A fixed set of keys. A token with a `kid` selects the key of that id; a token without one
/// selects the keys of its algorithm, tried in the order given (at most
/// [`MAX_KID_LESS_CANDIDATES`](super::MAX_KID_LESS_CANDIDATES): with more, name them with `kid`).
///
/// ```
/// use tower_jwt_guard::Algorithm;
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
    /// Each `kid`'s first key (its index in `keys`): a set of a thousand keys selects in
    /// constant time, not by a scan.
    by_kid: HashMap<Box<str>, usize>,
}

impl StaticKeys {
    /// A source holding `keys`.
    pub fn new(keys: impl IntoIterator<Item = VerificationKey>) -> Self {
        let mut set = StaticKeys::default();
        for key in keys {
            set.push(key);
        }
        set
    }

    /// Adds a key.
    pub fn push(&mut self, key: VerificationKey) {
        if let Some(kid) = key.kid() {
            self.by_kid.entry(kid.into()).or_insert(self.keys.len());
        }
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
        match kid {
            Some(kid) => self
                .by_kid
                .get(kid)
                .and_then(|&index| self.keys.get(index))
                .map_or(KeyLookup::Unknown, |key| KeyLookup::Found(Arc::clone(key))),
            None => super::kid_less(self.keys.iter(), alg),
        }
    }

    fn algorithms(&self) -> Option<Vec<Algorithm>> {
        Some(self.keys.iter().map(|k| k.algorithm()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::keys::MAX_KID_LESS_CANDIDATES;

    fn hmac(byte: u8) -> VerificationKey {
        VerificationKey::hmac(Algorithm::HS256, [byte; 32]).unwrap()
    }

    fn candidates(lookup: KeyLookup) -> Vec<Arc<VerificationKey>> {
        match lookup {
            KeyLookup::Candidates(keys) => keys,
            other => panic!("expected candidates, got {other:?}"),
        }
    }

    #[test]
    fn a_token_without_kid_gets_every_key_of_its_algorithm_in_order() {
        let mut keys = StaticKeys::new(vec![hmac(1), hmac(2)]);
        keys.push(VerificationKey::hmac(Algorithm::HS384, [3u8; 48]).unwrap());
        let found = candidates(keys.lookup(None, Algorithm::HS256));
        assert_eq!(found.len(), 2);
        assert!(Arc::ptr_eq(&found[0], &keys.keys[0]));
        assert!(Arc::ptr_eq(&found[1], &keys.keys[1]));
        // The only key of its algorithm is found alone; no key of the algorithm is no key.
        assert!(
            matches!(keys.lookup(None, Algorithm::HS384), KeyLookup::Found(key) if Arc::ptr_eq(&key, &keys.keys[2]))
        );
        assert!(matches!(keys.lookup(None, Algorithm::HS512), KeyLookup::Unknown));
    }

    #[test]
    fn a_token_with_kid_gets_exactly_that_key() {
        let keys = StaticKeys::new(vec![hmac(1).with_kid("a"), hmac(2).with_kid("b")]);
        assert!(
            matches!(keys.lookup(Some("b"), Algorithm::HS256), KeyLookup::Found(key) if key.kid() == Some("b"))
        );
        assert!(matches!(keys.lookup(Some("c"), Algorithm::HS256), KeyLookup::Unknown));
        assert_eq!(candidates(keys.lookup(None, Algorithm::HS256)).len(), 2);
    }

    #[test]
    fn candidates_are_collected_only_up_to_one_past_the_bound() {
        let keys = StaticKeys::new((1..=10).map(hmac));
        assert_eq!(candidates(keys.lookup(None, Algorithm::HS256)).len(), MAX_KID_LESS_CANDIDATES + 1);
    }

    #[test]
    fn every_kid_of_a_large_set_selects_its_key_and_a_repeated_kid_its_first() {
        let mut keys = StaticKeys::new((0..1_000).map(|i| hmac(i as u8).with_kid(format!("k{i}"))));
        for i in 0..1_000 {
            let kid = format!("k{i}");
            let found = keys.lookup(Some(&kid), Algorithm::HS256);
            assert!(matches!(found, KeyLookup::Found(key) if key.kid() == Some(kid.as_str())), "{kid}");
        }
        assert!(matches!(keys.lookup(Some("k1000"), Algorithm::HS256), KeyLookup::Unknown));
        keys.push(hmac(1).with_kid("same"));
        keys.push(hmac(2).with_kid("same"));
        assert_eq!(keys.duplicate_kid(), Some("same"));
        let KeyLookup::Found(found) = keys.lookup(Some("same"), Algorithm::HS256) else {
            panic!("not found")
        };
        assert!(Arc::ptr_eq(&found, &keys.keys[1_000]), "the first key of a repeated kid");
    }
}
