//! [`Dpop`]: sender-constrained tokens (RFC 9449). A DPoP-bound token names its client's key
//! (`cnf.jkt`, the RFC 7638 thumbprint), and every request carries a fresh proof signed by
//! that key: a stolen token is useless without the key.
//!
//! On every request (cache hit or not), per RFC 9449 §4.3 and §7:
//! - `Authorization: DPoP <token>` needs a token with `cnf.jkt`, and exactly one `DPoP`
//!   header: a proof with `typ` `dpop+jwt`, an `alg` of the allow-list (asymmetric only), a
//!   public `jwk` whose thumbprint is the token's `cnf.jkt`, a valid signature, `htm` = the
//!   method, `htu` = the request's URI (without query and fragment, RFC 3986 §6 normalised,
//!   the external origin from configuration or trusted proxies, see [`Dpop::public_url`]), `iat` within the
//!   window, `ath` = the token's SHA-256, a `jti` never seen before (by key and `jti`, in the
//!   [`ReplayStore`]), and the server's nonce when [`DpopNonces`] are configured;
//! - a token with `cnf.jkt` sent as `Bearer` (or by cookie, header, query) is refused (§7.2);
//! - a token without `cnf.jkt` passes as a bearer token in [`DpopMode::Allowed`] and is
//!   refused in [`DpopMode::Required`].
//!
//! Refusals are `INVALID_DPOP_PROOF` (`error="invalid_dpop_proof"`), `USE_DPOP_NONCE` (with a
//! fresh `DPoP-Nonce`), or `INVALID_TOKEN` for a token that does not fit the scheme or the key;
//! the challenge is `DPoP algs="…"`, beside `Bearer` when bearer tokens are allowed.
//!
//! ```
//! use tower_jwt_guard::binding::Dpop;
//! use tower_jwt_guard::JwtAuth;
//!
//! let auth = JwtAuth::builder()
//!     .hmac_secret([7u8; 32])
//!     .dpop(Dpop::allowed().public_url("https://api.example.com"))
//!     .build()?;
//! # let _ = auth;
//! // Without the service's external URL, `htu` could not be checked: refused at build time.
//! assert!(JwtAuth::builder().hmac_secret([7u8; 32]).dpop(Dpop::allowed()).build().is_err());
//! # Ok::<(), tower_jwt_guard::ConfigError>(())
//! ```

pub(crate) mod htu;
mod jwk;
mod nonce;
pub(crate) mod proof;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use jsonwebtoken::AlgorithmFamily;

use crate::primitives::algorithm::Algorithm;

use self::htu::Origin;
use self::jwk::KeyCache;
use crate::guard::binding::{BindingPolicy, BindingUnavailable, NewBinding, RequestHead, TrustedProxies};
use crate::guard::revocation::{MemoryReplayStore, ReplayCheck, ReplayKey, ReplayStore};
use crate::primitives::authorization::{authorization, Scheme, DEFAULT_MAX_TOKEN_LEN};
use crate::primitives::claims::Confirmation;
use crate::primitives::clock;
use crate::primitives::error::{AuthError, ConfigError, ErrorKind};

pub use nonce::{DpopNonces, DEFAULT_NONCE_LIFETIME, DEFAULT_NONCE_ROTATION};

/// Default window in which a proof's `iat` must fall (how old a proof may be).
pub const DEFAULT_PROOF_MAX_AGE: Duration = Duration::from_secs(60);
/// Default tolerance for a proof's `iat` in the future (client clock ahead).
pub const DEFAULT_PROOF_LEEWAY: Duration = Duration::from_secs(5);
/// Default number of parsed proof keys kept (by thumbprint).
pub const DEFAULT_KEY_CACHE_CAPACITY: usize = 10_000;

/// Whether bearer tokens still pass beside DPoP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopMode {
    /// DPoP-bound tokens need a proof; plain bearer tokens still pass.
    Allowed,
    /// Every token must be DPoP-bound and come with a proof: bearer tokens are refused.
    Required,
}

/// The DPoP policy (RFC 9449). Configure it with
/// [`JwtAuthBuilder::dpop`](crate::JwtAuthBuilder::dpop); see the [module](self) for what it checks.
#[derive(Clone)]
pub struct Dpop {
    mode: DpopMode,
    pub(crate) algorithms: Vec<Algorithm>,
    algs: String,
    pub(crate) origin: Option<Origin>,
    pub(crate) max_age: u64,
    pub(crate) leeway: u64,
    replay: Arc<dyn ReplayStore>,
    pub(crate) nonces: Option<DpopNonces>,
    keys: Arc<KeyCache>,
    error: Option<ConfigError>,
}

