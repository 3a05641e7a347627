//! Step 2 of the request path: from a token string to verified, typed claims.
//!
//! Parse the header, check `alg` against the allow-list, find the key (`kid`; without one, the
//! keys of that `alg`, at most [`MAX_KID_LESS_CANDIDATES`]), check that the key is bound to that
//! very `alg`, verify the signature with the prepared key (each candidate in turn), decode the
//! claims once into `C` and the registered claims, check them. The time checks run again
//! on every request (see [`ClaimRules::check_time`]). With several trusted issuers, the
//! token's issuer is selected first ([`selection`]).

use std::str::FromStr;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::guard::keys::{KeyLookup, VerificationKey, MAX_KID_LESS_CANDIDATES};
use crate::primitives::algorithm::Algorithm;
use crate::primitives::claims::{Claims, TokenFacts};
use crate::primitives::error::{AuthError, ErrorKind};

mod cache;
mod claims;
mod compact;
mod header_cache;
#[cfg(feature = "introspection")]
mod introspected;
#[cfg(feature = "jwe")]
pub mod jwe;
mod resource;
mod rules;
mod selection;
mod token_kind;

pub use cache::CacheStats;
pub(crate) use cache::TokenCache;
pub(crate) use compact::{Compact, JoseHeader};
pub(crate) use resource::ResourceId;
pub(crate) use rules::same_media_type;
pub(crate) use rules::ClaimRules;
pub use rules::RequiredClaim;
pub(crate) use selection::{Issuers, TrustedIssuer};
pub(crate) use token_kind::AcceptedKinds;
pub use token_kind::TokenKind;

use compact::{decode, malformed, MAX_SIGNATURE_LEN};
pub(crate) use header_cache::HeaderCache;
use header_cache::ParsedHeader;

/// A token that verified: its typed claims and its facts, both shared.
pub(crate) struct Verified<C> {
    pub(crate) claims: Claims<C>,
    pub(crate) facts: Arc<TokenFacts>,
    /// The trusted issuer that verified it (its index in [`Issuers`]): its rules check the time.
    pub(crate) issuer: usize,
}

impl<C> Clone for Verified<C> {
    fn clone(&self) -> Self {
        Verified { claims: self.claims.clone(), facts: Arc::clone(&self.facts), issuer: self.issuer }
    }
}

/// What vouched for a verified token.
#[derive(Clone)]
pub(crate) enum VerifiedWith {
    /// The key whose signature verified the token (a nested JWS's, for an encrypted one): a
    /// cached entry dies with it.
    Signature(Arc<VerificationKey>),
    /// A claims set encrypted under a shared secret (feature `jwe`): the decryption key is
    /// static, it lives as long as the configuration.
    #[cfg(feature = "jwe")]
    SharedSecret,
}

impl VerifiedWith {
    /// The signature algorithm, for the metrics.
    pub(crate) fn algorithm(&self) -> Option<Algorithm> {
        match self {
            VerifiedWith::Signature(key) => Some(key.algorithm()),
            #[cfg(feature = "jwe")]
            VerifiedWith::SharedSecret => None,
        }
    }
}

/// The set of allowed algorithms, as a bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AlgorithmSet(u16);

impl AlgorithmSet {
    /// The index of `alg` among the JWS algorithms this crate verifies (its bit here, its
    /// histogram in the metrics); `None` for an algorithm this crate does not know.
    pub(crate) fn index(alg: Algorithm) -> Option<usize> {
        Some(match alg {
            Algorithm::HS256 => 0,
            Algorithm::HS384 => 1,
            Algorithm::HS512 => 2,
            Algorithm::ES256 => 3,
            Algorithm::ES384 => 4,
            Algorithm::RS256 => 5,
            Algorithm::RS384 => 6,
            Algorithm::RS512 => 7,
            Algorithm::PS256 => 8,
            Algorithm::PS384 => 9,
            Algorithm::PS512 => 10,
            Algorithm::EdDSA => 11,
        })
    }

