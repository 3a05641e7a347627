//! The claims of an active introspection answer (RFC 7662 §2.2) become a [`Verified`] token the
//! same way a JWT's payload does: the registered claims read strictly (a string `exp` is a
//! refusal), then the static rules (issuer, audience, required claims, kinds) of the endpoint's
//! own issuer — never another trusted issuer's, whatever the answer's `iss` says: an endpoint
//! speaks for its issuer only, and an answer naming another one is refused — then `C`.
//! An opaque token has no JOSE header, so it has no `typ`.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{claims, compact::malformed, TokenVerifier, Verified};
use crate::primitives::claims::Claims;
use crate::primitives::error::{AuthError, ErrorKind};

impl TokenVerifier {
    /// The verified token an active answer (`answer`, its JSON object) stands for.
    pub(crate) fn accept_introspected<C: DeserializeOwned>(
        &self,
        answer: &[u8],
    ) -> Result<Verified<C>, AuthError> {
        let malformed_claims = |_| malformed("the introspected token's claims are malformed");
        let registered: claims::RegisteredClaims<'_> =
            serde_json::from_slice(answer).map_err(malformed_claims)?;
        let mut facts = registered.into_facts(None);
        // An endpoint speaks for its own issuer only (the first): its rules apply, and an answer
        // that names another issuer (`iss`) is refused by them, whoever else is trusted.
        let issuer = self.issuers.introspected().ok_or(AuthError::new(ErrorKind::AuthUnavailable))?;
        let index = 0;
        facts.kind = issuer.rules.check_static(&facts, answer)?;
        let claims: C = serde_json::from_slice(answer).map_err(malformed_claims)?;
        Ok(Verified { claims: Claims::new(claims), facts: Arc::new(facts), issuer: index })
    }
}