impl fmt::Debug for Dpop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dpop")
            .field("mode", &self.mode)
            .field("algs", &self.algs)
            .field("origin", &self.origin)
            .field("max_age", &self.max_age)
            .field("nonces", &self.nonces.is_some())
            .finish_non_exhaustive()
    }
}

impl Dpop {
    /// DPoP in `mode`, with the defaults: algorithms ES256, ES384, PS256, RS256 and EdDSA,
    /// proofs up to a minute old, a [`MemoryReplayStore`], no nonces. The external URL must
    /// still be given ([`public_url`](Self::public_url) or another origin).
    pub fn new(mode: DpopMode) -> Self {
        Dpop {
            mode,
            algorithms: Vec::new(),
            algs: String::new(),
            origin: None,
            max_age: DEFAULT_PROOF_MAX_AGE.as_secs(),
            leeway: DEFAULT_PROOF_LEEWAY.as_secs(),
            replay: Arc::new(MemoryReplayStore::new()),
            nonces: None,
            keys: Arc::new(KeyCache::new(DEFAULT_KEY_CACHE_CAPACITY)),
            error: None,
        }
        .algorithms([
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::PS256,
            Algorithm::RS256,
            Algorithm::EdDSA,
        ])
    }

    /// [`DpopMode::Allowed`]: bound tokens need proofs, bearer tokens still pass.
    pub fn allowed() -> Self {
        Dpop::new(DpopMode::Allowed)
    }

    /// [`DpopMode::Required`]: bearer tokens are refused.
    pub fn required() -> Self {
        Dpop::new(DpopMode::Required)
    }

    /// The service's external base URL (`https://api.example.com`, or with the path prefix a
    /// proxy strips: `https://example.com/api`): proofs' `htu` must be this plus the request's path.
    pub fn public_url(mut self, url: impl AsRef<str>) -> Self {
        match Origin::fixed(url.as_ref()) {
            Ok(origin) => self.origin = Some(origin),
            Err(err) => self.error = Some(err),
        }
        self
    }

