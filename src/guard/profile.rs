//! [`Fapi2Rule`]: the FAPI 2.0 Security Profile (final, February 2025) for a resource server,
//! as configuration ([`JwtAuthBuilder::fapi2`](crate::JwtAuthBuilder::fapi2)).
//!
//! The profile adds no check of its own to the request path: it sets what the floors below
//! already offer (the algorithm allow-list, the leeway, DPoP and certificate binding, the token
//! sources) and, at [`build`](crate::JwtAuthBuilder::build), refuses a setting that breaks one
//! of its rules with [`ConfigError::Profile`] naming the rule. The one way out is explicit and
//! visible: [`JwtAuthBuilder::fapi2_exception`](crate::JwtAuthBuilder::fapi2_exception), with a
//! reason that `Debug` shows next to the rule.

use std::fmt;

use crate::guard::binding::{BindingPolicy, Dpop, RequestHead};
use crate::guard::source::TokenSource;
use crate::guard::verify::{Issuers, TrustedIssuer};
use crate::primitives::algorithm::Algorithm;
use crate::primitives::claims::Confirmation;
use crate::primitives::error::{AuthError, ConfigError};

/// The algorithms FAPI 2.0 allows (§5.4.1): PS256, ES256 and EdDSA (Ed25519).
pub const FAPI2_ALGORITHMS: [Algorithm; 3] = [Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];

/// The clock skew FAPI 2.0 asks to accept on `iat` and `nbf` (§5.3.2.1: 10 seconds).
pub const FAPI2_LEEWAY: std::time::Duration = std::time::Duration::from_secs(10);

/// One rule of the FAPI 2.0 profile for a resource server; [`id`](Self::id) is stable.
///
/// ```
/// use tower_jwt_guard::Fapi2Rule;
///
/// assert_eq!(Fapi2Rule::Algorithms.id(), "fapi2/algorithms");
/// assert_eq!(Fapi2Rule::ALL.len(), 8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fapi2Rule {
    /// Only PS256, ES256 and EdDSA, for tokens and for DPoP proofs.
    Algorithms,
    /// RSA keys of at least 2048 bits, EC keys of at least 224 (P-256 only, by the algorithms).
    KeySize,
    /// Sender-constrained tokens only: DPoP (RFC 9449) or certificate-bound (RFC 8705).
    SenderConstrained,
    /// The token in the `Authorization` header, never in the query string.
    TokenInHeader,
    /// `iat` and `nbf` up to 10 s in the future accepted, more refused.
    ClockSkew,
    /// `typ` `at+jwt` (RFC 9068) accepted.
    TokenType,
    /// JWKS keys sharing a `kid` told apart by `kty`, `use`, `alg` and `crv`.
    KeySelection,
    /// Introspection answers signed (RFC 9701, FAPI 2.0 Message Signing), when introspecting.
    SignedIntrospection,
}

impl Fapi2Rule {
    /// Every rule, in the order of the README's table.
    pub const ALL: [Fapi2Rule; 8] = [
        Fapi2Rule::Algorithms,
        Fapi2Rule::KeySize,
        Fapi2Rule::SenderConstrained,
        Fapi2Rule::TokenInHeader,
        Fapi2Rule::ClockSkew,
        Fapi2Rule::TokenType,
        Fapi2Rule::KeySelection,
        Fapi2Rule::SignedIntrospection,
    ];

