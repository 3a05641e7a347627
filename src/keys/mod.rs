//! Where verification keys come from.
//!
//! A [`KeySource`] answers "which key verifies a token with this `kid` and `alg`?". The
//! [`StaticKeys`] source holds keys given at start-up; the JWKS source (feature `jwks`)
//! fetches and rotates them. Keys are shared as `Arc<VerificationKey>`; the verified-token
//! cache remembers which key verified an entry and forgets the entry once the key is gone.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use jsonwebtoken::Algorithm;

#[cfg(feature = "jwks")]
mod jwks;
mod static_keys;
mod verification_key;

#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use jwks::{
    JwksError, JwksKeys, JwksKeysBuilder, JwksStatus, DEFAULT_MAX_REFRESH_INTERVAL,
    DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_MAX_RETRY_INTERVAL, DEFAULT_MAX_STALENESS,
    DEFAULT_MIN_REFRESH_INTERVAL, DEFAULT_REFRESH_INTERVAL, DEFAULT_RETRY_INTERVAL, DEFAULT_TIMEOUT,
    DEFAULT_UNKNOWN_KID_INTERVAL,
};
pub use static_keys::StaticKeys;
pub use verification_key::VerificationKey;

/// The answer of a [`KeySource`].
#[non_exhaustive]
pub enum KeyLookup {
    /// This key must verify the token.
    Found(Arc<VerificationKey>),
    /// No key matches: the token is rejected as `INVALID_TOKEN`.
    Unknown,
    /// The source cannot answer now (for example a JWKS endpoint down at start-up):
    /// the request is rejected with 503 `AUTH_UNAVAILABLE`.
    Unavailable,
    /// The source must fetch first (for example an unknown `kid` triggering a JWKS refresh).
    Pending(BoxFuture<'static, KeyLookup>),
}

impl fmt::Debug for KeyLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyLookup::Found(key) => f.debug_tuple("Found").field(key).finish(),
            KeyLookup::Unknown => f.write_str("Unknown"),
            KeyLookup::Unavailable => f.write_str("Unavailable"),
            KeyLookup::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// A source of verification keys.
///
/// `lookup` runs on the hot path: it must answer from memory and only return
/// [`KeyLookup::Pending`] when it truly has to fetch.
///
/// ```
/// use std::sync::Arc;
/// use jsonwebtoken::Algorithm;
/// use tower_jwt_guard::keys::{KeyLookup, KeySource, StaticKeys};
/// use tower_jwt_guard::VerificationKey;
///
/// let key = VerificationKey::hmac(Algorithm::HS256, [1u8; 32])?.with_kid("a");
/// let keys = StaticKeys::new(vec![key]);
/// assert!(matches!(keys.lookup(Some("a"), Algorithm::HS256), KeyLookup::Found(_)));
/// assert!(matches!(keys.lookup(Some("b"), Algorithm::HS256), KeyLookup::Unknown));
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
pub trait KeySource: Send + Sync + 'static {
    /// The key for a token whose header names `kid` (if any) and `alg`.
    ///
    /// The returned key may be bound to another algorithm than `alg`: the caller refuses it.
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup;

    /// The algorithms of the keys this source holds now or may hold later; `None` when they
    /// cannot be known in advance (JWKS). Used to check the allow-list at build time.
    fn algorithms(&self) -> Option<Vec<Algorithm>> {
        None
    }

    /// The issuer whose keys this source holds, when it knows it (a JWKS found by OIDC discovery).
    /// A layer built with it accepts only tokens whose `iss` is this issuer, unless
    /// [`JwtAuthBuilder::issuer`](crate::JwtAuthBuilder::issuer) names the accepted issuers.
    ///
    /// ```
    /// use tower_jwt_guard::keys::{KeySource, StaticKeys};
    ///
    /// assert_eq!(StaticKeys::new(Vec::new()).issuer(), None);
    /// ```
    fn issuer(&self) -> Option<&str> {
        None
    }
}

impl<T: KeySource + ?Sized> KeySource for Arc<T> {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        (**self).lookup(kid, alg)
    }

    fn algorithms(&self) -> Option<Vec<Algorithm>> {
        (**self).algorithms()
    }

    fn issuer(&self) -> Option<&str> {
        (**self).issuer()
    }
}

/// Static keys first, then another source (for example JWKS).
pub(crate) struct Chain {
    first: StaticKeys,
    then: Arc<dyn KeySource>,
}

impl Chain {
    pub(crate) fn new(first: StaticKeys, then: Arc<dyn KeySource>) -> Self {
        Chain { first, then }
    }
}

impl KeySource for Chain {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        match self.first.lookup(kid, alg) {
            KeyLookup::Unknown => self.then.lookup(kid, alg),
            found => found,
        }
    }

    fn algorithms(&self) -> Option<Vec<Algorithm>> {
        let mut all = self.first.algorithms()?;
        all.extend(self.then.algorithms()?);
        Some(all)
    }

    fn issuer(&self) -> Option<&str> {
        self.then.issuer()
    }
}