    /// The external scheme and host come from what `proxies` forwarded when the peer is one of
    /// them, in the header family they are configured with ([`ForwardedHeader`](crate::binding::ForwardedHeader)):
    /// `Forwarded`'s `proto` and `host` (of the element about the client), or `X-Forwarded-Proto`
    /// and `X-Forwarded-Host`; each one not forwarded is the request's own (its URI and `Host`,
    /// the scheme of its connection: [`ConnectionScheme`](crate::binding::ConnectionScheme)).
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.origin = Some(Origin::Proxies(proxies));
        self
    }

    /// The external origin is the request's own (`Host`, scheme `http` unless the URI is
    /// absolute): only for a service that clients reach directly, without a proxy.
    pub fn origin_from_request(mut self) -> Self {
        self.origin = Some(Origin::Request);
        self
    }

    /// The proof algorithms accepted (asymmetric only: an HMAC algorithm is a configuration error).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        if self.algorithms.iter().any(|alg| alg.family() == AlgorithmFamily::Hmac) {
            self.error = Some(ConfigError::Invalid("DPoP proofs are signed with asymmetric keys only"));
        }
        let mut names: Vec<&str> = self.algorithms.iter().map(|alg| alg.as_str()).collect();
        if self.algorithms.contains(&Algorithm::EdDSA) {
            // RFC 9864: the same signatures under their fully specified name.
            names.push("Ed25519");
        }
        self.algs = names.join(" ");
        self
    }

    /// How old a proof may be (its `iat`, default a minute) and how far in the future (default
    /// 5 s). The replay store keeps each proof that long.
    pub fn proof_window(mut self, max_age: Duration, leeway: Duration) -> Self {
        self.max_age = max_age.as_secs();
        self.leeway = leeway.as_secs();
        self
    }

    /// Where used proofs are remembered (default: a [`MemoryReplayStore`], one process; share a
    /// `RedisReplayStore` between instances).
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay = Arc::new(store);
        self
    }

    /// Require server-issued nonces (RFC 9449 §8).
    pub fn nonces(mut self, nonces: DpopNonces) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// How many parsed proof keys are kept (default [`DEFAULT_KEY_CACHE_CAPACITY`]).
    pub fn key_cache_capacity(mut self, capacity: usize) -> Self {
        self.keys = Arc::new(KeyCache::new(capacity));
        self
    }

    /// The mode.
    pub fn mode(&self) -> DpopMode {
        self.mode
    }

    /// The accepted algorithms, space-separated (the challenge's `algs`).
    pub fn algs(&self) -> &str {
        &self.algs
    }

    /// The configuration mistakes [`JwtAuthBuilder::build`](crate::JwtAuthBuilder::build) reports.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::Invalid("the DPoP algorithm list is empty"));
        }
        if self.origin.is_none() {
            return Err(ConfigError::Invalid(
                "DPoP needs the service's external URL to check htu: public_url(..), trusted_proxies(..) \
                 or origin_from_request()",
            ));
        }
        Ok(())
    }

    /// A refusal of a DPoP request, with a fresh nonce when nonces are on.
    fn refuse(&self, (kind, reason): proof::Refusal, now: u64) -> AuthError {
        AuthError::dpop(kind, reason, self.nonces.as_ref().map(|nonces| nonces.issue(now)))
    }

    /// The whole DPoP check of a request that presents `token` with `scheme`: the scheme against
    /// the token's `cnf.jkt`, the proof (step 3), then the proof's replay (step 4). The one place
    /// that runs it, for the layer (which read the token with its own sources) and for
    /// [`BindingPolicy::check`]. A replay store that answers later hands back its answer to
    /// await; decide on it with [`replay_answer`](Self::replay_answer).
    pub(crate) fn check_presented(
        &self,
        request: &RequestHead<'_>,
        scheme: Scheme,
        token: &[u8],
        confirmation: Option<&Confirmation>,
        now: u64,
    ) -> Result<DpopCheck, AuthError> {
        let Some((key, until)) = self.check_request(request, scheme, token, confirmation, now)? else {
            return Ok(DpopCheck::Passed);
        };
        match self.replay.check_and_record(&key, until) {
            ReplayCheck::Pending(answer) => Ok(DpopCheck::Pending(answer)),
            answer => self.replay_answer(answer, now).map(|()| DpopCheck::Passed),
        }
    }

    /// Step 3 for DPoP: the scheme against the token's `cnf.jkt`, then the proof. The answer
    /// is the replay entry step 4 must record, when a proof was checked.
    fn check_request(
        &self,
        request: &RequestHead<'_>,
        scheme: Scheme,
        token: &[u8],
        confirmation: Option<&Confirmation>,
        now: u64,
    ) -> Result<Option<(ReplayKey, u64)>, AuthError> {
        let jkt = confirmation.and_then(|cnf| cnf.jkt.as_deref());
        match (scheme, jkt) {
            (Scheme::Dpop, Some(jkt)) => {
                let checked = self.verify(request, Some(token), Some(jkt), now)?;
                Ok(Some((checked.replay, checked.expires_at)))
            }
            (Scheme::Dpop, None) => {
                Err(self.refuse((ErrorKind::InvalidToken, "a token without cnf.jkt was sent as DPoP"), now))
            }
            (_, Some(_)) => {
                Err(self
                    .refuse((ErrorKind::InvalidToken, "a DPoP-bound token was sent as a bearer token"), now))
            }
            (_, None) if self.mode == DpopMode::Required => {
                Err(self.refuse((ErrorKind::InvalidToken, "this service requires DPoP-bound tokens"), now))
            }
            (_, None) => Ok(None),
        }
    }

    /// The proof of `request` checked (not its replay), with the nonce.
    fn verify(
        &self,
        request: &RequestHead<'_>,
        token: Option<&[u8]>,
        jkt: Option<&str>,
        now: u64,
    ) -> Result<proof::Checked, AuthError> {
        let refuse = |refusal| self.refuse(refusal, now);
        let proof = proof::proof_header(request)
            .map_err(refuse)?
            .ok_or_else(|| refuse((ErrorKind::InvalidDpopProof, "the DPoP header is missing")))?;
        let checked = proof::check(self, &self.keys, proof, request, token, jkt, now).map_err(refuse)?;
        if checked.nonce_fresh == Some(false) {
            return Err(refuse((ErrorKind::UseDpopNonce, "the DPoP proof has no fresh nonce")));
        }
        Ok(checked)
    }

    /// Checks the proof of `request`, which presents `access_token` (`None` at a token
    /// endpoint, where there is none yet), against the token's `jkt` (when known). The proof's
    /// replay is not checked: see [`record`](Self::record).
    pub fn verify_proof(
        &self,
        request: &RequestHead<'_>,
        access_token: Option<&str>,
        jkt: Option<&str>,
    ) -> Result<VerifiedProof, AuthError> {
        let checked = self.verify(request, access_token.map(str::as_bytes), jkt, clock::now())?;
        Ok(VerifiedProof {
            jkt: super::base64url(checked.thumbprint.as_ref()),
            replay: checked.replay,
            expires_at: checked.expires_at,
        })
    }

    /// Records a verified proof in the replay store, awaiting a remote store's answer: refused
    /// when it was used before (`INVALID_DPOP_PROOF`), or when the store cannot answer
    /// (`AUTH_UNAVAILABLE`, 503).
    pub async fn record(&self, proof: &VerifiedProof) -> Result<(), AuthError> {
        let answer = match self.replay.check_and_record(&proof.replay, proof.expires_at) {
            ReplayCheck::Pending(answer) => answer.await,
            answer => answer,
        };
        self.replay_answer(answer, clock::now())
    }

    /// Step 4's decision on the replay store's answer.
    pub(crate) fn replay_answer(&self, answer: ReplayCheck, now: u64) -> Result<(), AuthError> {
        match answer {
            ReplayCheck::Fresh => Ok(()),
            ReplayCheck::Replayed => {
                Err(self.refuse((ErrorKind::InvalidDpopProof, "the DPoP proof was used before"), now))
            }
            ReplayCheck::Unavailable | ReplayCheck::Pending(_) => {
                Err(AuthError::with_detail(ErrorKind::AuthUnavailable, "the DPoP replay store cannot answer"))
            }
        }
    }

    /// The challenge attributes of the responder.
    pub(crate) fn challenge(&self) -> DpopChallenge {
        DpopChallenge { algs: self.algs.clone(), bearer: self.mode == DpopMode::Allowed }
    }
}