    /// The bit of `alg`; an algorithm this crate does not know has none, so it is never allowed.
    fn bit(alg: Algorithm) -> u16 {
        Self::index(alg).map_or(0, |index| 1 << index)
    }

    pub(crate) fn insert(&mut self, alg: Algorithm) {
        self.0 |= Self::bit(alg);
    }

    pub(crate) fn contains(self, alg: Algorithm) -> bool {
        self.0 & Self::bit(alg) != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn union(&mut self, other: AlgorithmSet) {
        self.0 |= other.0;
    }
}

/// What verification needs besides the token: the trusted issuers (their keys, allowed
/// algorithms and claim rules), the union of their allow-lists, the parsed-header cache.
pub(crate) struct TokenVerifier {
    pub(crate) issuers: Issuers,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) headers: HeaderCache,
    /// The recipient's keys for encrypted tokens (feature `jwe`).
    #[cfg(feature = "jwe")]
    pub(crate) decryption: jwe::DecryptionKeys,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("TokenVerifier");
        debug.field("algorithms", &self.algorithms).field("issuers", &self.issuers);
        #[cfg(feature = "jwe")]
        debug.field("decryption", &self.decryption);
        debug.finish_non_exhaustive()
    }
}

/// The outcome of [`TokenVerifier::verify`]: `K` says what vouched for the token.
pub(crate) enum Verification<C, K = VerifiedWith> {
    /// Verified (or refused) with a key known now.
    Done(Result<(Verified<C>, K), AuthError>),
    /// The key source must fetch first; verify again with [`TokenVerifier::verify_with`].
    NeedsKey(futures_util::future::BoxFuture<'static, KeyLookup>),
}

impl<C, K> Verification<C, K> {
    fn map_key<L>(self, map: impl FnOnce(K) -> L) -> Verification<C, L> {
        match self {
            Verification::Done(result) => {
                Verification::Done(result.map(|(verified, key)| (verified, map(key))))
            }
            Verification::NeedsKey(fetch) => Verification::NeedsKey(fetch),
        }
    }
}

/// The keys that may verify a token: one (no allocation), or the candidates for a token without
/// `kid`.
enum Keys {
    One(Arc<VerificationKey>),
    Several(Vec<Arc<VerificationKey>>),
}

impl Keys {
    fn as_slice(&self) -> &[Arc<VerificationKey>] {
        match self {
            Keys::One(key) => std::slice::from_ref(key),
            Keys::Several(keys) => keys,
        }
    }

    /// The key at `index` of [`Keys::as_slice`].
    fn take(self, index: usize) -> Arc<VerificationKey> {
        match self {
            Keys::One(key) => key,
            Keys::Several(mut keys) => keys.swap_remove(index),
        }
    }
}

impl TokenVerifier {
    /// The issuers whose tokens are accepted, in the order configured: what the resource
    /// metadata lists as its `authorization_servers` (RFC 9728 §2), so that the two cannot drift.
    pub(crate) fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.iter().flat_map(|issuer| issuer.rules.issuers.iter().map(String::as_str))
    }

    /// Verifies `token` with a key known now, or says which key must be fetched.
    pub(crate) fn verify<C: DeserializeOwned>(&self, token: &str) -> Verification<C> {
        self.run(token, None)
    }

    /// Verifies `token` with the answer of a key fetch (the issuer is selected again from the
    /// token: the same one whose source fetched).
    pub(crate) fn verify_with<C: DeserializeOwned>(
        &self,
        token: &str,
        lookup: KeyLookup,
    ) -> Result<(Verified<C>, VerifiedWith), AuthError> {
        match self.run(token, Some(lookup)) {
            Verification::Done(result) => result,
            Verification::NeedsKey(_) => Err(AuthError::new(ErrorKind::AuthUnavailable)),
        }
    }

