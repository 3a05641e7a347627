//! [`SignatureKeySource`]: where the keys of signed requests come from, found by the signature's
//! `keyid` and the token's `client_id`. The crate's sources: [`SignatureKeySet`] (a static set),
//! [`ClientSignatureKeys`] (each client its own set), a JWKS URL (`JwksKeys`, feature `jwks`),
//! and any closure `Fn(&str, Option<&str>) -> SignatureKeyLookup`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::key::SignatureKey;
use crate::guard::observe::readiness::Readiness;
use crate::primitives::error::ConfigError;

/// The answer of a [`SignatureKeySource`].
///
/// A source that must ask a remote service answers [`Pending`](SignatureKeyLookup::Pending):
///
/// ```
/// use tower_jwt_guard::binding::{SignatureKey, SignatureKeyLookup};
///
/// let jwk = r#"{"kty":"OKP","crv":"Ed25519","x":"JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"}"#;
/// let key = SignatureKey::from_jwk(jwk)?;
/// let later = SignatureKeyLookup::Pending(Box::pin(async move { SignatureKeyLookup::Found(key) }));
/// assert_eq!(format!("{later:?}"), "Pending");
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[non_exhaustive]
pub enum SignatureKeyLookup {
    /// The key.
    Found(SignatureKey),
    /// Several keys under that `keyid` (a JWKS whose keys share a `kid`, told apart by their
    /// type, curve and `alg`, as FAPI 2.0 asks): the one the signature verifies with is taken
    /// (among those of its `alg` parameter, when it has one; at most the first four).
    Candidates(Vec<SignatureKey>),
    /// No key of that `keyid` (for that client): the signature is refused (`INVALID_SIGNATURE`).
    Unknown,
    /// The source cannot answer (a JWKS that never loaded): the request is refused with 503
    /// (`AUTH_UNAVAILABLE`), fail closed.
    Unavailable,
    /// The answer comes later (a fetch runs): the layer awaits it, the request does not block a
    /// thread.
    Pending(BoxFuture<'static, SignatureKeyLookup>),
}

impl fmt::Debug for SignatureKeyLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureKeyLookup::Found(key) => f.debug_tuple("Found").field(key).finish(),
            SignatureKeyLookup::Candidates(keys) => f.debug_tuple("Candidates").field(keys).finish(),
            SignatureKeyLookup::Unknown => f.write_str("Unknown"),
            SignatureKeyLookup::Unavailable => f.write_str("Unavailable"),
            SignatureKeyLookup::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// A source of client keys for [`MessageSignature`](super::MessageSignature): the key named
/// `keyid`, for the client the token names in `client_id` (RFC 9068 §2.2) when it names one.
///
/// A closure is a source:
///
/// ```
/// use tower_jwt_guard::binding::{MessageSignature, SignatureKey, SignatureKeyLookup};
///
/// let jwk = r#"{"kty":"OKP","crv":"Ed25519","x":"JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"}"#;
/// let key = SignatureKey::from_jwk(jwk)?;
/// let source = move |keyid: &str, client_id: Option<&str>| match (keyid, client_id) {
///     ("k1", Some("client-a")) => SignatureKeyLookup::Found(key.clone()),
///     _ => SignatureKeyLookup::Unknown,
/// };
/// let policy = MessageSignature::required().key_source(source);
/// # let _ = policy;
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
pub trait SignatureKeySource: Send + Sync + 'static {
    /// The key named `keyid`, for `client_id` (the token's, when it has one).
    fn find(&self, keyid: &str, client_id: Option<&str>) -> SignatureKeyLookup;

    /// Whether the source can answer now: a remote one that never loaded its keys is not
    /// ready, and `/ready` says so ([`readiness`](crate::readiness)). The default is ready.
    fn readiness(&self) -> Readiness {
        Readiness::Ready
    }
}

impl<F> SignatureKeySource for F
where
    F: Fn(&str, Option<&str>) -> SignatureKeyLookup + Send + Sync + 'static,
{
    fn find(&self, keyid: &str, client_id: Option<&str>) -> SignatureKeyLookup {
        self(keyid, client_id)
    }
}

