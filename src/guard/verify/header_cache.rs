//! JOSE headers already parsed, by their encoded form.
//!
//! An issuer writes the same header (`alg`, `kid`, `typ`) on every token it signs, so the
//! encoded header repeats across all of a service's tokens. Remembering the parsed form saves
//! the base64 and JSON work for every new token of a known issuer. Only headers of tokens whose
//! signature verified are remembered, and the cache is small and bounded: a flood of made-up
//! headers cannot grow it.

use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::primitives::algorithm::Algorithm;

/// How many distinct headers are remembered (one per key and token type, in practice).
const CAPACITY: usize = 64;
/// Longer encoded headers are parsed every time (they are rare: `x5c` chains and the like).
const MAX_ENCODED_LEN: usize = 256;

/// The header members the verifier reads, parsed and checked against the allow-list.
#[derive(Debug)]
pub(crate) struct ParsedHeader {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<Box<str>>,
    pub(crate) typ: Option<Box<str>>,
}

/// Parsed headers of tokens that verified, keyed by the encoded header.
pub(crate) struct HeaderCache {
    entries: Cache<Box<str>, Arc<ParsedHeader>>,
}

impl HeaderCache {
    pub(crate) fn new() -> Self {
        HeaderCache { entries: Cache::new(CAPACITY) }
    }

    pub(crate) fn get(&self, encoded: &str) -> Option<Arc<ParsedHeader>> {
        self.entries.get(encoded)
    }

    /// Remembers the header of a token whose signature verified.
    pub(crate) fn insert(&self, encoded: &str, header: &Arc<ParsedHeader>) {
        if encoded.len() <= MAX_ENCODED_LEN {
            self.entries.insert(encoded.into(), Arc::clone(header));
        }
    }
}

impl std::fmt::Debug for HeaderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderCache").field("len", &self.entries.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_short_headers_only() {
        let cache = HeaderCache::new();
        let header = Arc::new(ParsedHeader { alg: Algorithm::HS256, kid: None, typ: None });
        cache.insert("eyJhbGciOiJIUzI1NiJ9", &header);
        assert_eq!(cache.get("eyJhbGciOiJIUzI1NiJ9").map(|h| h.alg), Some(Algorithm::HS256));
        let long = "a".repeat(MAX_ENCODED_LEN + 1);
        cache.insert(&long, &header);
        assert!(cache.get(&long).is_none());
    }
}