    /// The rule's stable id, as [`ConfigError::Profile`] names it.
    ///
    /// ```
    /// assert_eq!(tower_jwt_guard::Fapi2Rule::ClockSkew.id(), "fapi2/clock-skew");
    /// ```
    pub const fn id(self) -> &'static str {
        match self {
            Fapi2Rule::Algorithms => "fapi2/algorithms",
            Fapi2Rule::KeySize => "fapi2/key-size",
            Fapi2Rule::SenderConstrained => "fapi2/sender-constrained",
            Fapi2Rule::TokenInHeader => "fapi2/token-in-header",
            Fapi2Rule::ClockSkew => "fapi2/clock-skew",
            Fapi2Rule::TokenType => "fapi2/token-type",
            Fapi2Rule::KeySelection => "fapi2/key-selection",
            Fapi2Rule::SignedIntrospection => "fapi2/signed-introspection",
        }
    }

    /// What the rule asks, and what enforces it.
    ///
    /// ```
    /// assert!(tower_jwt_guard::Fapi2Rule::Algorithms.requirement().contains("PS256"));
    /// ```
    pub const fn requirement(self) -> &'static str {
        match self {
            Fapi2Rule::Algorithms => "PS256, ES256, EdDSA only (token keys, allow-lists, DPoP proofs)",
            Fapi2Rule::KeySize => {
                "RSA >= 2048 bits (smaller keys refused when loaded, static or JWKS), EC P-256 only"
            }
            Fapi2Rule::SenderConstrained => {
                "DPoP or certificate-bound tokens only: a bearer token is refused (DPoP and Bearer challenges)"
            }
            Fapi2Rule::TokenInHeader => "Authorization header only: no query-string source",
            Fapi2Rule::ClockSkew => "leeway 10 s: iat/nbf up to 10 s ahead accepted, more refused",
            Fapi2Rule::TokenType => "typ at+jwt (RFC 9068) accepted: no other required typ",
            Fapi2Rule::KeySelection => "a kid shared in a JWKS is told apart by kty, use, alg and crv",
            Fapi2Rule::SignedIntrospection => {
                "introspection answers signed by the issuer (RFC 9701), unsigned ones refused"
            }
        }
    }
}

/// The profile as configured: its exceptions, each with its reason.
#[derive(Clone, Default)]
pub(crate) struct Fapi2Profile {
    exceptions: Vec<(Fapi2Rule, String)>,
}

impl fmt::Debug for Fapi2Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = f.debug_map();
        for rule in Fapi2Rule::ALL {
            match self.exception(rule) {
                Some(reason) => shown.entry(&rule.id(), &format_args!("EXCEPTED: {reason}")),
                None => shown.entry(&rule.id(), &rule.requirement()),
            };
        }
        shown.finish()
    }
}

/// What the profile reads from the builder at build.
pub(crate) struct Settings<'a> {
    pub(crate) issuers: &'a Issuers,
    pub(crate) sources: &'a [TokenSource],
    pub(crate) dpop: Option<&'a Dpop>,
    pub(crate) bindings: &'a [std::sync::Arc<dyn BindingPolicy>],
    /// With an introspector: whether its answers must be signed (RFC 9701).
    pub(crate) introspection_signed: Option<bool>,
}

impl Fapi2Profile {
    /// Leaves `rule` unenforced, for `reason` (shown by `Debug`).
    pub(crate) fn except(&mut self, rule: Fapi2Rule, reason: String) {
        self.exceptions.retain(|(r, _)| *r != rule);
        self.exceptions.push((rule, reason));
    }

    fn exception(&self, rule: Fapi2Rule) -> Option<&str> {
        self.exceptions.iter().find(|(r, _)| *r == rule).map(|(_, reason)| reason.as_str())
    }

    /// Whether the profile enforces `rule`.
    pub(crate) fn enforces(&self, rule: Fapi2Rule) -> bool {
        self.exception(rule).is_none()
    }

