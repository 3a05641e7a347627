//! [`MessageSignature`]: requests signed with HTTP Message Signatures (RFC 9421), a sender
//! constraint beside [`Dpop`](super::Dpop) and [`CertificateBound`](super::CertificateBound).
//!
//! A DPoP proof covers the method, the URL and the token; a message signature covers what the
//! policy requires: the method, the target URI, `authorization`, the body's `content-digest`,
//! any header. On every request the policy:
//! - reads `Signature-Input` and `Signature` as structured fields (RFC 9651, with `sfv`);
//! - picks the signature with the configured label or `tag` (else the first one);
//! - refuses it unless it covers every required component (and `dpop` when a DPoP proof is
//!   sent, `content-digest` when there is a body, with [`MessageSignature::cover_dpop_when_present`]
//!   and [`MessageSignature::cover_content_digest_with_body`]), its `created` is within the window
//!   (default 60 s, 5 s into the future), its `expires` (when given) has not passed;
//! - takes the key: the token's `cnf.jwk` (RFC 7800 §3.2), else the configured key named by
//!   `keyid`, else the [`SignatureKeySource`]'s (a JWKS URL, each client's keys by the token's
//!   `client_id`, ...; its answer may come later, the layer awaits it); the key's RFC 7638
//!   thumbprint must be the token's `cnf.jkt` when it has one (a `cnf.jkt` is DPoP's claim: such
//!   tokens need [`Dpop`](super::Dpop) configured too); the algorithm is the key's, and an `alg`
//!   parameter that names another one is refused (RFC 9421 §3.2, step 7);
//! - rebuilds the signature base (§2.5) and verifies the signature (aws-lc-rs);
//! - records a `nonce` in the [`ReplayStore`]: a replayed nonce is refused.
//!
//! A token bound to a key (`cnf.jwk`) passes only with a valid signature by that key. In [`SignatureMode::Required`] every request needs
//! one. Refusals are `INVALID_SIGNATURE` or `SIGNATURE_REQUIRED` (401, `error="invalid_token"`),
//! with `Accept-Signature` (§5.1) naming what a signature must cover.
//!
//! ```
//! use tower_jwt_guard::binding::{MessageSignature, SignatureKey};
//! use tower_jwt_guard::JwtAuth;
//!
//! let client = SignatureKey::from_jwk(
//!     r#"{"kty":"OKP","crv":"Ed25519","x":"JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"}"#,
//! )?;
//! let signatures = MessageSignature::required()
//!     .key("test-key-ed25519", client)
//!     .cover(["@method", "@target-uri", "authorization"])
//!     .public_url("https://api.example.com");
//! let auth = JwtAuth::builder().hmac_secret([7u8; 32]).binding(signatures).build()?;
//! # let _ = auth;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod algorithm;
mod base;
mod content_digest;
mod input;
mod key;
mod key_source;
mod query;
mod response;
mod signer;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::guard::binding::{same, BindingPolicy, RequestHead};
use crate::guard::observe::readiness::Readiness;
use crate::guard::revocation::{MemoryReplayStore, ReplayCheck, ReplayKey, ReplayStore};
use crate::primitives::claims::{Confirmation, TokenFacts};
use crate::primitives::clock;
use crate::primitives::error::{AuthError, ConfigError, ErrorKind};

pub use algorithm::SignatureAlgorithm;
pub use content_digest::{ContentDigest, DEFAULT_DIGEST_BODY_LIMIT};
pub use key::SignatureKey;
pub use key_source::{ClientSignatureKeys, SignatureKeyLookup, SignatureKeySet, SignatureKeySource};
pub use signer::{MessageSigner, SignatureError, SignatureFields, SignatureParams};

pub(crate) use base::{Message, Signed};
pub(crate) use input::signature_labels;
use input::{Reason, SignedInput};
pub(crate) use response::ResponsePolicy;
pub(crate) use signer::component;