/// A static set of keys by `keyid`, for any client.
///
/// ```
/// use tower_jwt_guard::binding::{SignatureKeyLookup, SignatureKeySet, SignatureKeySource};
///
/// let jwks = r#"{"keys":[{"kid":"k1","kty":"OKP","crv":"Ed25519","x":"JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"}]}"#;
/// let set = SignatureKeySet::from_jwks(jwks)?;
/// assert!(matches!(set.find("k1", None), SignatureKeyLookup::Found(_)));
/// assert!(matches!(set.find("k2", None), SignatureKeyLookup::Unknown));
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct SignatureKeySet {
    /// The keys of each `keyid`: one, or several from a JWKS whose keys share a `kid`.
    keys: HashMap<String, Vec<SignatureKey>>,
}

impl fmt::Debug for SignatureKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureKeySet").field("keyids", &sorted_names(&self.keys)).finish()
    }
}

impl SignatureKeySet {
    /// An empty set.
    pub fn new() -> Self {
        SignatureKeySet::default()
    }

    /// Adds the key named `keyid` (in place of the keys that had that name).
    pub fn insert(mut self, keyid: impl Into<String>, key: SignatureKey) -> Self {
        self.keys.insert(keyid.into(), vec![key]);
        self
    }

    /// Every key of a JWKS (`{"keys":[...]}`) by its `kid`; keys without a `kid`, or of a type
    /// message signatures do not use (private, symmetric, `use` other than `sig`), are skipped.
    /// Keys sharing a `kid` are all kept, and told apart by the signature
    /// ([`SignatureKeyLookup::Candidates`]).
    pub fn from_jwks(jwks: &str) -> Result<Self, ConfigError> {
        SignatureKeySet::new().with_jwks(jwks)
    }

    /// Adds every key of a JWKS, as [`from_jwks`](Self::from_jwks).
    pub fn with_jwks(mut self, jwks: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value =
            serde_json::from_str(jwks).map_err(|_| ConfigError::InvalidKey("the JWKS is not valid JSON"))?;
        let keys = value
            .get("keys")
            .and_then(|keys| keys.as_array())
            .ok_or(ConfigError::InvalidKey("the JWKS has no keys array"))?;
        for jwk in keys {
            // A key for encryption never verifies a signature (RFC 7517 §4.2).
            if jwk.get("use").is_some_and(|usage| usage.as_str() != Some("sig")) {
                continue;
            }
            let (Some(kid), Ok(key)) =
                (jwk.get("kid").and_then(|kid| kid.as_str()), SignatureKey::from_jwk_value(jwk))
            else {
                continue;
            };
            self.keys.entry(kid.to_owned()).or_default().push(key);
        }
        Ok(self)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl SignatureKeySource for SignatureKeySet {
    fn find(&self, keyid: &str, _: Option<&str>) -> SignatureKeyLookup {
        match self.keys.get(keyid).map(Vec::as_slice) {
            None | Some([]) => SignatureKeyLookup::Unknown,
            Some([key]) => SignatureKeyLookup::Found(key.clone()),
            Some(keys) => SignatureKeyLookup::Candidates(keys.to_vec()),
        }
    }
}

/// Each client its own key source, chosen by the token's `client_id`: a `keyid` is looked up
/// only among the keys of the client the token was issued to, so a signature naming another
/// client's key is refused (`INVALID_SIGNATURE`), and so is a token without `client_id`.
///
/// ```
/// use tower_jwt_guard::binding::{
///     ClientSignatureKeys, SignatureKey, SignatureKeyLookup, SignatureKeySet, SignatureKeySource,
/// };
///
/// let jwk = r#"{"kty":"OKP","crv":"Ed25519","x":"JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"}"#;
/// let clients = ClientSignatureKeys::new()
///     .client("client-a", SignatureKeySet::new().insert("a-1", SignatureKey::from_jwk(jwk)?))
///     .client("client-b", SignatureKeySet::new());
/// assert!(matches!(clients.find("a-1", Some("client-a")), SignatureKeyLookup::Found(_)));
/// // Client B's token naming client A's key, or a token without client_id: no key.
/// assert!(matches!(clients.find("a-1", Some("client-b")), SignatureKeyLookup::Unknown));
/// assert!(matches!(clients.find("a-1", None), SignatureKeyLookup::Unknown));
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct ClientSignatureKeys {
    clients: HashMap<String, Arc<dyn SignatureKeySource>>,
}

impl fmt::Debug for ClientSignatureKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSignatureKeys").field("clients", &sorted_names(&self.clients)).finish()
    }
}