    /// The time checks of the issuer that verified the token: on every request, cache hit or not.
    pub(crate) fn check_time<C>(&self, verified: &Verified<C>, now: u64) -> Result<(), AuthError> {
        self.issuers.get(verified.issuer).rules.check_time(&verified.facts, now)
    }

    /// Whether encrypted tokens are decrypted here (feature `jwe`, with decryption keys).
    #[allow(dead_code)] // read by the introspection routing only
    pub(crate) fn decrypts(&self) -> bool {
        #[cfg(feature = "jwe")]
        return !self.decryption.is_empty();
        #[cfg(not(feature = "jwe"))]
        false
    }

    /// The longest leeway of the trusted issuers, in seconds.
    pub(crate) fn max_leeway(&self) -> u64 {
        self.issuers.iter().map(|issuer| issuer.rules.leeway).max().unwrap_or(0)
    }

    /// The verification of a signed or (feature `jwe`) an encrypted token. `fetched`: the answer
    /// of a key fetch the previous attempt asked for.
    fn run<C: DeserializeOwned>(&self, token: &str, fetched: Option<KeyLookup>) -> Verification<C> {
        #[cfg(feature = "jwe")]
        if !self.decryption.is_empty() && jwe::JweCompact::is_jwe(token) {
            return self.run_encrypted(token, fetched);
        }
        self.run_signed(token, fetched).map_key(VerifiedWith::Signature)
    }

    /// An encrypted token: decrypted, then its nested JWS verified, or its claims set (under a
    /// shared secret) checked by the issuer its `iss` selects. Claims the outer header
    /// replicates (`iss`, `sub`, `aud`) must be the claims'.
    #[cfg(feature = "jwe")]
    fn run_encrypted<C: DeserializeOwned>(&self, token: &str, fetched: Option<KeyLookup>) -> Verification<C> {
        let decrypted = match self.decryption.decrypt(token) {
            Ok(decrypted) => decrypted,
            Err(err) => return Verification::Done(Err(err)),
        };
        let verified = if decrypted.nested {
            // A compact JWS is base64url and dots only (the split refuses a JWE in a JWE).
            let compact = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
            let inner = match std::str::from_utf8(&decrypted.plaintext) {
                Ok(inner) if decrypted.plaintext.iter().all(compact) => inner,
                _ => {
                    return Verification::Done(Err(malformed(
                        "the encrypted token does not hold a signed JWT",
                    )))
                }
            };
            match self.run_signed::<C>(inner, fetched) {
                Verification::Done(result) => {
                    result.map(|(verified, key)| (verified, VerifiedWith::Signature(key)))
                }
                Verification::NeedsKey(fetch) => return Verification::NeedsKey(fetch),
            }
        } else {
            self.encrypted_claims(&decrypted).map(|verified| (verified, VerifiedWith::SharedSecret))
        };
        Verification::Done(verified.and_then(|(verified, with)| {
            let facts = &verified.facts;
            if decrypted.replicated.agrees_with(
                facts.issuer.as_deref(),
                facts.subject.as_deref(),
                &facts.audience,
            ) {
                Ok((verified, with))
            } else {
                Err(malformed("the encrypted token's header does not match its claims"))
            }
        }))
    }

    /// A claims set that decrypted under a shared secret: the issuer's rules, as for a JWS's.
    #[cfg(feature = "jwe")]
    fn encrypted_claims<C: DeserializeOwned>(
        &self,
        decrypted: &jwe::Decrypted,
    ) -> Result<Verified<C>, AuthError> {
        let (payload, facts) = parse_claims(&decrypted.plaintext, decrypted.typ.as_deref())?;
        if decrypted.issuer.as_ref().is_some_and(|bound| facts.issuer.as_ref() != Some(bound)) {
            return Err(malformed("the claims set's issuer is not its decryption key's"));
        }
        let (index, issuer) = match self.issuers.only() {
            Some(issuer) => (0, issuer),
            None => self.issuers.select(facts.issuer.as_deref())?,
        };
        accept(index, issuer, payload, facts)
    }

