//! `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): the service authenticates to the
//! endpoint with a short-lived JWT signed by its own key, a new one for each call: `iss` and
//! `sub` are the client id, `aud` the authorization server (its issuer when discovered, else the
//! endpoint's URL), `jti` 128 random bits, `exp` one minute after `iat`. The guard only builds the
//! claims; the key that signs them is a [`ClientAssertionKey`], which the crate's own
//! [`SigningKey`](crate::issue::SigningKey) is.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::primitives::clock;

/// How long a client assertion is valid.
const ASSERTION_LIFETIME: u64 = 60;

/// A key that signs client assertions (`private_key_jwt`). [`SigningKey`](crate::issue::SigningKey)
/// is one (an HMAC `SigningKey` makes it `client_secret_jwt`); implement it for a key held
/// elsewhere (an HSM, a KMS).
///
/// ```
/// use tower_jwt_guard::issue::SigningKey;
/// use tower_jwt_guard::keys::introspection::ClientAssertionKey;
/// use tower_jwt_guard::Algorithm;
///
/// let key = SigningKey::hmac(Algorithm::HS256, [7u8; 32])?;
/// let mut claims = serde_json::Map::new();
/// claims.insert("iss".into(), "orders-api".into());
/// let jwt = key.sign_assertion(&claims).expect("signed");
/// assert_eq!(jwt.split('.').count(), 3);
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
pub trait ClientAssertionKey: Send + Sync + 'static {
    /// A compact JWS of `claims`, or `None` when the key cannot sign (the call then fails: 503).
    fn sign_assertion(&self, claims: &Map<String, Value>) -> Option<String>;
}

/// The claims of a new assertion by `client_id` for `audience`.
pub(super) fn claims(client_id: &str, audience: &str) -> Map<String, Value> {
    let now = clock::now();
    let mut jti = [0u8; 16];
    aws_lc_rs::rand::fill(&mut jti).expect("the operating system's random generator failed");
    let mut claims = Map::new();
    claims.insert("iss".into(), client_id.into());
    claims.insert("sub".into(), client_id.into());
    claims.insert("aud".into(), audience.into());
    claims.insert("jti".into(), URL_SAFE_NO_PAD.encode(jti).into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), now.saturating_add(ASSERTION_LIFETIME).into());
    claims
}