/// Default window in which a signature's `created` must fall.
pub const DEFAULT_SIGNATURE_MAX_AGE: Duration = Duration::from_secs(60);
/// Default tolerance for a `created` in the future (client clock ahead).
pub const DEFAULT_SIGNATURE_LEEWAY: Duration = Duration::from_secs(5);

/// Whether unsigned requests still pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureMode {
    /// Tokens bound to a key need a signature; a signature that is present must verify; other
    /// requests pass unsigned.
    Allowed,
    /// Every request needs a valid signature.
    Required,
}

/// The RFC 9421 policy; see the [module](self).
#[derive(Clone)]
pub struct MessageSignature {
    mode: SignatureMode,
    keys: Arc<SignatureKeySet>,
    source: Option<Arc<dyn SignatureKeySource>>,
    required: Vec<String>,
    cover_dpop: bool,
    cover_digest: bool,
    tag: Option<String>,
    label: Option<String>,
    max_age: u64,
    leeway: u64,
    require_nonce: bool,
    allow_rsa_v1_5: bool,
    replay: Arc<dyn ReplayStore>,
    origin: Option<(String, String)>,
}

impl fmt::Debug for MessageSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageSignature")
            .field("mode", &self.mode)
            .field("keys", &self.keys.len())
            .field("key_source", &self.source.is_some())
            .field("allow_rsa_v1_5_sha256", &self.allow_rsa_v1_5)
            .field("required", &self.required)
            .field("cover_dpop", &self.cover_dpop)
            .field("cover_digest", &self.cover_digest)
            .field("tag", &self.tag)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl MessageSignature {
    /// The policy in `mode`: no keys (only tokens' `cnf.jwk`), `@method` and `@target-uri` to
    /// cover, `created` up to a minute old, nonces optional, a [`MemoryReplayStore`].
    pub fn new(mode: SignatureMode) -> Self {
        MessageSignature {
            mode,
            keys: Arc::new(SignatureKeySet::new()),
            source: None,
            required: vec!["@method".into(), "@target-uri".into()],
            cover_dpop: false,
            cover_digest: false,
            tag: None,
            label: None,
            max_age: DEFAULT_SIGNATURE_MAX_AGE.as_secs(),
            leeway: DEFAULT_SIGNATURE_LEEWAY.as_secs(),
            require_nonce: false,
            allow_rsa_v1_5: false,
            replay: Arc::new(MemoryReplayStore::new()),
            origin: None,
        }
    }

    /// [`SignatureMode::Allowed`].
    pub fn allowed() -> Self {
        MessageSignature::new(SignatureMode::Allowed)
    }

    /// [`SignatureMode::Required`].
    pub fn required() -> Self {
        MessageSignature::new(SignatureMode::Required)
    }

    /// Adds the client key named `keyid` (a signature's `keyid` parameter finds it), for any
    /// client: the static keys are looked up first, then the [`key_source`](Self::key_source).
    pub fn key(mut self, keyid: impl Into<String>, key: SignatureKey) -> Self {
        let keys = std::mem::take(Arc::make_mut(&mut self.keys));
        self.keys = Arc::new(keys.insert(keyid, key));
        self
    }

    /// Where the keys named by `keyid` come from when the static ones ([`key`](Self::key),
    /// [`jwks`](Self::jwks)) do not have it: a JWKS URL (`JwksKeys`, feature `jwks`), each
    /// client's own keys by the token's `client_id` ([`ClientSignatureKeys`]), any
    /// [`SignatureKeySource`]. A source that cannot answer refuses with 503 (fail closed); one
    /// that answers later (a fetch) is awaited by the layer.
    ///
    /// ```
    /// use tower_jwt_guard::binding::{ClientSignatureKeys, MessageSignature, SignatureKeySet};
    ///
    /// let jwks = r#"{"keys":[{"kid":"a-1","kty":"OKP","crv":"Ed25519","x":"JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"}]}"#;
    /// let clients = ClientSignatureKeys::new().client("client-a", SignatureKeySet::from_jwks(jwks)?);
    /// let policy = MessageSignature::required().key_source(clients);
    /// # let _ = policy;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn key_source(mut self, source: impl SignatureKeySource) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Adds every key of a JWKS (`{"keys":[...]}`) by its `kid`; keys without a `kid`, or of
    /// a type message signatures do not use, are skipped.
    ///
    /// ```
    /// use tower_jwt_guard::binding::MessageSignature;
    /// let jwks = r#"{"keys":[{"kid":"k1","kty":"OKP","crv":"Ed25519","x":"JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"}]}"#;
    /// assert!(MessageSignature::allowed().jwks(jwks).is_ok());
    /// assert!(MessageSignature::allowed().jwks("not json").is_err());
    /// ```
    pub fn jwks(mut self, jwks: &str) -> Result<Self, ConfigError> {
        let keys = std::mem::take(Arc::make_mut(&mut self.keys));
        self.keys = Arc::new(keys.with_jwks(jwks)?);
        Ok(self)
    }

    /// The components every signature must cover (replaces the default `@method`,
    /// `@target-uri`): derived components (`@authority`, `@path`, `@query`, ...) and field
    /// names (`authorization`, `content-digest`, `dpop`, ...), lowercase. A component counts
    /// only when covered whole: with no parameter but `sf` or `bs` (`"content-digest";key="sha-256"`
    /// covers one member of the field, not the field).
    pub fn cover<I, S>(mut self, components: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required = components.into_iter().map(|name| name.into().to_ascii_lowercase()).collect();
        self
    }

    /// Requires `dpop` among the covered components when the request carries a `DPoP` header
    /// (the proof then cannot be swapped under the signature).
    ///
    /// ```
    /// use tower_jwt_guard::binding::{MessageSignature, RequestHead};
    /// let policy = MessageSignature::required().cover(["@method"]).cover_dpop_when_present();
    /// let with_proof = http::Request::get("/").header("dpop", "eyJ...").body(()).unwrap();
    /// assert_eq!(policy.accept_signature_for(&RequestHead::of(&with_proof)), r#"sig=("@method" "dpop")"#);
    /// let without = http::Request::get("/").body(()).unwrap();
    /// assert_eq!(policy.accept_signature_for(&RequestHead::of(&without)), r#"sig=("@method")"#);
    /// ```
    pub fn cover_dpop_when_present(mut self) -> Self {
        self.cover_dpop = true;
        self
    }

    /// Requires `content-digest` among the covered components when the request has a body
    /// (`Content-Length` above 0, or any `Transfer-Encoding`) or carries a `Content-Digest`. The
    /// digest itself is checked against the body by [`ContentDigestLayer`](crate::ContentDigestLayer);
    /// over HTTP/2 a body may come without `Content-Length`: `ContentDigestLayer::required(true)`
    /// then makes every non-empty body carry a digest, which this rule makes the signature cover.
    ///
    /// ```
    /// use tower_jwt_guard::binding::{MessageSignature, RequestHead};
    /// let policy = MessageSignature::required().cover(["@method"]).cover_content_digest_with_body();
    /// let post = http::Request::post("/").header("content-length", "2").body(()).unwrap();
    /// assert_eq!(policy.accept_signature_for(&RequestHead::of(&post)), r#"sig=("@method" "content-digest")"#);
    /// let empty = http::Request::post("/").header("content-length", "0").body(()).unwrap();
    /// assert_eq!(policy.accept_signature_for(&RequestHead::of(&empty)), r#"sig=("@method")"#);
    /// ```
    pub fn cover_content_digest_with_body(mut self) -> Self {
        self.cover_digest = true;
        self
    }

    /// Only a signature with this `tag` parameter counts (RFC 9421 §2.3).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Only the signature with this label counts.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// How old a signature's `created` may be (default a minute).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age.as_secs();
        self
    }

    /// Accepts `rsa-v1_5-sha256` (RFC 9421 §3.3.2, RSASSA-PKCS1-v1_5) from a key of that
    /// algorithm (a JWK whose `alg` is `RS256`, or a key made for it). Off by default: PKCS #1
    /// v1.5 is kept for old clients only, so a key that names it (a client's JWKS, a token's
    /// `cnf.jwk`) is refused (`INVALID_SIGNATURE`) until the policy allows it.
    ///
    /// ```
    /// use tower_jwt_guard::binding::MessageSignature;
    ///
    /// let legacy = MessageSignature::required().allow_rsa_v1_5_sha256();
    /// assert!(format!("{legacy:?}").contains("allow_rsa_v1_5_sha256: true"));
    /// ```
    pub fn allow_rsa_v1_5_sha256(mut self) -> Self {
        self.allow_rsa_v1_5 = true;
        self
    }

    /// Refuses signatures without a `nonce` (a replayed nonce is refused in any case).
    pub fn require_nonce(mut self) -> Self {
        self.require_nonce = true;
        self
    }

    /// Where used nonces are remembered (default a [`MemoryReplayStore`]; a
    /// [`RedisReplayStore`] shares them between
    /// instances, and the layer awaits its answer). A store that cannot answer fails closed (503).
    ///
    #[cfg_attr(feature = "redis", doc = "[`RedisReplayStore`]: crate::revocation::RedisReplayStore")]
    #[cfg_attr(
        not(feature = "redis"),
        doc = "[`RedisReplayStore`]: https://docs.rs/tower-jwt-guard/latest/tower_jwt_guard/revocation/struct.RedisReplayStore.html"
    )]
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay = Arc::new(store);
        self
    }

    /// The service's external origin (`https://api.example.com`): the scheme and authority of
    /// `@target-uri`, `@authority` and `@scheme`. Without it they come from the request's URI,
    /// else its `Host` header and the connection's scheme.
    pub fn public_url(mut self, url: &str) -> Self {
        if let Some(origin) = parse_origin(url) {
            self.origin = Some(origin);
        }
        self
    }

    /// The `Accept-Signature` value (RFC 9421 §5.1) naming what a signature must cover.
    ///
    /// ```
    /// use tower_jwt_guard::binding::MessageSignature;
    /// let policy = MessageSignature::required().cover(["@method", "authorization"]).tag("api");
    /// assert_eq!(policy.accept_signature(), r#"sig=("@method" "authorization");tag="api""#);
    /// ```
    pub fn accept_signature(&self) -> String {
        self.accept_signature_of(self.required.iter().map(String::as_str))
    }

    /// The `Accept-Signature` value for `request`: [`accept_signature`](Self::accept_signature)
    /// and the components the request's context requires (`dpop`, `content-digest`).
    pub fn accept_signature_for(&self, request: &RequestHead<'_>) -> String {
        self.accept_signature_of(self.required_for(request))
    }

    /// The components a signature of `request` must cover.
    fn required_for<'a>(&'a self, request: &RequestHead<'_>) -> impl Iterator<Item = &'a str> {
        let dpop = self.cover_dpop && request.headers.contains_key("dpop");
        let digest = self.cover_digest
            && (has_body(request.headers) || request.headers.contains_key("content-digest"));
        self.required
            .iter()
            .map(String::as_str)
            .chain(dpop.then_some("dpop"))
            .chain(digest.then_some("content-digest"))
    }

    fn accept_signature_of<'a>(&self, required: impl Iterator<Item = &'a str>) -> String {
        let mut seen: Vec<&str> = Vec::new();
        let components: Vec<String> = required
            .filter(|name| {
                let fresh = !seen.contains(name);
                seen.push(name);
                fresh
            })
            .filter(|name| name.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'))
            .map(|name| format!("\"{name}\""))
            .collect();
        let mut out = format!("sig=({})", components.join(" "));
        if let Some(tag) = self
            .tag
            .as_deref()
            .filter(|tag| tag.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'))
        {
            out.push_str(&format!(";tag=\"{tag}\""));
        }
        out
    }

    fn refuse(&self, request: &RequestHead<'_>, kind: ErrorKind, reason: Reason) -> AuthError {
        AuthError::signature(kind, reason, Some(self.accept_signature_for(request)))
    }

    /// The signature base (RFC 9421 §2.5) of the request's signature `label`, as this policy
    /// builds it (its origin): for signers and for debugging a refusal.
    ///
    /// ```
    /// use tower_jwt_guard::binding::{MessageSignature, RequestHead};
    /// let request = http::Request::post("https://example.com/foo")
    ///     .header("signature-input", r#"sig=("@method" "@path");created=1618884473"#)
    ///     .header("signature", "sig=:AAAA:")
    ///     .body(())
    ///     .unwrap();
    /// let base = MessageSignature::allowed().signature_base(&RequestHead::of(&request), "sig").unwrap();
    /// assert_eq!(base, "\"@method\": POST\n\"@path\": /foo\n\"@signature-params\": (\"@method\" \"@path\");created=1618884473");
    /// ```
    pub fn signature_base(&self, request: &RequestHead<'_>, label: &str) -> Result<String, &'static str> {
        let signatures = input::parse(request.headers)?;
        let signed =
            signatures.iter().find(|signed| signed.label == label).ok_or("no signature with this label")?;
        let origin = self.origin_of(request).ok_or("the request's origin is unknown")?;
        base::signature_base(&message_of(request, &origin), signed)
    }

    /// [`check`](BindingPolicy::check) as of `now` (seconds since the epoch): a recorded
    /// request verified later, or a test vector. A nonce store or a key source that must ask a
    /// remote server answers "unavailable" here (the layer awaits it:
    /// [`BindingPolicy::check_token`]).
    pub fn check_at(
        &self,
        request: &RequestHead<'_>,
        confirmation: Option<&Confirmation>,
        now: u64,
    ) -> Result<(), AuthError> {
        match self.check_inner(request, confirmation, None, now)? {
            None => Ok(()),
            Some(_) => Err(unavailable()),
        }
    }

    fn check_inner(
        &self,
        request: &RequestHead<'_>,
        confirmation: Option<&Confirmation>,
        client_id: Option<&str>,
        now: u64,
    ) -> Result<Option<Deferred>, AuthError> {
        let bound = confirmation.is_some_and(|cnf| {
            cnf.other("jwk").is_some() || (cnf.jkt.is_some() && !request.headers.contains_key("dpop"))
        });
        if !input::present(request.headers) {
            if bound || self.mode == SignatureMode::Required {
                return Err(self.refuse(
                    request,
                    ErrorKind::SignatureRequired,
                    "the request carries no signature",
                ));
            }
            return Ok(None);
        }
        if confirmation.is_some_and(|cnf| cnf.jkt.is_some()) && !bound {
            // A DPoP-bound token with its proof: the DPoP policy checks the key; a signature
            // that is present must still verify by a configured key.
            return self.verify(request, None, client_id, now);
        }
        self.verify(request, confirmation, client_id, now)
    }

    /// The chosen signature of the request, checked: `Ok(None)` when it verifies, a future when
    /// a part of the answer (the key, the nonce) comes later.
    fn verify(
        &self,
        request: &RequestHead<'_>,
        confirmation: Option<&Confirmation>,
        client_id: Option<&str>,
        now: u64,
    ) -> Result<Option<Deferred>, AuthError> {
        let invalid = |reason| self.refuse(request, ErrorKind::InvalidSignature, reason);
        let signatures = input::parse(request.headers).map_err(invalid)?;
        let signed = signatures
            .iter()
            .find(|signed| {
                self.label.as_deref().is_none_or(|label| label == signed.label)
                    && self.tag.as_deref().is_none_or(|tag| signed.tag.as_deref() == Some(tag))
            })
            .ok_or_else(|| {
                self.refuse(
                    request,
                    ErrorKind::SignatureRequired,
                    "no signature with the required label or tag",
                )
            })?;
        self.check_coverage(request, signed).map_err(invalid)?;
        self.check_time(signed, now).map_err(invalid)?;
        let origin = self.origin_of(request).ok_or_else(|| invalid("the request's origin is unknown"))?;
        let base = base::signature_base(&message_of(request, &origin), signed).map_err(invalid)?;
        let jkt = confirmation.and_then(|cnf| cnf.jkt.as_deref());
        match self.key_for(signed, confirmation, client_id).map_err(invalid)?.chosen(signed, base.as_bytes())
        {
            SignatureKeyLookup::Found(key) => {
                // `Accept-Signature` is written only for a refusal.
                let accept = || self.accept_signature_for(request);
                self.finish(signed, &key, base.as_bytes(), jkt, &accept, now)
            }
            SignatureKeyLookup::Unknown | SignatureKeyLookup::Candidates(_) => {
                Err(invalid("the signature's keyid is not known"))
            }
            SignatureKeyLookup::Unavailable => Err(keys_unavailable()),
            SignatureKeyLookup::Pending(later) => {
                let (policy, signed, jkt) = (self.clone(), signed.clone(), jkt.map(str::to_owned));
                let accept = self.accept_signature_for(request);
                Ok(Some(Box::pin(async move {
                    let key = match later.await.chosen(&signed, base.as_bytes()) {
                        SignatureKeyLookup::Found(key) => key,
                        SignatureKeyLookup::Unknown => {
                            let reason = "the signature's keyid is not known";
                            return Err(AuthError::signature(
                                ErrorKind::InvalidSignature,
                                reason,
                                Some(accept),
                            ));
                        }
                        _ => return Err(keys_unavailable()),
                    };
                    let accept = || accept.clone();
                    match policy.finish(&signed, &key, base.as_bytes(), jkt.as_deref(), &accept, now)? {
                        None => Ok(()),
                        Some(nonce) => nonce.await,
                    }
                })))
            }
        }
    }

    /// The checks once the key is known: the token's `cnf.jkt`, `alg`, the signature, the nonce.
    fn finish(
        &self,
        signed: &SignedInput,
        key: &SignatureKey,
        base: &[u8],
        jkt: Option<&str>,
        accept: &dyn Fn() -> String,
        now: u64,
    ) -> Result<Option<Deferred>, AuthError> {
        let invalid = |reason| AuthError::signature(ErrorKind::InvalidSignature, reason, Some(accept()));
        if let Some(jkt) = jkt {
            let bound =
                key.thumbprint().is_some_and(|thumbprint| same(thumbprint.as_bytes(), jkt.as_bytes()));
            if !bound {
                return Err(invalid("the signature's key is not the one the token is bound to"));
            }
        }
        if signed.alg.as_deref().is_some_and(|alg| alg != key.algorithm().name()) {
            return Err(invalid("the alg parameter disagrees with the key"));
        }
        if key.algorithm() == SignatureAlgorithm::RsaV15Sha256 && !self.allow_rsa_v1_5 {
            return Err(invalid("rsa-v1_5-sha256 is not allowed by the policy"));
        }
        if !key.verify(base, &signed.signature) {
            return Err(invalid("the signature does not verify"));
        }
        self.check_nonce(signed, key, accept, now)
    }

    fn check_coverage(&self, request: &RequestHead<'_>, signed: &SignedInput) -> Result<(), Reason> {
        for required in self.required_for(request) {
            // The whole component: `sf` and `bs` cover every field line, but `key` covers one
            // dictionary member only (a `content-digest` member added in transit is not covered).
            let covered = signed.components.iter().any(|item| {
                item.bare_item.as_string().is_some_and(|name| name.as_str() == required)
                    && item.params.keys().all(|param| matches!(param.as_str(), "sf" | "bs"))
            });
            if !covered {
                return Err("the signature does not cover a required component");
            }
        }
        if self.require_nonce && signed.nonce.is_none() {
            return Err("the signature has no nonce");
        }
        Ok(())
    }

    fn check_time(&self, signed: &SignedInput, now: u64) -> Result<(), Reason> {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let created = signed.created.ok_or("the signature has no created parameter")?;
        if created > now.saturating_add(self.leeway as i64) {
            return Err("the signature was created in the future");
        }
        if now.saturating_sub(created) > self.max_age as i64 {
            return Err("the signature is too old");
        }
        if signed.expires.is_some_and(|expires| expires <= now) {
            return Err("the signature has expired");
        }
        Ok(())
    }

    /// The key: the token's `cnf.jwk`, else the static key named by `keyid`, else the source's.
    fn key_for(
        &self,
        signed: &SignedInput,
        confirmation: Option<&Confirmation>,
        client_id: Option<&str>,
    ) -> Result<SignatureKeyLookup, Reason> {
        if let Some(jwk) = confirmation.and_then(|cnf| cnf.other("jwk")) {
            let jwk: serde_json::Value =
                serde_json::from_str(jwk).map_err(|_| "the token's cnf.jwk is not valid")?;
            let key =
                SignatureKey::from_jwk_value(&jwk).map_err(|_| "the token's cnf.jwk is not a usable key")?;
            return Ok(SignatureKeyLookup::Found(key));
        }
        let keyid = signed.keyid.as_deref().ok_or("the signature names no key")?;
        match self.keys.find(keyid, client_id) {
            SignatureKeyLookup::Unknown => {}
            found => return Ok(found),
        }
        Ok(match &self.source {
            Some(source) => source.find(keyid, client_id),
            None => SignatureKeyLookup::Unknown,
        })
    }

    fn check_nonce(
        &self,
        signed: &SignedInput,
        key: &SignatureKey,
        accept: &dyn Fn() -> String,
        now: u64,
    ) -> Result<Option<Deferred>, AuthError> {
        let Some(nonce) = signed.nonce.as_deref() else {
            return Ok(None);
        };
        let owner = key.thumbprint().or(signed.keyid.as_deref()).unwrap_or("");
        let replay_key = ReplayKey::new(format!("httpsig:{owner}").as_bytes(), nonce);
        // A signature passes only while its `created` is within the window (`expires` can only
        // shorten that), so the nonce is kept for the window: never for as long as the client's
        // `expires` says, which would let one client fill the store for good. A request verified
        // as of another time is still remembered from now on.
        let until = now.max(clock::now()).saturating_add(self.max_age).saturating_add(self.leeway);
        let replayed = |accept| {
            AuthError::signature(
                ErrorKind::InvalidSignature,
                "the signature's nonce was used before",
                Some(accept),
            )
        };
        match self.replay.check_and_record(&replay_key, until) {
            ReplayCheck::Fresh => Ok(None),
            ReplayCheck::Replayed => Err(replayed(accept())),
            ReplayCheck::Pending(answer) => {
                let replayed = replayed(accept());
                Ok(Some(Box::pin(async move {
                    match answer.await {
                        ReplayCheck::Fresh => Ok(()),
                        ReplayCheck::Replayed => Err(replayed),
                        _ => Err(unavailable()),
                    }
                })))
            }
            _ => Err(unavailable()),
        }
    }

    fn origin_of(&self, request: &RequestHead<'_>) -> Option<(String, String)> {
        origin_of(self.origin.as_ref(), request)
    }
}

/// The `(authority, scheme)` of an absolute URL (`https://api.example.com`), as the components
/// cover them.
pub(crate) fn parse_origin(url: &str) -> Option<(String, String)> {
    let uri = url.parse::<http::Uri>().ok()?;
    let (scheme, authority) = (uri.scheme_str()?, uri.authority()?);
    let scheme = scheme.to_ascii_lowercase();
    Some((authority_text(&scheme, authority.as_str()), scheme))
}

/// The `(scheme, authority)` of a request's target: the configured `(authority, scheme)` origin,
/// else the request's absolute URI, else its `Host` and the connection's scheme.
pub(crate) fn origin_of(
    configured: Option<&(String, String)>,
    request: &RequestHead<'_>,
) -> Option<(String, String)> {
    if let Some((authority, scheme)) = configured {
        return Some((scheme.clone(), authority.clone()));
    }
    if let (Some(scheme), Some(authority)) = (request.uri.scheme_str(), request.uri.authority()) {
        let scheme = scheme.to_ascii_lowercase();
        return Some((scheme.clone(), authority_text(&scheme, authority.as_str())));
    }
    let host = request.headers.get(http::header::HOST)?.to_str().ok()?;
    let scheme = super::connection_scheme(request.extensions).unwrap_or("http").to_ascii_lowercase();
    Some((scheme.clone(), authority_text(&scheme, host)))
}

/// The message of `request` at its target's `(scheme, authority)` (from [`origin_of`]).
pub(crate) fn message_of<'a>(
    request: &RequestHead<'a>,
    (scheme, authority): &'a (String, String),
) -> Message<'a> {
    Message { method: request.method, uri: request.uri, headers: request.headers, scheme, authority }
}

