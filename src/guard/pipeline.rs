//! The request path, in order: 1 extract → 2 verify → 3 bind → 4 revocation.
//! (Step 5, the extensions, happens in [`layer`](super::layer) once this says yes.)
//!
//! Everything runs synchronously, on a borrowed request, unless a key must be fetched or the
//! revocation store must ask a remote server; only then is a (boxed) future made, and it
//! takes the request ([`Guard::resume`]). An opaque token (feature `introspection`) takes the
//! same path: a cached answer is decided here, a call to the endpoint is a suspension.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::Request;
use serde::de::DeserializeOwned;

use crate::guard::binding::{BindingPolicy as _, DpopCheck, RequestHead};
use crate::guard::context::AuthContext;
#[cfg(feature = "introspection")]
use crate::guard::keys::introspection::{
    Answer, Cached, Flight, FlightResult, IntrospectionCache, TokenHash,
};
use crate::guard::keys::KeyLookup;
use crate::guard::observe::audit;
use crate::guard::revocation::{ReplayCheck, RevocationCheck};
use crate::guard::settings::Shared;
use crate::guard::source;
use crate::guard::verify::{TokenCache, Verification, Verified, VerifiedWith};
use crate::primitives::claims::{Claims, Confirmation, TokenFacts};
use crate::primitives::clock;
use crate::primitives::error::{AuthError, ErrorKind};

/// A custom check over the decoded claims, run on every request.
pub(crate) type ClaimCheck<C> = Arc<dyn Fn(&C, &TokenFacts) -> Result<(), AuthError> + Send + Sync>;

/// The result of authenticating a request: `Ok(None)` is an anonymous request in optional mode.
pub(crate) type Decision<C> = Result<Option<Authenticated<C>>, AuthError>;

/// What the layer hands to the inner service.
pub(crate) struct Authenticated<C> {
    pub(crate) claims: Claims<C>,
    pub(crate) context: AuthContext,
}

/// How far [`Guard::authenticate`] got without waiting.
pub(crate) enum Outcome<C> {
    /// The decision: the hot path.
    Ready(Decision<C>),
    /// Something must be awaited first: hand it to [`Guard::resume`] with the request.
    Suspended(Suspension<C>),
}

/// What a suspended authentication waits for.
pub(crate) enum Suspension<C> {
    /// The key source is fetching keys; the token is verified when they are in, and its time
    /// checked then (the clock is read again: the fetch may outlast the token).
    Key { fetch: BoxFuture<'static, KeyLookup> },
    /// The revocation store is asking a remote server about a verified token.
    Revocation { check: BoxFuture<'static, RevocationCheck>, verified: Verified<C> },
    /// The DPoP replay store is recording the request's proof in a remote server.
    Replay { check: BoxFuture<'static, ReplayCheck>, verified: Verified<C> },
    /// Binding policies are waiting for remote answers (a message signature's nonce); the DPoP
    /// check follows.
    Bindings {
        checks: Vec<BoxFuture<'static, Result<(), AuthError>>>,
        dpop: DpopCheck,
        verified: Verified<C>,
    },
    /// The introspection endpoint is asked about an opaque token (the call is shared by every
    /// request with that token); its answer is verified like a JWT's claims, with the clock
    /// read again.
    #[cfg(feature = "introspection")]
    Introspection { flight: Flight, hash: TokenHash },
}

/// The per-layer state: the shared configuration, the cache of tokens decoded into `C`,
/// and the checks over `C`.
pub(crate) struct Guard<C> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) cache: Option<TokenCache<C>>,
    pub(crate) checks: Vec<ClaimCheck<C>>,
    /// Introspection answers decoded into `C`, by the token's hash.
    #[cfg(feature = "introspection")]
    pub(crate) introspected: Option<IntrospectionCache<C>>,
}

impl<C> Guard<C> {
    /// The state of a layer: its caches empty, its checks given.
    pub(crate) fn new(shared: Arc<Shared>, checks: Vec<ClaimCheck<C>>) -> Self {
        let cache = (shared.cache_capacity > 0)
            .then(|| TokenCache::new(shared.cache_capacity, shared.cache_max_token_len));
        #[cfg(feature = "introspection")]
        let introspected = shared
            .introspection
            .as_ref()
            .map(|introspector| introspector.settings().cache_capacity)
            .filter(|capacity| *capacity > 0)
            .map(IntrospectionCache::new);
        Guard {
            shared,
            cache,
            checks,
            #[cfg(feature = "introspection")]
            introspected,
        }
    }
}

impl<C> Guard<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    /// Steps 1 to 4, as far as they go without waiting. The request is only read, but for the
    /// facts of a refused token, which it carries to the audit.
    pub(crate) fn authenticate<B>(&self, request: &mut Request<B>) -> Outcome<C> {
        let now = clock::fast_now();
        // 1. extract
        let token = match self.shared.sources.extract(request.headers(), request.uri()) {
            Ok(Some(token)) => token,
            Ok(None) if self.shared.optional => return Outcome::Ready(Ok(None)),
            Ok(None) => return Outcome::Ready(Err(AuthError::new(ErrorKind::MissingToken))),
            Err(err) => return Outcome::Ready(Err(err)),
        };
        // 2. verify: an opaque token is introspected instead.
        #[cfg(feature = "introspection")]
        if let Some(introspector) = &self.shared.introspection {
            if introspector.settings().all_tokens || !self.verifies_locally(token) {
                return match self.introspect(token, now) {
                    Ok(verified) => self.after_verify(request, verified, now),
                    Err(outcome) => outcome,
                };
            }
        }
        // The verified-token cache first.
        if let Some(verified) = self.cache.as_ref().and_then(|cache| cache.get(token)) {
            return self.after_verify(request, verified, now);
        }
        // The end of step 1, for tokens the cache does not know.
        let token = match source::check_charset(token) {
            Ok(token) => token,
            Err(err) => return Outcome::Ready(Err(err)),
        };
        let timer = self.shared.metrics.start_verification();
        match self.shared.verifier.verify::<C>(token) {
            Verification::Done(Ok((verified, with))) => {
                if let Some(alg) = with.algorithm() {
                    self.shared.metrics.verified(timer, alg);
                }
                self.remember(token, &verified, &with);
                self.after_verify(request, verified, now)
            }
            Verification::Done(Err(err)) => Outcome::Ready(Err(err)),
            Verification::NeedsKey(fetch) => Outcome::Suspended(Suspension::Key { fetch }),
        }
    }