    /// The verification of a JWS, for one issuer or several.
    fn run_signed<C: DeserializeOwned>(
        &self,
        token: &str,
        fetched: Option<KeyLookup>,
    ) -> Verification<C, Arc<VerificationKey>> {
        let (compact, header) = match self.parse_header(token) {
            Ok(parsed) => parsed,
            Err(err) => return Verification::Done(Err(err)),
        };
        let mut payload_buf = [0u8; 1024];
        match self.issuers.only() {
            // One issuer: nothing to select; the claims are read once the signature holds, and
            // its rules check `iss`.
            Some(issuer) => {
                let lookup = match lookup(issuer, None, &header, fetched) {
                    Ok(lookup) => lookup,
                    Err(fetch) => return Verification::NeedsKey(fetch),
                };
                Verification::Done(self.signed_by(compact, &header, lookup).and_then(|key| {
                    let (payload, facts) =
                        read_claims(compact.payload, &mut payload_buf, header.typ.as_deref())?;
                    Ok((accept(0, issuer, &payload, facts)?, key))
                }))
            }
            // Several: the payload is read once, before the signature check; its unverified
            // `iss` picks the issuer before any key is looked up.
            None => {
                let selected = read_claims(compact.payload, &mut payload_buf, header.typ.as_deref())
                    .and_then(|(payload, facts)| {
                        let (index, issuer) = self.issuers.select(facts.issuer.as_deref())?;
                        if !issuer.algorithms.contains(header.alg) {
                            return Err(malformed("the token's algorithm is not allowed"));
                        }
                        Ok((index, issuer, payload, facts))
                    });
                let (index, issuer, payload, facts) = match selected {
                    Ok(selected) => selected,
                    Err(err) => return Verification::Done(Err(err)),
                };
                let lookup = match lookup(issuer, facts.issuer.as_deref(), &header, fetched) {
                    Ok(lookup) => lookup,
                    Err(fetch) => return Verification::NeedsKey(fetch),
                };
                Verification::Done(
                    self.signed_by(compact, &header, lookup)
                        .and_then(|key| Ok((accept(index, issuer, &payload, facts)?, key))),
                )
            }
        }
    }

    /// Splits the token and reads its header: from the header cache when this header was seen
    /// on a token that verified, else parsed and checked against the allow-list.
    fn parse_header<'t>(&self, token: &'t str) -> Result<(Compact<'t>, Arc<ParsedHeader>), AuthError> {
        let compact = Compact::split(token)?;
        if let Some(header) = self.headers.get(compact.header) {
            return Ok((compact, header));
        }
        let mut buf = [0u8; 512];
        let header_bytes = match decode(compact.header, &mut buf, "the token header is not base64url")? {
            compact::Decoded::Stack(bytes) => bytes,
            // Headers larger than the stack buffer are rare (x5c chains); keep them simple.
            compact::Decoded::Heap(_) => return Err(malformed("the token header is too large")),
        };
        let header = JoseHeader::parse(header_bytes)?;
        let alg = Algorithm::from_str(&header.alg)
            .ok()
            .filter(|alg| self.algorithms.contains(*alg))
            .ok_or_else(|| malformed("the token's algorithm is not allowed"))?;
        let parsed = ParsedHeader { alg, kid: header.kid.map(Into::into), typ: header.typ.map(Into::into) };
        Ok((compact, Arc::new(parsed)))
    }

    /// The signature check with the key (or candidates) the issuer's source gave: the key that
    /// verified the token.
    fn signed_by(
        &self,
        compact: Compact<'_>,
        header: &Arc<ParsedHeader>,
        lookup: KeyLookup,
    ) -> Result<Arc<VerificationKey>, AuthError> {
        let keys = match lookup {
            KeyLookup::Found(key) => Keys::One(key),
            KeyLookup::Candidates(keys) if keys.is_empty() => {
                return Err(malformed("no key is known for this token"))
            }
            KeyLookup::Candidates(keys) if keys.len() > MAX_KID_LESS_CANDIDATES => {
                return Err(malformed("too many keys match this token without kid: its key must be named"))
            }
            KeyLookup::Candidates(keys) => Keys::Several(keys),
            KeyLookup::Unknown => return Err(malformed("no key is known for this token")),
            KeyLookup::Unavailable | KeyLookup::Pending(_) => {
                return Err(AuthError::new(ErrorKind::AuthUnavailable))
            }
        };
        // RFC 8725 §3.1: the key decides the algorithm, not the token (every candidate's key).
        if keys.as_slice().iter().any(|key| key.algorithm() != header.alg) {
            return Err(malformed("the token's algorithm does not match its key"));
        }
        // base64 estimates up to two bytes over the exact length: room for an RSA-8192 signature.
        let mut signature_buf = [0u8; MAX_SIGNATURE_LEN + 3];
        let signature =
            match decode(compact.signature, &mut signature_buf, "the token signature is not base64url")? {
                compact::Decoded::Stack(bytes) => bytes,
                compact::Decoded::Heap(_) => return Err(malformed("the token signature is too large")),
            };
        // A token without kid is tried with each candidate in the source's order (bounded above).
        let signed_by =
            keys.as_slice().iter().position(|key| key.verify(compact.signing_input.as_bytes(), signature));
        let key = match signed_by {
            Some(index) => keys.take(index),
            None => return Err(malformed("the token signature is invalid")),
        };
        // The header is signed: it may now stand for the next tokens that carry it.
        self.headers.insert(compact.header, header);
        Ok(key)
    }
}

