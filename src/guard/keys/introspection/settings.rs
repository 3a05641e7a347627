//! The settings of an introspector and their defaults, shared by its parts (builder, client,
//! discovery, flight): a leaf of the introspection module.

use std::time::Duration;

use reqwest::Url;

/// Longest time a positive answer is served from the cache (it never outlives the token's `exp`).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long an inactive answer is remembered, so that a replayed dead token costs no call.
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(5);
/// Answers remembered per layer (positive and negative together).
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Time limit of one introspection call (connect, headers and body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest introspection answer read.
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 16 * 1024;
/// Most introspection calls (distinct tokens) at once; beyond it, requests with unknown tokens
/// are refused with 503 at once rather than queued.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) cache_ttl: Duration,
    pub(crate) negative_cache_ttl: Duration,
    pub(crate) cache_capacity: usize,
    pub(crate) timeout: Duration,
    pub(crate) max_response_size: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) all_tokens: bool,
    /// RFC 9701: answers must be signed, by these keys of this issuer.
    pub(crate) signed: Option<super::signed::SignedResponses>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cache_ttl: DEFAULT_CACHE_TTL,
            negative_cache_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            timeout: DEFAULT_TIMEOUT,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            all_tokens: false,
            signed: None,
        }
    }
}

/// The URL without user info, query or fragment: any of them may hold a secret.
pub(super) fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}
