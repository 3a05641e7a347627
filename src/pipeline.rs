//! The request path, in order: 1 extract → 2 verify → 3 bind → 4 revocation.
//! (Step 5, the extensions, happens in [`crate::layer`] once this says yes.)
//!
//! Everything runs synchronously unless a key must be fetched or the revocation store must
//! ask a remote server; only then is a (boxed) future made, and it owns the request.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::Request;
use serde::de::DeserializeOwned;

use crate::audit;
use crate::binding::RequestHead;
use crate::clock;
use crate::config::Shared;
use crate::context::{AuthContext, Claims, Confirmation, TokenFacts};
use crate::error::{AuthError, ErrorKind};
use crate::keys::VerificationKey;
use crate::revocation::RevocationCheck;
use crate::source;
use crate::verify::{TokenCache, Verification, Verified};

/// A custom check over the decoded claims, run on every request.
pub(crate) type ClaimCheck<C> = Arc<dyn Fn(&C, &TokenFacts) -> Result<(), AuthError> + Send + Sync>;

/// The result of authenticating a request: `Ok(None)` is an anonymous request in optional mode.
pub(crate) type Decision<C> = Result<Option<Authenticated<C>>, AuthError>;

/// What the layer hands to the inner service.
pub(crate) struct Authenticated<C> {
    pub(crate) claims: Claims<C>,
    pub(crate) context: AuthContext,
}

// `Ready` is the hot path and stays on the stack; only the rare async path is boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Outcome<B, C> {
    Ready(Request<B>, Decision<C>),
    Pending(BoxFuture<'static, (Request<B>, Decision<C>)>),
}

/// The per-layer state: the shared configuration, the cache of tokens decoded into `C`,
/// and the checks over `C`.
pub(crate) struct Guard<C> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) cache: Option<TokenCache<C>>,
    pub(crate) checks: Vec<ClaimCheck<C>>,
}

impl<C> Guard<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    pub(crate) fn authenticate<B: Send + 'static>(self: &Arc<Self>, request: Request<B>) -> Outcome<B, C> {
        let now = clock::now();
        // 1. extract
        let token = match self.shared.sources.extract(request.headers(), request.uri()) {
            Ok(Some(token)) => token,
            Ok(None) if self.shared.optional => return Outcome::Ready(request, Ok(None)),
            Ok(None) => return Outcome::Ready(request, Err(AuthError::new(ErrorKind::MissingToken))),
            Err(err) => return Outcome::Ready(request, Err(err)),
        };
        // 2. verify (cache first)
        if let Some(verified) = self.cache.as_ref().and_then(|cache| cache.get(token)) {
            return self.after_verify(request, verified, now);
        }
        // The end of step 1, for tokens the cache does not know.
        let token = match source::check_charset(token) {
            Ok(token) => token,
            Err(err) => return Outcome::Ready(request, Err(err)),
        };
        match self.shared.verifier.verify::<C>(token) {
            Verification::Done(Ok((verified, key))) => {
                self.remember(token, &verified, &key);
                self.after_verify(request, verified, now)
            }
            Verification::Done(Err(err)) => Outcome::Ready(request, Err(err)),
            Verification::NeedsKey(fetch) => {
                let this = Arc::clone(self);
                Outcome::Pending(Box::pin(async move {
                    let lookup = fetch.await;
                    let verified = match this.sources_token(&request) {
                        Some(token) => {
                            this.shared.verifier.verify_with::<C>(token, lookup).map(|(verified, key)| {
                                this.remember(token, &verified, &key);
                                verified
                            })
                        }
                        None => Err(AuthError::new(ErrorKind::MissingToken)),
                    };
                    match verified {
                        Ok(verified) => match this.after_verify(request, verified, now) {
                            Outcome::Ready(request, decision) => (request, decision),
                            Outcome::Pending(rest) => rest.await,
                        },
                        Err(err) => (request, Err(err)),
                    }
                }))
            }
        }
    }

    fn sources_token<'r, B>(&self, request: &'r Request<B>) -> Option<&'r str> {
        let token = self.shared.sources.extract(request.headers(), request.uri()).ok().flatten()?;
        source::check_charset(token).ok()
    }

    fn remember(&self, token: &str, verified: &Verified<C>, key: &Arc<VerificationKey>) {
        if let Some(cache) = &self.cache {
            cache.insert(token, verified, key);
        }
    }

    /// Steps that run on every request, cache hit or not: time, custom checks, 3 bind, 4 revocation.
    fn after_verify<B: Send + 'static>(
        self: &Arc<Self>,
        request: Request<B>,
        verified: Verified<C>,
        now: u64,
    ) -> Outcome<B, C> {
        if let Err(err) = self.check_token(&request, &verified, now) {
            let decision = Err(err);
            return Outcome::Ready(audit::note_refused(request, &decision, &verified.facts), decision);
        }
        let Some(store) = &self.shared.revocation else {
            return Outcome::Ready(request, Ok(Some(self.authenticated(verified))));
        };
        match store.check(&verified.facts) {
            RevocationCheck::Pending(check) => {
                let this = Arc::clone(self);
                Outcome::Pending(Box::pin(async move {
                    let facts = Arc::clone(&verified.facts);
                    let decision = this.revocation_decision(check.await, verified);
                    (audit::note_refused(request, &decision, &facts), decision)
                }))
            }
            answer => {
                let facts = Arc::clone(&verified.facts);
                let decision = self.revocation_decision(answer, verified);
                Outcome::Ready(audit::note_refused(request, &decision, &facts), decision)
            }
        }
    }

    fn check_token<B>(
        &self,
        request: &Request<B>,
        verified: &Verified<C>,
        now: u64,
    ) -> Result<(), AuthError> {
        self.shared.verifier.rules.check_time(&verified.facts, now)?;
        for check in &self.checks {
            check(&verified.claims, &verified.facts)?;
        }
        // 3. bind
        let confirmation = verified.facts.confirmation.as_ref();
        if !self.shared.bindings.is_empty() {
            let head = RequestHead::of(request);
            for binding in &self.shared.bindings {
                binding.check(&head, confirmation)?;
            }
        }
        match confirmation.and_then(|cnf| self.unchecked_confirmation(cnf)) {
            Some(unchecked) => Err(AuthError::binding_mismatch(unchecked)),
            None => Ok(()),
        }
    }

    /// A `cnf` member no configured policy checks: the token is bound to something this
    /// service cannot verify, so it must not pass as a plain bearer token (fail closed).
    fn unchecked_confirmation(&self, confirmation: &Confirmation) -> Option<&'static str> {
        confirmation
            .members()
            .find(|member| !self.shared.bindings.iter().any(|binding| binding.confirms().contains(member)))
    }

    /// 4. revocation: fail closed unless fail-open was chosen.
    fn revocation_decision(&self, answer: RevocationCheck, verified: Verified<C>) -> Decision<C> {
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