/// A part of the check whose answer comes later: a remote nonce store's.
type Deferred = futures_util::future::BoxFuture<'static, Result<(), AuthError>>;

/// At most this many keys sharing one `keyid` are tried.
const MAX_CANDIDATES: usize = 4;

impl SignatureKeyLookup {
    /// Several keys under one `keyid`: the one `signed` verifies with (among those of its `alg`
    /// parameter), else the first that fits (which the checks then refuse).
    fn chosen(self, signed: &SignedInput, base: &[u8]) -> SignatureKeyLookup {
        let SignatureKeyLookup::Candidates(keys) = self else {
            return self;
        };
        let fits =
            |key: &&SignatureKey| signed.alg.as_deref().is_none_or(|alg| alg == key.algorithm().name());
        let mut fitting = keys.iter().take(MAX_CANDIDATES).filter(fits);
        let first = fitting.clone().next().or(keys.first()).cloned();
        match fitting.find(|key| key.verify(base, &signed.signature)).cloned().or(first) {
            Some(key) => SignatureKeyLookup::Found(key),
            None => SignatureKeyLookup::Unknown,
        }
    }
}

/// The nonce store cannot answer: fail closed.
fn unavailable() -> AuthError {
    AuthError::with_detail(ErrorKind::AuthUnavailable, "the signature nonce store cannot answer")
}