    /// The rest of a suspended authentication: waits, then finishes the steps. The request
    /// comes back with the decision.
    pub(crate) fn resume<B: Send + 'static>(
        self: Arc<Self>,
        mut request: Request<B>,
        suspension: Suspension<C>,
    ) -> BoxFuture<'static, (Request<B>, Decision<C>)> {
        Box::pin(async move {
            let mut suspension = suspension;
            loop {
                let outcome = match suspension {
                    Suspension::Key { fetch } => {
                        let lookup = fetch.await;
                        // The decision is made now: the time read before the fetch is stale.
                        let now = clock::fast_now();
                        // The token again: the request moved into this future since it was read.
                        let verified = match self.sources_token(&request) {
                            Some(token) => {
                                self.shared.verifier.verify_with::<C>(token, lookup).map(|(verified, key)| {
                                    self.remember(token, &verified, &key);
                                    verified
                                })
                            }
                            None => Err(AuthError::new(ErrorKind::MissingToken)),
                        };
                        match verified {
                            Ok(verified) => self.after_verify(&mut request, verified, now),
                            Err(err) => Outcome::Ready(Err(err)),
                        }
                    }
                    #[cfg(feature = "introspection")]
                    Suspension::Introspection { flight, hash } => {
                        let answer = flight.await;
                        // The answer is judged now: the time read before the call is stale.
                        let now = clock::fast_now();
                        self.after_introspection(&mut request, hash, answer, now)
                    }
                    Suspension::Revocation { check, verified } => {
                        let facts = Arc::clone(&verified.facts);
                        let answer = check.await;
                        // The token's time again, as of now: it may have expired during the check.
                        let now = clock::fast_now();
                        let decision = self
                            .shared
                            .verifier
                            .check_time(&verified, now)
                            .and_then(|()| self.revocation_decision(answer, verified));
                        audit::note_refused(&mut request, &decision, &facts);
                        Outcome::Ready(decision)
                    }
                    Suspension::Bindings { checks, dpop, verified } => {
                        let mut refused = None;
                        for check in checks {
                            if let Err(err) = check.await {
                                refused = Some(err);
                                break;
                            }
                        }
                        match refused {
                            None => self.after_bindings(&mut request, dpop, verified),
                            Some(err) => {
                                let decision = Err(err);
                                audit::note_refused(&mut request, &decision, &verified.facts);
                                Outcome::Ready(decision)
                            }
                        }
                    }
                    Suspension::Replay { check, verified } => {
                        let answer = check.await;
                        let now = clock::fast_now();
                        let checked = self.shared.verifier.check_time(&verified, now).and_then(|()| {
                            self.shared.dpop.as_ref().map_or(Ok(()), |dpop| dpop.replay_answer(answer, now))
                        });
                        match checked {
                            Ok(()) => self.revocation_step(&mut request, verified),
                            Err(err) => {
                                let decision = Err(err);
                                audit::note_refused(&mut request, &decision, &verified.facts);
                                Outcome::Ready(decision)
                            }
                        }
                    }
                };
                match outcome {
                    Outcome::Ready(decision) => return (request, decision),
                    Outcome::Suspended(next) => suspension = next,
                }
            }
        })
    }

    /// 2 for an opaque token: the cached answer (`Ok`: steps 3 and 4 follow), or a refusal, or
    /// a call to the introspection endpoint.
    #[cfg(feature = "introspection")]
    fn introspect(&self, token: &[u8], now: u64) -> Result<Verified<C>, Outcome<C>> {
        let refuse = |err| Err(Outcome::Ready(Err(err)));
        let token = match source::check_charset(token) {
            Ok(token) => token,
            Err(err) => return refuse(err),
        };
        let hash = TokenHash::of(token);
        match self.introspected.as_ref().and_then(|cache| cache.get(&hash, now)) {
            Some(Cached::Active(verified)) => return Ok(verified),
            Some(Cached::Inactive) => return refuse(inactive()),
            None => {}
        }
        let Some(introspector) = &self.shared.introspection else {
            return refuse(AuthError::new(ErrorKind::AuthUnavailable));
        };
        match introspector.introspect(hash, token) {
            Ok(flight) => Err(Outcome::Suspended(Suspension::Introspection { flight, hash })),
            Err(err) => {
                tracing::warn!(target: "tower_jwt_guard", error = %err, "token introspection refused");
                refuse(AuthError::new(ErrorKind::AuthUnavailable))
            }
        }
    }

    /// The endpoint's answer: no answer is 503; an inactive token is refused (and remembered
    /// for the negative TTL); an active one is verified like a JWT's claims, remembered until
    /// its `exp` and at most the TTL, and goes on to steps 3 and 4.
    #[cfg(feature = "introspection")]
    fn after_introspection<B>(
        &self,
        request: &mut Request<B>,
        hash: TokenHash,
        answer: FlightResult,
        now: u64,
    ) -> Outcome<C> {
        let (Some(introspector), Ok(answer)) = (&self.shared.introspection, answer) else {
            return Outcome::Ready(Err(AuthError::new(ErrorKind::AuthUnavailable)));
        };
        let settings = introspector.settings();
        match &*answer {
            Answer::Inactive => {
                if let Some(cache) = &self.introspected {
                    let until = now.saturating_add(settings.negative_cache_ttl.as_secs());
                    cache.insert(hash, Cached::Inactive, until, now);
                }
                Outcome::Ready(Err(inactive()))
            }
            Answer::Active(claims) => match self.shared.verifier.accept_introspected::<C>(claims) {
                Ok(verified) => {
                    if let Some(cache) = &self.introspected {
                        let until = now.saturating_add(settings.cache_ttl.as_secs());
                        let until = verified.facts.expires_at.map_or(until, |exp| exp.min(until));
                        cache.insert(hash, Cached::Active(verified.clone()), until, now);
                    }
                    self.after_verify(request, verified, now)
                }
                Err(err) => Outcome::Ready(Err(err)),
            },
        }
    }

    fn sources_token<'r, B>(&self, request: &'r Request<B>) -> Option<&'r str> {
        let token = self.shared.sources.extract(request.headers(), request.uri()).ok().flatten()?;
        source::check_charset(token).ok()
    }

    fn remember(&self, token: &str, verified: &Verified<C>, with: &VerifiedWith) {
        if let Some(cache) = &self.cache {
            cache.insert(token, verified, with);
        }
    }

    /// Steps that run on every request, cache hit or not: time, custom checks, 3 bind, 4 DPoP
    /// replay and revocation.
    fn after_verify<B>(&self, request: &mut Request<B>, verified: Verified<C>, now: u64) -> Outcome<C> {
        let refused = |request: &mut Request<B>, err: AuthError, verified: &Verified<C>| {
            let decision = Err(err);
            audit::note_refused(request, &decision, &verified.facts);
            Outcome::Ready(decision)
        };
        match self.check_token(request, &verified, now) {
            Ok((dpop, checks)) if !checks.is_empty() => {
                Outcome::Suspended(Suspension::Bindings { checks, dpop, verified })
            }
            Ok((dpop, _)) => self.after_bindings(request, dpop, verified),
            Err(err) => refused(request, err, &verified),
        }
    }

    /// After the bindings' remote answers: the DPoP proof's replay, then revocation.
    fn after_bindings<B>(
        &self,
        request: &mut Request<B>,
        dpop: DpopCheck,
        verified: Verified<C>,
    ) -> Outcome<C> {
        match dpop {
            DpopCheck::Passed => self.revocation_step(request, verified),
            // 4. the DPoP proof's replay, in a remote store
            DpopCheck::Pending(check) => Outcome::Suspended(Suspension::Replay { check, verified }),
        }
    }

    /// 4. revocation.
    fn revocation_step<B>(&self, request: &mut Request<B>, verified: Verified<C>) -> Outcome<C> {
        let Some(store) = &self.shared.revocation else {
            return Outcome::Ready(Ok(Some(self.authenticated(verified))));
        };
        match store.check(&verified.facts) {
            RevocationCheck::Pending(check) => Outcome::Suspended(Suspension::Revocation { check, verified }),
            answer => {
                let facts = Arc::clone(&verified.facts);
                let decision = self.revocation_decision(answer, verified);
                audit::note_refused(request, &decision, &facts);
                Outcome::Ready(decision)
            }
        }
    }

    /// Time, custom checks, 3 bind, and DPoP (its proof, and the proof's replay, step 4): the
    /// answer is a remote replay store's answer to await, if there is one, and the bindings'
    /// remote answers to await first.
    #[allow(clippy::type_complexity)]
    fn check_token<B>(
        &self,
        request: &Request<B>,
        verified: &Verified<C>,
        now: u64,
    ) -> Result<(DpopCheck, Vec<BoxFuture<'static, Result<(), AuthError>>>), AuthError> {
        self.shared.verifier.check_time(verified, now)?;
        for check in &self.checks {
            check(&verified.claims, &verified.facts)?;
        }
        // 3. bind
        let confirmation = verified.facts.confirmation.as_ref();
        let mut deferred = Vec::new();
        if !self.shared.bindings.is_empty() {
            let head = RequestHead::of(request);
            for binding in &self.shared.bindings {
                deferred.extend(binding.check_token(&head, &verified.facts)?);
            }
        }
        if let Some(unchecked) = confirmation.and_then(|cnf| self.unchecked_confirmation(cnf)) {
            return Err(AuthError::binding_mismatch(unchecked));
        }
        let Some(dpop) = &self.shared.dpop else { return Ok((DpopCheck::Passed, deferred)) };
        // The token again, with its scheme: a header read, cheaper than carrying it here.
        let (token, scheme) = self
            .shared
            .sources
            .extract_with_scheme(request.headers(), request.uri())?
            .ok_or(AuthError::new(ErrorKind::MissingToken))?;
        Ok((dpop.check_presented(&RequestHead::of(request), scheme, token, confirmation, now)?, deferred))
    }

    /// A `cnf` member no configured policy checks: the token is bound to something this
    /// service cannot verify, so it must not pass as a plain bearer token (fail closed).
    /// Every member counts, the crate's own and any other ([`Confirmation::members`]); the
    /// refusal names it only when the crate knows the name.
    fn unchecked_confirmation(&self, confirmation: &Confirmation) -> Option<&'static str> {
        confirmation
            .members()
            .find(|member| {
                !self.shared.bindings.iter().any(|binding| binding.confirms().contains(member))
                    && !self.shared.dpop.as_ref().is_some_and(|dpop| dpop.confirms().contains(member))
            })
            .map(Confirmation::label)
    }

    /// 4. revocation: fail closed unless fail-open was chosen.
    fn revocation_decision(&self, answer: RevocationCheck, verified: Verified<C>) -> Decision<C> {
        self.shared.metrics.revocation(&answer);
        match answer {
            RevocationCheck::Valid => Ok(Some(self.authenticated(verified))),
            RevocationCheck::Revoked => Err(AuthError::new(ErrorKind::TokenRevoked)),
            RevocationCheck::Unavailable | RevocationCheck::Pending(_)
                if self.shared.revocation_fail_open =>
            {
                tracing::warn!(target: "tower_jwt_guard", "revocation store unavailable: request let through (fail-open)");
                Ok(Some(self.authenticated(verified)))
            }
            RevocationCheck::Unavailable | RevocationCheck::Pending(_) => {
                Err(AuthError::new(ErrorKind::AuthUnavailable))
            }
        }
    }

    fn authenticated(&self, verified: Verified<C>) -> Authenticated<C> {
        Authenticated {
            claims: verified.claims,
            context: AuthContext::new(verified.facts, Arc::clone(&self.shared.context)),
        }
    }
}

impl<C> Guard<C> {
    /// Whether the token is verified here rather than introspected: a compact JWS (three
    /// parts), or a compact JWE (five) when decryption keys are configured; anything else is
    /// an opaque token.
    #[cfg(feature = "introspection")]
    fn verifies_locally(&self, token: &[u8]) -> bool {
        match token.iter().filter(|&&b| b == b'.').count() {
            2 => true,
            4 => self.shared.verifier.decrypts(),
            _ => false,
        }
    }
}

/// The refusal of a token the introspection endpoint calls inactive.
#[cfg(feature = "introspection")]
fn inactive() -> AuthError {
    AuthError::with_message(ErrorKind::InvalidToken, "the token is not active")
}
