//! The claims of an active introspection answer (RFC 7662 §2.2) become a [`Verified`] token the
//! same way a JWT's payload does: the registered claims read strictly (a string `exp` is a
//! refusal), the issuer its `iss` names (with several trusted issuers), that issuer's static
//! rules (issuer, audience, required claims, kinds), then `C`.
//! An opaque token has no JOSE header, so it has no `typ`.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{claims, compact::malformed, TokenVerifier, Verified};
use crate::error::AuthError;
use crate::guard::claims::Claims;

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
        // The answer's `iss` picks the issuer whose rules apply, as a JWT's does.
        let (index, issuer) = match self.issuers.only() {
            Some(only) => (0, only),
            None => self.issuers.select(facts.issuer.as_deref())?,
        };
        facts.kind = issuer.rules.check_static(&facts, answer)?;
        let claims: C = serde_json::from_slice(answer).map_err(malformed_claims)?;
        Ok(Verified { claims: Claims::new(claims), facts: Arc::new(facts), issuer: index })
    }
}