/// The key source cannot answer: fail closed.
fn keys_unavailable() -> AuthError {
    AuthError::with_detail(ErrorKind::AuthUnavailable, "the signature key source cannot answer")
}

/// Whether the request has a body: a `Content-Length` above 0, or a `Transfer-Encoding`.
fn has_body(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get_all(http::header::CONTENT_LENGTH)
            .iter()
            .any(|value| value.to_str().ok().and_then(|text| text.trim().parse::<u64>().ok()) != Some(0))
}

/// An authority as `@authority` covers it: lowercase, without the scheme's default port.
fn authority_text(scheme: &str, authority: &str) -> String {
    let authority = authority.to_ascii_lowercase();
    let default = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return authority,
    };
    authority.strip_suffix(default).map(str::to_owned).unwrap_or(authority)
}

impl BindingPolicy for MessageSignature {
    fn name(&self) -> &'static str {
        "message_signature"
    }

    fn readiness(&self) -> Readiness {
        self.source.as_ref().map_or(Readiness::Ready, |source| source.readiness())
    }

    fn confirms(&self) -> &'static [&'static str] {
        &["jwk"]
    }

    fn check(&self, request: &RequestHead<'_>, confirmation: Option<&Confirmation>) -> Result<(), AuthError> {
        self.check_at(request, confirmation, clock::now())
    }

    fn check_deferred(
        &self,
        request: &RequestHead<'_>,
        confirmation: Option<&Confirmation>,
    ) -> Result<Option<Deferred>, AuthError> {
        self.check_inner(request, confirmation, None, clock::now())
    }

    /// With the token's `client_id`, for a [`ClientSignatureKeys`] source.
    fn check_token(
        &self,
        request: &RequestHead<'_>,
        token: &TokenFacts,
    ) -> Result<Option<Deferred>, AuthError> {
        self.check_inner(request, token.confirmation.as_ref(), token.client_id.as_deref(), clock::now())
    }
}
