//! [`DpopNonces`]: server-issued nonces (RFC 9449 §8), stateless.
//!
//! A nonce is a timestamp sealed with HMAC-SHA-256 (truncated to 128 bits) under the
//! service's secret: `base64url(issued_at ‖ tag)`. Nothing is stored; any instance that shares
//! the secret accepts it. The timestamp is rounded down to the rotation period, so a nonce
//! changes once per period (clients keep one nonce for a while) and is accepted for its
//! lifetime. A nonce another instance minted in the next period (its clock a little ahead of
//! this one's, across a period's boundary) is accepted too: at most one period ahead. A proof
//! without a nonce, or with one that is forged, stale or further in the future, is refused with
//! `use_dpop_nonce` and a fresh nonce in `DPoP-Nonce`.
//!
//! Every successful answer to a DPoP request carries the current nonce in `DPoP-Nonce` too
//! (RFC 9449 §8.2), so a client moves to the next nonce before the one it holds expires,
//! without a refusal. The header value is made once per period and shared.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use bytes::Bytes;
use http::HeaderValue;

use crate::primitives::error::ConfigError;

/// Default lifetime of a nonce.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Default period after which a new nonce is handed out.
pub const DEFAULT_NONCE_ROTATION: Duration = Duration::from_secs(60);

const TAG_LEN: usize = 16;
const NONCE_LEN: usize = 8 + TAG_LEN;

/// Issues and checks stateless DPoP nonces.
///
/// ```
/// use tower_jwt_guard::binding::DpopNonces;
///
/// let nonces = DpopNonces::new(b"a secret of at least 32 bytes, shared")?;
/// let nonce = nonces.issue(1_700_000_000);
/// assert!(nonces.is_fresh(&nonce, 1_700_000_100));
/// assert!(!nonces.is_fresh(&nonce, 1_700_001_000)); // older than 5 minutes
/// assert!(!DpopNonces::random().is_fresh(&nonce, 1_700_000_100)); // another secret
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct DpopNonces {
    key: hmac::Key,
    lifetime: u64,
    rotation: u64,
    /// The nonce of the current period as a header value, and the period's start.
    current: Arc<RwLock<Option<(u64, HeaderValue)>>>,
}

impl fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopNonces")
            .field("key", &"REDACTED")
            .field("lifetime", &self.lifetime)
            .field("rotation", &self.rotation)
            .finish()
    }
}

impl DpopNonces {
    /// Nonces sealed with `secret` (at least 32 bytes): share it between the instances of a service.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        if secret.len() < 32 {
            return Err(ConfigError::Invalid("the DPoP nonce secret must be at least 32 bytes"));
        }
        Ok(DpopNonces {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            lifetime: DEFAULT_NONCE_LIFETIME.as_secs(),
            rotation: DEFAULT_NONCE_ROTATION.as_secs(),
            current: Arc::default(),
        })
    }

    /// Nonces sealed with a random secret: one instance only (another would refuse them).
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        // The system's random generator failing is not something a service can run without.
        aws_lc_rs::rand::fill(&mut secret).expect("the system random generator failed");
        DpopNonces::new(secret).expect("32 bytes")
    }

    /// How long a nonce is accepted (default 5 minutes), and how often a new one is handed
    /// out (default every minute; at most the lifetime).
    pub fn lifetime(mut self, lifetime: Duration, rotation: Duration) -> Self {
        self.lifetime = lifetime.as_secs().max(1);
        self.rotation = rotation.as_secs().clamp(1, self.lifetime);
        self.current = Arc::default();
        self
    }

    /// The nonce to hand out at `now` (seconds since the epoch).
    pub fn issue(&self, now: u64) -> String {
        let issued = now - now % self.rotation;
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&issued.to_be_bytes());
        let tag = hmac::sign(&self.key, &nonce[..8]);
        nonce[8..].copy_from_slice(&tag.as_ref()[..TAG_LEN]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce)
    }

    /// The nonce to hand out at `now`, as a `DPoP-Nonce` value: made once per period, then a
    /// shared copy (no allocation).
    pub(crate) fn header(&self, now: u64) -> Option<HeaderValue> {
        let period = now - now % self.rotation;
        if let Ok(current) = self.current.read() {
            if let Some((_, value)) = current.as_ref().filter(|(start, _)| *start == period) {
                return Some(value.clone());
            }
        }
        let value = HeaderValue::from_maybe_shared(Bytes::from(self.issue(now))).ok()?;
        if let Ok(mut current) = self.current.write() {
            *current = Some((period, value.clone()));
        }
        Some(value)
    }

    /// Whether `nonce` was issued with this secret and is still within its lifetime at `now`
    /// (issued at most one period ahead of `now`'s: another instance's clock may be ahead).
    pub fn is_fresh(&self, nonce: &str, now: u64) -> bool {
        let mut bytes = [0u8; NONCE_LEN + 3];
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(nonce, &mut bytes) {
            Ok(NONCE_LEN) => {}
            _ => return false,
        }
        let tag = hmac::sign(&self.key, &bytes[..8]);
        if !crate::guard::binding::same(&tag.as_ref()[..TAG_LEN], &bytes[8..NONCE_LEN]) {
            return false;
        }
        let issued = u64::from_be_bytes(bytes[..8].try_into().unwrap_or_default());
        let next_period = (now - now % self.rotation).saturating_add(self.rotation);
        issued <= next_period && now.saturating_sub(issued) <= self.lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two instances share the secret; the other's clock is a few seconds ahead, across the
    /// boundary of a period: its fresh nonce is accepted here. Two periods ahead is not.
    #[test]
    fn a_nonce_from_an_instance_a_little_ahead_is_accepted() {
        let nonces = DpopNonces::new([5u8; 32]).unwrap();
        let rotation = DEFAULT_NONCE_ROTATION.as_secs();
        let now = 1_700_000_000 - 1_700_000_000 % rotation + rotation - 2;
        let ahead = nonces.issue(now + 5);
        assert!(nonces.is_fresh(&ahead, now));
        assert!(!nonces.is_fresh(&nonces.issue(now + 2 * rotation + 5), now));
        // And the previous periods, for the lifetime.
        assert!(nonces.is_fresh(&nonces.issue(now - rotation), now));
        assert!(!nonces.is_fresh(&nonces.issue(now - DEFAULT_NONCE_LIFETIME.as_secs() - rotation), now));
    }

    #[test]
    fn the_header_is_made_once_per_period() {
        let nonces = DpopNonces::new([5u8; 32]).unwrap();
        let first = nonces.header(1_700_000_000).unwrap();
        assert_eq!(first.to_str().unwrap(), nonces.issue(1_700_000_000));
        assert_eq!(nonces.header(1_700_000_001).unwrap(), first);
        let next = nonces.header(1_700_000_000 + DEFAULT_NONCE_ROTATION.as_secs()).unwrap();
        assert_ne!(next, first);
        assert!(nonces.is_fresh(next.to_str().unwrap(), 1_700_000_000 + DEFAULT_NONCE_ROTATION.as_secs()));
    }
}