    /// Checks every enforced rule against the settings.
    pub(crate) fn check(&self, settings: &Settings<'_>) -> Result<(), ConfigError> {
        if self.exceptions.iter().any(|(_, reason)| reason.trim().is_empty()) {
            return Err(ConfigError::Invalid("a FAPI 2.0 exception needs a reason"));
        }
        let broken = |rule: Fapi2Rule, why: &'static str| -> Result<(), ConfigError> {
            if self.enforces(rule) {
                Err(ConfigError::Profile { rule: rule.id(), why })
            } else {
                Ok(())
            }
        };
        for issuer in settings.issuers.iter() {
            self.check_issuer(issuer, &broken)?;
        }
        if let Some(dpop) = settings.dpop {
            if dpop.algorithms.iter().any(|alg| !FAPI2_ALGORITHMS.contains(alg)) {
                broken(
                    Fapi2Rule::Algorithms,
                    "the DPoP proofs' algorithms must be PS256, ES256 or EdDSA: Dpop::algorithms(FAPI2_ALGORITHMS)",
                )?;
            }
        }
        let certificate = settings.bindings.iter().any(|policy| policy.confirms().contains(&"x5t#S256"));
        if settings.dpop.is_none() && !certificate {
            broken(
                Fapi2Rule::SenderConstrained,
                "tokens must be sender-constrained: configure dpop(..) or binding(CertificateBound::..)",
            )?;
        }
        if settings.sources.iter().any(|source| matches!(source, TokenSource::Query(_))) {
            broken(
                Fapi2Rule::TokenInHeader,
                "a token in the query string is refused: remove the query source",
            )?;
        }
        if settings.introspection_signed == Some(false) {
            broken(
                Fapi2Rule::SignedIntrospection,
                "introspection answers must be signed: IntrospectorBuilder::signed_responses(..)",
            )?;
        }
        if !settings.sources.contains(&TokenSource::Bearer) {
            broken(Fapi2Rule::TokenInHeader, "the Authorization header must be a token source")?;
        }
        Ok(())
    }

    fn check_issuer(
        &self,
        issuer: &TrustedIssuer,
        broken: &impl Fn(Fapi2Rule, &'static str) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        if Algorithm::ALL
            .iter()
            .any(|alg| issuer.algorithms.contains(*alg) && !FAPI2_ALGORITHMS.contains(alg))
        {
            broken(Fapi2Rule::Algorithms, "only PS256, ES256 and EdDSA keys and algorithms are allowed")?;
        }
        let rules = &issuer.rules;
        if rules.leeway != FAPI2_LEEWAY.as_secs() {
            broken(
                Fapi2Rule::ClockSkew,
                "the leeway must be 10 s (iat/nbf up to 10 s ahead accepted, more refused): leeway(FAPI2_LEEWAY)",
            )?;
        }
        if !rules.validate_nbf || !rules.reject_future_iat {
            broken(Fapi2Rule::ClockSkew, "nbf and a future iat must be checked")?;
        }
        let at_jwt = |typ: &str| {
            let typ = typ.strip_prefix("application/").unwrap_or(typ);
            typ.eq_ignore_ascii_case("at+jwt")
        };
        if rules.token_type.as_deref().is_some_and(|typ| !at_jwt(typ)) {
            broken(Fapi2Rule::TokenType, "a required typ other than at+jwt would refuse RFC 9068 tokens")?;
        }
        Ok(())
    }
}

/// The sender-constraint rule on the request path: a token bound neither by DPoP (`cnf.jkt`)
/// nor by a certificate (`cnf.x5t#S256`) is refused (`BINDING_MISMATCH`); the bound ones are
/// then checked by the DPoP policy or [`CertificateBound`](crate::CertificateBound).
pub(crate) struct SenderConstrained;

