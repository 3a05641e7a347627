//! [`JwksKeys`]: keys fetched from a JWKS URL (or found by OIDC discovery), rotated without a
//! restart, and survived through outages (feature `jwks`). The parts: `builder` (settings and
//! their defaults), `state` (the keys held and the lookup decisions), `refresher` (single-flight
//! fetches, the background refresh, rate limit and backoff), `fetch` (HTTP with a timeout and a
//! size cap), `key_set` (which JWKs are usable), `oidc` (discovery), `error`.

mod builder;
mod error;
mod fetch;
mod key_set;
mod oidc;
mod refresher;
mod state;

pub use builder::{
    JwksKeysBuilder, DEFAULT_MAX_REFRESH_INTERVAL, DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_MAX_RETRY_INTERVAL,
    DEFAULT_MAX_STALENESS, DEFAULT_MAX_WAITING_REQUESTS, DEFAULT_MIN_REFRESH_INTERVAL,
    DEFAULT_REFRESH_INTERVAL, DEFAULT_RETRY_INTERVAL, DEFAULT_TIMEOUT, DEFAULT_UNKNOWN_KID_INTERVAL,
};
pub use error::JwksError;
pub(crate) use state::JwkLookup;
pub use state::{JwksKeys, JwksStatus};
