//! Where verification keys come from.
//!
//! A [`KeySource`] answers "which key verifies a token with this `kid` and `alg`?". The
//! [`StaticKeys`] source holds keys given at start-up; the JWKS source (feature `jwks`)
//! fetches and rotates them. Keys are shared as `Arc<VerificationKey>`; the verified-token
//! cache remembers which key verified an entry and forgets the entry once the key is gone.
//!
//! A token without `kid` is verified by the key of its algorithm; when several keys of that
//! algorithm are held (an identity provider rotating kid-less keys publishes the old and the new
//! one side by side), each is tried in turn, at most [`MAX_KID_LESS_CANDIDATES`] of them.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::guard::observe::readiness::Readiness;
use crate::primitives::algorithm::Algorithm;

#[cfg(any(feature = "jwks", feature = "introspection"))]
mod capped_body;
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub mod introspection;
mod issuer;
#[cfg(feature = "jwks")]
mod jwks;
mod static_keys;
#[cfg(feature = "jwks")]
mod tenants;
mod verification_key;

#[cfg(feature = "introspection")]
pub use introspection::{Introspector, IntrospectorBuilder};
pub use issuer::Issuer;
#[cfg(feature = "jwks")]
pub(crate) use jwks::JwkLookup;
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use jwks::{
    JwksError, JwksKeys, JwksKeysBuilder, JwksStatus, DEFAULT_MAX_REFRESH_INTERVAL,
    DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_MAX_RETRY_INTERVAL, DEFAULT_MAX_STALENESS,
    DEFAULT_MAX_WAITING_REQUESTS, DEFAULT_MIN_REFRESH_INTERVAL, DEFAULT_REFRESH_INTERVAL,
    DEFAULT_RETRY_INTERVAL, DEFAULT_TIMEOUT, DEFAULT_UNKNOWN_KID_INTERVAL,
};
pub use static_keys::StaticKeys;
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use tenants::{
    TenantKeys, TenantKeysBuilder, TenantStatus, DEFAULT_MAX_TENANTS, DEFAULT_NEW_TENANTS,
    DEFAULT_NEW_TENANTS_INTERVAL, DEFAULT_TENANT_FAILURE_TTL, MAX_TENANT_LEN,
};
pub(crate) use verification_key::rsa_public_key_der;
pub use verification_key::VerificationKey;

/// The most keys tried for a token without `kid`: one whose algorithm matches more keys than
/// this is refused as `INVALID_TOKEN` without any signature check, so a flood of forged kid-less
/// tokens costs at most this many signature checks each.
///
/// ```
/// assert_eq!(tower_jwt_guard::keys::MAX_KID_LESS_CANDIDATES, 3);
/// ```
pub const MAX_KID_LESS_CANDIDATES: usize = 3;

/// The answer of a [`KeySource`].
///
/// A token without `kid` whose algorithm matches several keys gets them all as
/// [`Candidates`](KeyLookup::Candidates):
///
/// ```
/// use tower_jwt_guard::Algorithm;
/// use tower_jwt_guard::keys::{KeyLookup, KeySource, StaticKeys};
/// use tower_jwt_guard::VerificationKey;
///
/// let old = VerificationKey::hmac(Algorithm::HS256, [1u8; 32])?;
/// let new = VerificationKey::hmac(Algorithm::HS256, [2u8; 32])?;
/// let keys = StaticKeys::new(vec![old, new]);
/// match keys.lookup(None, Algorithm::HS256) {
///     KeyLookup::Candidates(keys) => assert_eq!(keys.len(), 2),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[non_exhaustive]
pub enum KeyLookup {
    /// This key must verify the token.
    Found(Arc<VerificationKey>),
    /// One of these keys must verify the token (a token without `kid` whose algorithm matches
    /// several keys): they are tried in this order, and the token is refused if none verifies it.
    /// More than [`MAX_KID_LESS_CANDIDATES`] keys refuse the token without trying any, so a
    /// source may stop collecting after `MAX_KID_LESS_CANDIDATES + 1`.
    Candidates(Vec<Arc<VerificationKey>>),
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
            KeyLookup::Candidates(keys) => f.debug_tuple("Candidates").field(keys).finish(),
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
/// use tower_jwt_guard::Algorithm;
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
    /// The key for a token whose header names `kid` (if any) and `alg`; for a token without
    /// `kid`, the keys bound to `alg` when there are several ([`KeyLookup::Candidates`]).
    ///
    /// A returned key may be bound to another algorithm than `alg`: the caller refuses the token.
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

    /// Whether this source can answer lookups now (see [`readiness`](crate::readiness)): a
    /// source that holds no usable keys yet (a JWKS endpoint down at start) is not ready. The
    /// default: ready. It must answer from memory, without waiting.
    ///
    /// ```
    /// use tower_jwt_guard::keys::{KeySource, StaticKeys};
    ///
    /// assert!(StaticKeys::new(Vec::new()).readiness().is_ready());
    /// ```
    fn readiness(&self) -> Readiness {
        Readiness::Ready
    }
}

/// The answer for a token without `kid`: the keys among `keys` bound to `alg`. One is
/// [`KeyLookup::Found`] (no allocation), several are [`KeyLookup::Candidates`] (collected up to
/// one past [`MAX_KID_LESS_CANDIDATES`], enough to refuse the token), none is [`KeyLookup::Unknown`].
pub(crate) fn kid_less<'k>(
    keys: impl Iterator<Item = &'k Arc<VerificationKey>>,
    alg: Algorithm,
) -> KeyLookup {
    let mut matching = keys.filter(|key| key.algorithm() == alg);
    let Some(first) = matching.next() else {
        return KeyLookup::Unknown;
    };
    let Some(second) = matching.next() else {
        return KeyLookup::Found(Arc::clone(first));
    };
    let mut candidates = Vec::with_capacity(MAX_KID_LESS_CANDIDATES + 1);
    candidates.extend([first, second].into_iter().map(Arc::clone));
    candidates.extend(matching.take(MAX_KID_LESS_CANDIDATES - 1).map(Arc::clone));
    KeyLookup::Candidates(candidates)
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

    fn readiness(&self) -> Readiness {
        (**self).readiness()
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

    fn readiness(&self) -> Readiness {
        match self.first.readiness() {
            Readiness::Ready => self.then.readiness(),
            not_ready => not_ready,
        }
    }
}