impl BindingPolicy for SenderConstrained {
    fn name(&self) -> &'static str {
        "sender-constrained"
    }

    fn check(
        &self,
        _request: &RequestHead<'_>,
        confirmation: Option<&Confirmation>,
    ) -> Result<(), AuthError> {
        let bound = confirmation.is_some_and(|cnf| cnf.jkt.is_some() || cnf.certificate_thumbprint.is_some());
        if bound {
            Ok(())
        } else {
            Err(AuthError::binding_mismatch("sender-constrained"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::binding::CertificateBound;
    use crate::guard::config::JwtAuth;
    use crate::guard::keys::{Issuer, VerificationKey};
    use std::time::Duration;

    const ED_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";

    fn ed_key() -> VerificationKey {
        VerificationKey::from_pem(ED_PEM.as_bytes(), None).unwrap()
    }

    fn dpop() -> Dpop {
        Dpop::allowed().public_url("https://api.example.com").algorithms(FAPI2_ALGORITHMS)
    }

    /// A configuration meeting every rule.
    fn base() -> crate::guard::config::JwtAuthBuilder {
        JwtAuth::builder().fapi2().key(ed_key()).issuer("https://as.example.com").audience("api").dpop(dpop())
    }

    fn rule_of(result: Result<JwtAuth, ConfigError>) -> &'static str {
        match result {
            Err(ConfigError::Profile { rule, .. }) => rule,
            other => panic!("expected a profile error, got {other:?}"),
        }
    }

    #[test]
    fn a_configuration_meeting_every_rule_builds_and_lists_the_rules() {
        let auth = base().build().unwrap();
        let shown = format!("{auth:?}");
        for rule in Fapi2Rule::ALL {
            assert!(shown.contains(rule.id()), "{shown}");
        }
        let certificate = JwtAuth::builder()
            .fapi2()
            .key(ed_key())
            .audience("api")
            .binding(CertificateBound::required())
            .build();
        assert!(certificate.is_ok());
    }

    #[test]
    fn each_broken_rule_is_a_build_error_naming_it() {
        let hs256 = JwtAuth::builder().fapi2().hmac_secret([7u8; 32]).audience("api").dpop(dpop());
        assert_eq!(rule_of(hs256.build()), "fapi2/algorithms");
        assert_eq!(
            rule_of(base().algorithms([Algorithm::RS256, Algorithm::EdDSA]).build()),
            "fapi2/algorithms"
        );
        let dpop_rs256 = base().dpop(Dpop::allowed().public_url("https://api.example.com"));
        assert_eq!(rule_of(dpop_rs256.build()), "fapi2/algorithms");
        let bearer = JwtAuth::builder().fapi2().key(ed_key()).audience("api");
        assert_eq!(rule_of(bearer.build()), "fapi2/sender-constrained");
        let query = base().sources([TokenSource::Bearer, TokenSource::query()]);
        assert_eq!(rule_of(query.build()), "fapi2/token-in-header");
        let cookie_only = base().sources([TokenSource::cookie("at")]);
        assert_eq!(rule_of(cookie_only.build()), "fapi2/token-in-header");
        assert_eq!(rule_of(base().leeway(Duration::from_secs(30)).build()), "fapi2/clock-skew");
        assert_eq!(rule_of(base().leeway(Duration::from_secs(5)).build()), "fapi2/clock-skew");
        assert_eq!(rule_of(base().validate_nbf(false).build()), "fapi2/clock-skew");
        assert_eq!(rule_of(base().reject_future_iat(false).build()), "fapi2/clock-skew");
        assert_eq!(rule_of(base().token_type("jwt").build()), "fapi2/token-type");
        assert!(base().token_type("at+jwt").build().is_ok());
        assert!(base().token_type("application/AT+JWT").build().is_ok());
        // A trusted issuer keeps the crate's default leeway (30 s) until told otherwise.
        let trusted = JwtAuth::builder()
            .fapi2()
            .dpop(dpop())
            .trust(Issuer::new("https://as.example.com").key(ed_key()).audience("api"));
        assert_eq!(rule_of(trusted.build()), "fapi2/clock-skew");
        let trusted = JwtAuth::builder()
            .fapi2()
            .dpop(dpop())
            .trust(Issuer::new("https://as.example.com").key(ed_key()).audience("api").leeway(FAPI2_LEEWAY));
        assert!(trusted.build().is_ok());
    }

    #[test]
    fn a_weak_rsa_key_is_refused_when_loaded() {
        // 1024-bit RSA: the crate's RSA verifiers take 2048 to 8192 bits, under any profile.
        let pem = include_str!("../../tests/data/rsa1024.pub.pem");
        assert!(VerificationKey::from_pem(pem.as_bytes(), Some(Algorithm::PS256)).is_err());
        assert!(VerificationKey::from_pem(pem.as_bytes(), None).is_err());
        for pem in [
            include_str!("../../tests/data/rsa2048.pub.pem"),
            include_str!("../../tests/data/rsa2048.pkcs1.pem"),
        ] {
            let key = VerificationKey::from_pem(pem.as_bytes(), Some(Algorithm::PS256)).unwrap();
            let auth = JwtAuth::builder().fapi2().key(key).audience("api").dpop(dpop()).build();
            assert!(auth.is_ok());
        }
    }

    #[test]
    fn an_exception_lifts_one_rule_with_its_reason_shown() {
        let query = base()
            .sources([TokenSource::Bearer, TokenSource::query()])
            .fapi2_exception(Fapi2Rule::TokenInHeader, "legacy SSE client, until 2027-01");
        let auth = query.build().unwrap();
        assert!(format!("{auth:?}").contains("EXCEPTED: legacy SSE client, until 2027-01"));
        let silent = base().fapi2_exception(Fapi2Rule::ClockSkew, " ");
        assert!(matches!(silent.build(), Err(ConfigError::Invalid(_))));
        // The exception lifts that rule only.
        let two = base()
            .leeway(Duration::from_secs(30))
            .sources([TokenSource::query()])
            .fapi2_exception(Fapi2Rule::TokenInHeader, "legacy");
        assert_eq!(rule_of(two.build()), "fapi2/clock-skew");
    }

    #[test]
    fn the_error_names_the_rule() {
        let err = JwtAuth::builder().fapi2().hmac_secret([7u8; 32]).dpop(dpop()).build().unwrap_err();
        assert!(err.to_string().starts_with("profile rule fapi2/algorithms is broken: "), "{err}");
    }
}