/// What [`Dpop::check_presented`] found.
pub(crate) enum DpopCheck {
    /// The request passes DPoP: a bearer token where bearer tokens pass, or a valid, fresh proof.
    Passed,
    /// The proof is valid; the remote replay store answers later whether it is fresh.
    Pending(BoxFuture<'static, ReplayCheck>),
}

/// What the challenges say about DPoP (RFC 9449 §7.1), when it is configured: the rejection
/// renders it.
#[derive(Debug, Clone)]
pub(crate) struct DpopChallenge {
    /// The accepted proof algorithms, space-separated.
    pub(crate) algs: String,
    /// Whether bearer tokens are allowed too (a `Bearer` challenge beside the `DPoP` one).
    pub(crate) bearer: bool,
}

/// A proof that passed [`Dpop::verify_proof`].
#[derive(Clone)]
pub struct VerifiedProof {
    jkt: String,
    replay: ReplayKey,
    expires_at: u64,
}

impl fmt::Debug for VerifiedProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedProof").field("jkt", &self.jkt).finish_non_exhaustive()
    }
}

impl VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key, base64url: the `cnf.jkt` of a token bound to it.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }
}

/// The policy in the binding step: configured with [`JwtAuthBuilder::dpop`](crate::JwtAuthBuilder::dpop)
/// (not [`binding`](crate::JwtAuthBuilder::binding), which refuses it), it confirms `cnf.jkt`.
/// Its `bind` makes a token endpoint bind the token to the proof's key (RFC 9449 §5).
impl BindingPolicy for Dpop {
    fn name(&self) -> &'static str {
        "dpop"
    }

    fn confirms(&self) -> &'static [&'static str] {
        &["jkt"]
    }

    /// The whole check, outside the layer: the token from `Authorization` (`Bearer` or `DPoP`, up
    /// to [`DEFAULT_MAX_TOKEN_LEN`](crate::DEFAULT_MAX_TOKEN_LEN)); a replay store that cannot
    /// answer at once refuses (503). The layer does not call this: it hands
    /// [`Dpop`] the token its own sources read.
    fn check(&self, request: &RequestHead<'_>, confirmation: Option<&Confirmation>) -> Result<(), AuthError> {
        let now = clock::fast_now();
        let (token, scheme) = authorization(request.headers, DEFAULT_MAX_TOKEN_LEN, true)?
            .ok_or(AuthError::new(ErrorKind::MissingToken))?;
        match self.check_presented(request, scheme, token, confirmation, now)? {
            DpopCheck::Passed => Ok(()),
            DpopCheck::Pending(_) => self.replay_answer(ReplayCheck::Unavailable, now),
        }
    }

    /// Binds the token to the key of the request's proof (RFC 9449 §5: the token endpoint), and
    /// records the proof in the replay store (a remote store's answer is deferred to the issuer).
    /// Without a proof nothing is bound (a bearer token), unless DPoP is required.
    fn bind(&self, request: &RequestHead<'_>, binding: &mut NewBinding) -> Result<(), BindingUnavailable> {
        const INVALID: BindingUnavailable = BindingUnavailable::new("dpop", "the DPoP proof is not valid");
        match proof::proof_header(request) {
            Ok(None) if self.mode == DpopMode::Allowed => return Ok(()),
            Ok(None) => return Err(BindingUnavailable::new("dpop", "a DPoP proof is required")),
            Ok(Some(_)) => {}
            Err(_) => return Err(INVALID),
        }
        let proof =
            self.verify_proof(request, None, None).map_err(|err| match (err.kind(), err.dpop_nonce()) {
                (ErrorKind::UseDpopNonce, Some(nonce)) => BindingUnavailable::use_dpop_nonce(
                    "dpop",
                    "the DPoP proof lacks the server's nonce",
                    nonce.to_owned(),
                ),
                _ => INVALID,
            })?;
        // A request the layer already let through with a token bound to this very key (a step-up
        // of a DPoP-bound token): the layer checked and recorded this proof moments ago, on this
        // request; recording it again would read as its replay. Any other request records it.
        let bound_by_layer = binding.layer_jkt() == Some(proof.jkt.as_str());
        if !bound_by_layer {
            // A remote store (Redis) answers later: the issuer awaits it before signing.
            match self.replay.check_and_record(&proof.replay, proof.expires_at) {
                ReplayCheck::Pending(answer) => {
                    binding.defer(async move { token_endpoint_replay(answer.await) })
                }
                answer => token_endpoint_replay(answer)?,
            }
        }
        binding.confirmation_mut().jkt = Some(proof.jkt);
        Ok(())
    }
}

