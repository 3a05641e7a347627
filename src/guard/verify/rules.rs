//! The checks on a verified token's claims: issuer, audience, type, required claims (once,
//! when the token is verified) and time (on every request, cache hit or not).

use std::sync::Arc;

use crate::guard::verify::TokenKind;
use crate::primitives::claims::TokenFacts;
use crate::primitives::error::{AuthError, ErrorKind};

/// A registered claim that can be required.
///
/// ```
/// use tower_jwt_guard::RequiredClaim;
/// assert_eq!(RequiredClaim::Jti.name(), "jti");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequiredClaim {
    /// `exp` (required by default)
    Exp,
    /// `nbf`
    Nbf,
    /// `iat`
    Iat,
    /// `iss`
    Iss,
    /// `aud`
    Aud,
    /// `sub`
    Sub,
    /// `jti`
    Jti,
}

impl RequiredClaim {
    /// The claim's name.
    pub const fn name(self) -> &'static str {
        match self {
            RequiredClaim::Exp => "exp",
            RequiredClaim::Nbf => "nbf",
            RequiredClaim::Iat => "iat",
            RequiredClaim::Iss => "iss",
            RequiredClaim::Aud => "aud",
            RequiredClaim::Sub => "sub",
            RequiredClaim::Jti => "jti",
        }
    }

    /// Whether `facts` carry this claim.
    pub(crate) fn is_present(self, facts: &TokenFacts) -> bool {
        self.present(facts)
    }

    fn present(self, facts: &TokenFacts) -> bool {
        match self {
            RequiredClaim::Exp => facts.expires_at.is_some(),
            RequiredClaim::Nbf => facts.not_before.is_some(),
            RequiredClaim::Iat => facts.issued_at.is_some(),
            RequiredClaim::Iss => facts.issuer.is_some(),
            RequiredClaim::Aud => !facts.audience.is_empty(),
            RequiredClaim::Sub => facts.subject.is_some(),
            RequiredClaim::Jti => facts.jti.is_some(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ClaimRules {
    pub(crate) leeway: u64,
    pub(crate) required: Vec<RequiredClaim>,
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) accept_any_audience: bool,
    pub(crate) max_age: Option<u64>,
    pub(crate) token_type: Option<String>,
    pub(crate) validate_nbf: bool,
    pub(crate) reject_future_iat: bool,
    pub(crate) kinds: crate::guard::verify::AcceptedKinds,
    /// RFC 8707: the resource every token must name in `aud` (`JwtAuthBuilder::resource`).
    pub(crate) resource: Option<crate::guard::verify::ResourceId>,
}

impl Default for ClaimRules {
    fn default() -> Self {
        ClaimRules {
            leeway: 30,
            required: vec![RequiredClaim::Exp],
            issuers: Vec::new(),
            audiences: Vec::new(),
            accept_any_audience: false,
            max_age: None,
            token_type: None,
            validate_nbf: true,
            reject_future_iat: true,
            kinds: crate::guard::verify::AcceptedKinds::default(),
            resource: None,
        }
    }
}

fn invalid(message: &'static str) -> AuthError {
    AuthError::with_message(ErrorKind::InvalidToken, message)
}

impl ClaimRules {
    /// Checks that do not depend on time: run once per token, before it is cached. `payload`
    /// is the claims set (JSON), read only when the token's kind requires claims by name.
    /// Gives the name of the token's kind when kinds are accepted.
    pub(crate) fn check_static(
        &self,
        facts: &TokenFacts,
        payload: &[u8],
    ) -> Result<Option<Arc<str>>, AuthError> {
        for claim in &self.required {
            if !claim.present(facts) {
                return Err(AuthError::with_message(
                    ErrorKind::InvalidToken,
                    format!("the token lacks the required claim {}", claim.name()),
                ));
            }
        }
        // The token's kind, when kinds are accepted: its issuers and audiences join the layer's.
        let kind = self.kinds.classify(facts)?;
        let (kind_issuers, kind_audiences) = kind.map_or((&[][..], &[][..]), TokenKind::recipients);
        if !issuer_accepted(&[&self.issuers, kind_issuers], facts) {
            return Err(invalid("the token's issuer is not accepted"));
        }
        // A configured resource (RFC 8707) must be named, and stands for the layer's audiences; a
        // kind's own audiences still apply.
        let names_resource = match &self.resource {
            Some(resource) if !resource.named_by(facts) => {
                return Err(invalid("the token is not for this resource"));
            }
            resource => resource.is_some(),
        };
        let audience_ok = if names_resource {
            kind_audiences.is_empty() || audience_accepted(&[kind_audiences], facts, false)
        } else {
            audience_accepted(&[&self.audiences, kind_audiences], facts, self.accept_any_audience)
        };
        if !audience_ok {
            return Err(invalid("the token's audience is not accepted"));
        }
        if let Some(expected) = &self.token_type {
            if !facts.token_type.as_deref().is_some_and(|typ| same_media_type(typ, expected)) {
                return Err(invalid("the token's type is not accepted"));
            }
        }
        match kind {
            Some(kind) => {
                kind.check(facts, payload)?;
                Ok(Some(Arc::clone(kind.shared_name())))
            }
            None => Ok(None),
        }
    }

    /// Time checks: run on every request, cache hit or not.
    pub(crate) fn check_time(&self, facts: &TokenFacts, now: u64) -> Result<(), AuthError> {
        if let Some(exp) = facts.expires_at {
            if now >= exp.saturating_add(self.leeway) {
                return Err(AuthError::new(ErrorKind::TokenExpired));
            }
        }
        if self.validate_nbf {
            if let Some(nbf) = facts.not_before {
                if now.saturating_add(self.leeway) < nbf {
                    return Err(AuthError::new(ErrorKind::TokenNotYetValid));
                }
            }
        }
        if let Some(iat) = facts.issued_at {
            if self.reject_future_iat && now.saturating_add(self.leeway) < iat {
                return Err(AuthError::with_message(
                    ErrorKind::TokenNotYetValid,
                    "the token is issued in the future",
                ));
            }
            if let Some(max_age) = self.max_age {
                if now > iat.saturating_add(max_age).saturating_add(self.leeway) {
                    return Err(AuthError::new(ErrorKind::TokenTooOld));
                }
            }
        } else if self.max_age.is_some() {
            return Err(AuthError::with_message(
                ErrorKind::InvalidToken,
                "the token lacks the required claim iat",
            ));
        }
        Ok(())
    }
}

/// The audience rule, one for the layer and every token kind. `configured` holds the audience
/// lists that apply to the token: the layer's and, when kinds are accepted, its kind's. An empty
/// list is "not configured here" and adds no condition; a non-empty one needs one of the token's
/// `aud` values among it. With no audience configured anywhere, a token that names an audience
/// is refused (RFC 7519 §4.1.3: a service that has no audience cannot be the one a token names),
/// unless the configuration explicitly accepts any audience.
pub(crate) fn audience_accepted(configured: &[&[String]], facts: &TokenFacts, accept_any: bool) -> bool {
    let mut any_configured = false;
    for accepted in configured.iter().filter(|accepted| !accepted.is_empty()) {
        any_configured = true;
        if !facts.audience.iter().any(|aud| accepted.contains(aud)) {
            return false;
        }
    }
    any_configured || facts.audience.is_empty() || accept_any
}

/// The issuer rule, the same way: an empty list adds no condition (no issuer configured anywhere
/// accepts any, or none); a non-empty one needs `iss` among it.
pub(crate) fn issuer_accepted(configured: &[&[String]], facts: &TokenFacts) -> bool {
    configured.iter().all(|accepted| {
        accepted.is_empty() || facts.issuer.as_ref().is_some_and(|iss| accepted.contains(iss))
    })
}

/// RFC 7515 §4.1.9: `typ` compares case-insensitively, and `application/` may be omitted.
pub(crate) fn same_media_type(actual: &str, expected: &str) -> bool {
    fn strip(t: &str) -> &str {
        match t.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &t[12..],
            _ => t,
        }
    }
    strip(actual).eq_ignore_ascii_case(strip(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(exp: Option<u64>, nbf: Option<u64>, iat: Option<u64>) -> TokenFacts {
        TokenFacts { expires_at: exp, not_before: nbf, issued_at: iat, ..TokenFacts::default() }
    }

    fn kind(r: Result<(), AuthError>) -> Option<ErrorKind> {
        r.err().map(|e| e.kind())
    }

    #[test]
    fn expiry_and_not_before_honour_the_leeway() {
        let rules = ClaimRules::default();
        assert_eq!(kind(rules.check_time(&facts(Some(1000), None, None), 1029)), None);
        assert_eq!(
            kind(rules.check_time(&facts(Some(1000), None, None), 1030)),
            Some(ErrorKind::TokenExpired)
        );
        assert_eq!(kind(rules.check_time(&facts(None, Some(1000), None), 970)), None);
        assert_eq!(
            kind(rules.check_time(&facts(None, Some(1000), None), 969)),
            Some(ErrorKind::TokenNotYetValid)
        );
        assert_eq!(
            kind(rules.check_time(&facts(None, None, Some(1000)), 969)),
            Some(ErrorKind::TokenNotYetValid)
        );
    }

    #[test]
    fn max_age_needs_iat() {
        let rules = ClaimRules { max_age: Some(60), leeway: 0, ..ClaimRules::default() };
        assert_eq!(kind(rules.check_time(&facts(None, None, Some(1000)), 1060)), None);
        assert_eq!(
            kind(rules.check_time(&facts(None, None, Some(1000)), 1061)),
            Some(ErrorKind::TokenTooOld)
        );
        assert_eq!(kind(rules.check_time(&facts(None, None, None), 1000)), Some(ErrorKind::InvalidToken));
    }

    #[test]
    fn static_rules() {
        let rules = ClaimRules {
            issuers: vec!["https://issuer".into()],
            audiences: vec!["api".into()],
            token_type: Some("at+jwt".into()),
            ..ClaimRules::default()
        };
        let mut f = facts(Some(1), None, None);
        assert!(rules.check_static(&f, b"{}").is_err());
        f.issuer = Some("https://issuer".into());
        f.audience = vec!["other".into(), "api".into()];
        f.token_type = Some("application/AT+JWT".into());
        assert!(rules.check_static(&f, b"{}").is_ok());
        f.token_type = Some("JWT".into());
        assert!(rules.check_static(&f, b"{}").is_err());
        assert!(ClaimRules::default().check_static(&facts(None, None, None), b"{}").is_err(), "exp required");
    }

    #[test]
    fn one_audience_rule_for_the_layer_and_every_kind() {
        let named = TokenFacts { audience: vec!["api".into()], ..TokenFacts::default() };
        let unnamed = TokenFacts::default();
        let none: &[String] = &[];
        let api = ["api".to_owned()];
        let other = ["other".to_owned()];
        // Nothing configured anywhere: a token naming an audience is not for this service...
        assert!(!audience_accepted(&[none, none], &named, false));
        assert!(audience_accepted(&[none, none], &unnamed, false));
        // ...unless any audience is accepted on purpose.
        assert!(audience_accepted(&[none, none], &named, true));
        // An empty list adds no condition, wherever it is: the layer's or the kind's.
        assert!(audience_accepted(&[&api, none], &named, false));
        assert!(audience_accepted(&[none, &api], &named, false));
        assert!(!audience_accepted(&[&api, none], &unnamed, false));
        // Each configured list is a condition, even with accept_any.
        assert!(audience_accepted(&[&["other".to_owned(), "api".to_owned()], &api], &named, false));
        assert!(!audience_accepted(&[&api, &other], &named, true));
        assert!(!audience_accepted(&[&other, none], &named, true));
    }

    #[test]
    fn one_issuer_rule_for_the_layer_and_every_kind() {
        let from_a = TokenFacts { issuer: Some("a".into()), ..TokenFacts::default() };
        let none: &[String] = &[];
        let a = ["a".to_owned()];
        let b = ["b".to_owned()];
        assert!(issuer_accepted(&[none, none], &from_a));
        assert!(issuer_accepted(&[none, none], &TokenFacts::default()));
        assert!(issuer_accepted(&[&a, none], &from_a));
        assert!(issuer_accepted(&[none, &a], &from_a));
        assert!(!issuer_accepted(&[&a, &b], &from_a));
        assert!(!issuer_accepted(&[none, &a], &TokenFacts::default()));
    }

    #[test]
    fn a_kind_without_an_audience_adds_no_condition_to_the_layers() {
        let mut rules = ClaimRules { audiences: vec!["api".into()], ..ClaimRules::default() };
        rules.kinds.push(TokenKind::new("user", "at+jwt"));
        let token = TokenFacts {
            audience: vec!["api".into()],
            token_type: Some("at+jwt".into()),
            ..facts(Some(1), None, None)
        };
        assert_eq!(rules.check_static(&token, b"{}").unwrap().as_deref(), Some("user"));
        let elsewhere = TokenFacts { audience: vec!["other".into()], ..token };
        assert!(rules.check_static(&elsewhere, b"{}").is_err());
    }
}