/// The issuer's key for the token of `iss`: the answer of a fetch already made, or its source's
/// (`Err`: the source must fetch first).
fn lookup(
    issuer: &TrustedIssuer,
    iss: Option<&str>,
    header: &ParsedHeader,
    fetched: Option<KeyLookup>,
) -> Result<KeyLookup, futures_util::future::BoxFuture<'static, KeyLookup>> {
    match fetched {
        Some(lookup) => Ok(lookup),
        None => match issuer.lookup(iss, header.kid.as_deref(), header.alg) {
            KeyLookup::Pending(fetch) => Err(fetch),
            lookup => Ok(lookup),
        },
    }
}

/// The payload decoded and its registered claims parsed (once per token).
fn read_claims<'b>(
    encoded: &str,
    buf: &'b mut [u8],
    token_type: Option<&str>,
) -> Result<(compact::Decoded<'b>, TokenFacts), AuthError> {
    let payload = decode(encoded, buf, "the token payload is not base64url")?;
    let facts = parse_claims(&payload, token_type)?.1;
    Ok((payload, facts))
}

/// The registered claims of a decoded claims set (a JSON object).
fn parse_claims<'p>(
    payload: &'p [u8],
    token_type: Option<&str>,
) -> Result<(&'p [u8], TokenFacts), AuthError> {
    if !compact::is_json_object(payload) {
        return Err(malformed("the token claims are malformed"));
    }
    let registered: claims::RegisteredClaims<'_> =
        serde_json::from_slice(payload).map_err(|_| malformed("the token claims are malformed"))?;
    Ok((payload, registered.into_facts(token_type)))
}

/// The issuer's rules over a token whose signature verified; then its claims decoded into `C`.
fn accept<C: DeserializeOwned>(
    index: usize,
    issuer: &TrustedIssuer,
    payload: &[u8],
    mut facts: TokenFacts,
) -> Result<Verified<C>, AuthError> {
    // The registered claims first: a token that fails the rules is not decoded further.
    facts.kind = issuer.rules.check_static(&facts, payload)?;
    let claims: C =
        serde_json::from_slice(payload).map_err(|_| malformed("the token claims are malformed"))?;
    Ok(Verified { claims: Claims::new(claims), facts: Arc::new(facts), issuer: index })
}