impl ClientSignatureKeys {
    /// No client yet.
    pub fn new() -> Self {
        ClientSignatureKeys::default()
    }

    /// The keys of `client_id`: a [`SignatureKeySet`], a JWKS URL, any source.
    pub fn client(mut self, client_id: impl Into<String>, keys: impl SignatureKeySource) -> Self {
        self.clients.insert(client_id.into(), Arc::new(keys));
        self
    }
}

impl SignatureKeySource for ClientSignatureKeys {
    fn find(&self, keyid: &str, client_id: Option<&str>) -> SignatureKeyLookup {
        match client_id.and_then(|client| self.clients.get(client).map(|keys| (client, keys))) {
            Some((client, keys)) => keys.find(keyid, Some(client)),
            None => SignatureKeyLookup::Unknown,
        }
    }
}

/// The names of a map's entries in order, for a `Debug` that shows names, never keys.
fn sorted_names<V>(map: &HashMap<String, V>) -> Vec<&String> {
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    names
}

/// A JWKS URL read with the crate's fetcher: the same refresh, rotation and outage rules as
/// [`JwksKeys`](crate::guard::keys::JwksKeys) has for tokens (refetch on an unknown `keyid` at
/// most once per interval, the last good keys kept through an outage up to the maximum
/// staleness, 503 while no keys were ever loaded). A key's algorithm follows from its JWK.
///
/// ```
/// use tower_jwt_guard::binding::MessageSignature;
/// use tower_jwt_guard::keys::JwksKeys;
///
/// let clients = JwksKeys::builder("https://auth.example.com/clients/jwks.json").build()?;
/// let policy = MessageSignature::required().key_source(clients);
/// # let _ = policy;
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[cfg(feature = "jwks")]
impl SignatureKeySource for crate::guard::keys::JwksKeys {
    fn find(&self, keyid: &str, _: Option<&str>) -> SignatureKeyLookup {
        use crate::guard::keys::JwkLookup;
        fn answer(lookup: JwkLookup) -> SignatureKeyLookup {
            match lookup {
                JwkLookup::Found(jwks) => {
                    let mut keys: Vec<SignatureKey> =
                        jwks.iter().filter_map(|jwk| SignatureKey::from_jwk_value(jwk).ok()).collect();
                    match keys.len() {
                        0 => SignatureKeyLookup::Unknown,
                        1 => keys.pop().map_or(SignatureKeyLookup::Unknown, SignatureKeyLookup::Found),
                        _ => SignatureKeyLookup::Candidates(keys),
                    }
                }
                JwkLookup::Unknown => SignatureKeyLookup::Unknown,
                JwkLookup::Unavailable => SignatureKeyLookup::Unavailable,
                JwkLookup::Pending(later) => {
                    SignatureKeyLookup::Pending(Box::pin(async move { answer(later.await) }))
                }
            }
        }
        answer(self.lookup_jwk(keyid))
    }

    fn readiness(&self) -> Readiness {
        crate::guard::keys::KeySource::readiness(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_names_in_order_and_no_key() {
        let key = || SignatureKey::hmac_sha256([7u8; 32]).unwrap();
        let set = SignatureKeySet::new().insert("b", key()).insert("a", key());
        assert_eq!(format!("{set:?}"), r#"SignatureKeySet { keyids: ["a", "b"] }"#);
        let clients = ClientSignatureKeys::new().client("z", set.clone()).client("y", set);
        assert_eq!(format!("{clients:?}"), r#"ClientSignatureKeys { clients: ["y", "z"] }"#);
    }
}