/// The token endpoint's reading of the replay store's answer: a proof used before is not valid
/// (`invalid_dpop_proof`); a store that cannot answer is no fault of the client (503).
fn token_endpoint_replay(answer: ReplayCheck) -> Result<(), BindingUnavailable> {
    match answer {
        ReplayCheck::Fresh => Ok(()),
        ReplayCheck::Replayed => Err(BindingUnavailable::new("dpop", "the DPoP proof was used before")),
        ReplayCheck::Unavailable | ReplayCheck::Pending(_) => {
            Err(BindingUnavailable::store_unavailable("dpop", "the DPoP replay store cannot answer"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9449 §4.1: the example proof, checked at the time it was made.
    const RFC_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
    const RFC_IAT: u64 = 1_562_262_616;

    fn check_at(proof: &str, method: &str, now: u64) -> Result<proof::Checked, proof::Refusal> {
        let dpop = Dpop::allowed().public_url("https://server.example.com");
        let request = http::Request::builder().method(method).uri("/token").body(()).unwrap();
        proof::check(&dpop, &dpop.keys, proof.as_bytes(), &RequestHead::of(&request), None, None, now)
    }

    #[test]
    fn rfc_9449_example_proof() {
        let checked = check_at(RFC_PROOF, "POST", RFC_IAT + 1).map_err(|(_, why)| why).unwrap();
        assert_eq!(checked.expires_at, RFC_IAT + DEFAULT_PROOF_MAX_AGE.as_secs() + 1);
        assert_eq!(
            check_at(RFC_PROOF, "GET", RFC_IAT + 1).err().map(|e| e.1),
            Some("the DPoP proof's htm is not the request's method")
        );
        assert_eq!(
            check_at(RFC_PROOF, "POST", RFC_IAT + 3600).err().map(|e| e.1),
            Some("the DPoP proof is too old")
        );
        assert_eq!(
            check_at(RFC_PROOF, "POST", RFC_IAT - 60).err().map(|e| e.1),
            Some("the DPoP proof was issued in the future")
        );
        // One signature character changed.
        let forged = RFC_PROOF.replace("2-GxA6T8", "2-GxA6T9");
        assert_eq!(
            check_at(&forged, "POST", RFC_IAT + 1).err().map(|e| e.1),
            Some("the DPoP proof's signature is invalid")
        );
    }

    /// RFC 9449 §7.1: `ath` of the example access token.
    #[test]
    fn rfc_9449_example_ath() {
        let digest = crate::guard::binding::sha256(b"Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU");
        assert!(crate::guard::binding::claims_digest("fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo", &digest));
    }

    #[test]
    fn hmac_and_a_missing_origin_are_configuration_errors() {
        assert!(Dpop::allowed()
            .public_url("https://a.example")
            .algorithms([Algorithm::HS256])
            .validate()
            .is_err());
        assert!(Dpop::allowed().validate().is_err());
        assert!(Dpop::allowed().origin_from_request().validate().is_ok());
        assert_eq!(Dpop::allowed().algs(), "ES256 ES384 PS256 RS256 EdDSA Ed25519");
    }
}
