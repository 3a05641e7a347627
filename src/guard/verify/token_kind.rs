//! Token kinds: [`TokenKind`], the verifying half (what a token of a kind must be, and which
//! accepted kind a token is). The minting half, [`TokenKind::token_issuer`], is in `issue`.

use std::fmt;
use std::sync::Arc;

use crate::guard::verify::RequiredClaim;
use crate::primitives::claims::TokenFacts;
use crate::primitives::error::ConfigError;
use crate::primitives::error::{AuthError, ErrorKind};

/// One kind of token (a profile): a name, its explicit `typ`, and what a token of that kind
/// must carry. Kinds cannot be confused with one another.
///
/// RFC 8725 §3.12: when one issuer (or one key) signs several kinds of JWT — a user's access
/// token, a service-to-service token, an ID token — each kind must be told apart by its
/// explicit `typ`, its audience and the claims it must carry, so that a token of one kind never
/// validates where another kind is expected.
///
/// A configuration that [`accept`](crate::JwtAuthBuilder::accept)s kinds lets a token through
/// only when it is exactly one of them: its header `typ` names the kind, and it has that kind's
/// audience, issuer and required claims. Two accepted kinds may not share a `typ`.
/// The matched kind is in [`TokenFacts::kind`](crate::TokenFacts::kind).
///
/// ```
/// use tower_jwt_guard::issue::SigningKey;
/// use tower_jwt_guard::{Algorithm, JwtAuth, RequiredClaim, TokenKind};
///
/// let user = TokenKind::new("user", "at+jwt").audience("api").require([RequiredClaim::Sub]);
/// let service = TokenKind::new("service", "service+jwt").audience("orders").require_claim("scope");
///
/// // The orders service accepts service tokens only.
/// let orders = JwtAuth::builder().hmac_secret([7u8; 32]).accept(service.clone()).build()?;
/// // Both kinds, minted by the same key, each with its own type and audience.
/// let key = SigningKey::hmac(Algorithm::HS256, [7u8; 32])?;
/// let user_token = user.token_issuer(key.clone()).build().mint("alice", &serde_json::json!({}))?;
/// let service_token =
///     service.token_issuer(key).build().mint("gateway", &serde_json::json!({ "scope": "read:orders" }))?;
/// # let _ = (orders, user_token, service_token);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ```
/// use tower_jwt_guard::{RequiredClaim, TokenKind};
///
/// let kind = TokenKind::new("service", "service+jwt")
///     .audience("orders")
///     .issuer("https://gateway.internal")
///     .require([RequiredClaim::Sub, RequiredClaim::Jti])
///     .require_claim("scope");
/// assert_eq!(kind.name(), "service");
/// assert_eq!(kind.token_type(), "service+jwt");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKind {
    name: Arc<str>,
    typ: String,
    audiences: Vec<String>,
    issuers: Vec<String>,
    required: Vec<RequiredClaim>,
    required_names: Vec<String>,
}

impl fmt::Debug for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKind")
            .field("name", &self.name)
            .field("typ", &self.typ)
            .field("audiences", &self.audiences)
            .field("issuers", &self.issuers)
            .field("required", &self.required)
            .field("required_claims", &self.required_names)
            .finish()
    }
}

impl TokenKind {
    /// A kind called `name` whose tokens carry the header `typ` (compared as RFC 7515 says:
    /// case-insensitively, `application/` optional). Tokens of every kind need `exp`.
    ///
    /// Choose a `typ` that names the kind (`at+jwt` for RFC 9068 access tokens, your own
    /// `service+jwt`, ...): the generic `JWT` cannot tell kinds apart.
    ///
    /// ```
    /// let kind = tower_jwt_guard::TokenKind::new("user", "at+jwt");
    /// assert_eq!(kind.token_type(), "at+jwt");
    /// ```
    pub fn new(name: impl Into<String>, typ: impl Into<String>) -> Self {
        TokenKind {
            name: Arc::from(name.into()),
            typ: typ.into(),
            audiences: Vec::new(),
            issuers: Vec::new(),
            required: vec![RequiredClaim::Exp],
            required_names: Vec::new(),
        }
    }

    /// Tokens of this kind must be for this audience (`aud`); may be called several times
    /// (any one of them matches).
    ///
    /// A kind's audiences add to the layer's ([`JwtAuthBuilder::audience`](crate::JwtAuthBuilder::audience)):
    /// with both set, a token must name one of each. A kind without an audience of its own
    /// adds no condition: the layer's audiences decide, and with none configured there either,
    /// a token that names an audience is refused (RFC 7519 §4.1.3) unless the layer
    /// [`accept_any_audience`](crate::JwtAuthBuilder::accept_any_audience).
    ///
    /// ```
    /// let kind = tower_jwt_guard::TokenKind::new("service", "service+jwt").audience("orders");
    /// # let _ = kind;
    /// ```
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Tokens of this kind must come from this issuer (`iss`); may be called several times.
    ///
    /// A kind's issuers add to the layer's ([`JwtAuthBuilder::issuer`](crate::JwtAuthBuilder::issuer)):
    /// with both set, `iss` must be in both lists (a kind none of whose issuers the layer
    /// accepts is a configuration error). A kind without an issuer of its own adds no
    /// condition: the layer's issuers decide.
    ///
    /// ```
    /// let kind = tower_jwt_guard::TokenKind::new("user", "at+jwt").issuer("https://auth.example.com");
    /// # let _ = kind;
    /// ```
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Registered claims tokens of this kind must carry, besides `exp`.
    ///
    /// ```
    /// use tower_jwt_guard::{RequiredClaim, TokenKind};
    /// let kind = TokenKind::new("user", "at+jwt").require([RequiredClaim::Sub, RequiredClaim::Jti]);
    /// # let _ = kind;
    /// ```
    pub fn require(mut self, claims: impl IntoIterator<Item = RequiredClaim>) -> Self {
        for claim in claims {
            if !self.required.contains(&claim) {
                self.required.push(claim);
            }
        }
        self
    }

    /// A claim of any name (`scope`, `client_id`, `tenant`, ...) tokens of this kind must carry
    /// (any JSON value but `null`).
    ///
    /// ```
    /// let kind = tower_jwt_guard::TokenKind::new("service", "service+jwt").require_claim("client_id");
    /// # let _ = kind;
    /// ```
    pub fn require_claim(mut self, name: impl Into<String>) -> Self {
        self.required_names.push(name.into());
        self
    }

    /// The kind's name, as found in [`TokenFacts::kind`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header `typ` of this kind's tokens.
    pub fn token_type(&self) -> &str {
        &self.typ
    }

    /// The audiences of this kind, in the order given.
    pub(crate) fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The issuers of this kind, in the order given.
    pub(crate) fn issuers(&self) -> &[String] {
        &self.issuers
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.typ.trim().is_empty() {
            return Err(ConfigError::Invalid("a token kind needs a non-empty typ"));
        }
        if self.name.is_empty() {
            return Err(ConfigError::Invalid("a token kind needs a name"));
        }
        Ok(())
    }

    pub(crate) fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    pub(crate) fn needs_claim_names(&self) -> bool {
        !self.required_names.is_empty()
    }

    /// Whether a token whose header `typ` is `typ` claims to be of this kind.
    pub(crate) fn is_typed(&self, typ: Option<&str>) -> bool {
        typ.is_some_and(|typ| crate::guard::verify::same_media_type(typ, &self.typ))
    }

    /// The kind's own issuers and audiences (empty: not configured here), checked together
    /// with the layer's by `ClaimRules::check_static`.
    pub(crate) fn recipients(&self) -> (&[String], &[String]) {
        (&self.issuers, &self.audiences)
    }

    /// The claims this kind requires, over a token that claims to be of it. `payload` is the
    /// claims set (JSON), read only when the kind requires claims by name.
    pub(crate) fn check(&self, facts: &TokenFacts, payload: &[u8]) -> Result<(), AuthError> {
        let refused = |message: &'static str| AuthError::with_message(ErrorKind::InvalidToken, message);
        if let Some(claim) = self.required.iter().find(|claim| !claim.is_present(facts)) {
            return Err(AuthError::with_message(
                ErrorKind::InvalidToken,
                format!("the token lacks the claim {} its kind requires", claim.name()),
            ));
        }
        if self.needs_claim_names() {
            let names = claim_names(payload).ok_or_else(|| refused("the token claims are malformed"))?;
            if let Some(missing) = self.required_names.iter().find(|name| !names.iter().any(|n| n == *name)) {
                // The name is the server's own configuration, never the client's input.
                return Err(AuthError::with_message(
                    ErrorKind::InvalidToken,
                    format!("the token lacks the claim {missing} its kind requires"),
                ));
            }
        }
        Ok(())
    }
}

/// The names of the claims that are present and not `null`.
fn claim_names(payload: &[u8]) -> Option<Vec<String>> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(payload).ok()?;
    Some(map.into_iter().filter(|(_, value)| !value.is_null()).map(|(name, _)| name).collect())
}

/// The kinds a configuration accepts; empty means "any token" (the kinds are not used).
#[derive(Debug, Clone, Default)]
pub(crate) struct AcceptedKinds {
    kinds: Vec<TokenKind>,
}

impl AcceptedKinds {
    pub(crate) fn push(&mut self, kind: TokenKind) {
        self.kinds.push(kind);
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &TokenKind> {
        self.kinds.iter()
    }

    /// `layer_issuers`: the issuers the layer accepts (empty: any); a kind none of whose
    /// issuers is among them would refuse every token.
    pub(crate) fn validate(&self, layer_issuers: &[String]) -> Result<(), ConfigError> {
        for (index, kind) in self.kinds.iter().enumerate() {
            kind.validate()?;
            if !layer_issuers.is_empty()
                && !kind.issuers.is_empty()
                && !kind.issuers.iter().any(|issuer| layer_issuers.contains(issuer))
            {
                return Err(ConfigError::Invalid("a token kind accepts none of the layer's issuers"));
            }
            let later = &self.kinds[index + 1..];
            if later.iter().any(|other| crate::guard::verify::same_media_type(&other.typ, &kind.typ)) {
                return Err(ConfigError::Invalid("two accepted token kinds share a typ"));
            }
            if later.iter().any(|other| other.name == kind.name) {
                return Err(ConfigError::Invalid("two accepted token kinds share a name"));
            }
        }
        Ok(())
    }

    /// The accepted kind `facts`' `typ` names, or the rejection; `Ok(None)` when no kinds are
    /// configured. The kind's checks are the caller's ([`TokenKind::check`], and its issuers and
    /// audiences with the layer's).
    pub(crate) fn classify(&self, facts: &TokenFacts) -> Result<Option<&TokenKind>, AuthError> {
        if self.kinds.is_empty() {
            return Ok(None);
        }
        self.kinds.iter().find(|kind| kind.is_typed(facts.token_type.as_deref())).map(Some).ok_or_else(|| {
            AuthError::with_message(ErrorKind::InvalidToken, "the token's kind is not accepted")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(typ: &str, aud: &str) -> TokenFacts {
        TokenFacts {
            token_type: Some(typ.into()),
            audience: vec![aud.into()],
            expires_at: Some(1),
            subject: Some("alice".into()),
            ..TokenFacts::default()
        }
    }

    /// The static checks of a configuration that accepts `kinds` (and sets nothing else).
    fn classify(
        kinds: &AcceptedKinds,
        facts: &TokenFacts,
        payload: &[u8],
        accept_any_audience: bool,
    ) -> Result<Option<Arc<str>>, AuthError> {
        let rules = crate::guard::verify::ClaimRules {
            kinds: kinds.clone(),
            accept_any_audience,
            ..Default::default()
        };
        rules.check_static(facts, payload)
    }

    fn kinds() -> AcceptedKinds {
        let mut kinds = AcceptedKinds::default();
        kinds.push(TokenKind::new("user", "at+jwt").audience("api").require([RequiredClaim::Sub]));
        kinds.push(TokenKind::new("service", "service+jwt").audience("orders").require_claim("scope"));
        kinds
    }

    #[test]
    fn a_token_is_exactly_the_kind_its_type_names() {
        let kinds = kinds();
        let user = classify(&kinds, &facts("application/AT+JWT", "api"), b"{}", false).unwrap();
        assert_eq!(user.as_deref(), Some("user"));
        // A user-typed token for the service audience is not a service token.
        assert!(classify(&kinds, &facts("at+jwt", "orders"), b"{}", false).is_err());
        // Service kind needs its scope claim.
        assert!(classify(&kinds, &facts("service+jwt", "orders"), br#"{"scope":null}"#, false).is_err());
        let service = classify(&kinds, &facts("service+jwt", "orders"), br#"{"scope":"x"}"#, false).unwrap();
        assert_eq!(service.as_deref(), Some("service"));
        for typ in ["JWT", "jwt", "at+jwt+x", ""] {
            assert!(classify(&kinds, &facts(typ, "api"), b"{}", false).is_err(), "{typ}");
        }
        let untyped = TokenFacts { token_type: None, ..facts("", "api") };
        assert!(classify(&kinds, &untyped, b"{}", false).is_err());
        assert_eq!(classify(&AcceptedKinds::default(), &untyped, b"{}", true).unwrap(), None);
    }

    #[test]
    fn kinds_that_could_be_confused_are_refused() {
        let mut kinds = AcceptedKinds::default();
        kinds.push(TokenKind::new("a", "at+jwt"));
        kinds.push(TokenKind::new("b", "application/at+JWT"));
        assert!(kinds.validate(&[]).is_err());
        let mut kinds = AcceptedKinds::default();
        kinds.push(TokenKind::new("a", " "));
        assert!(kinds.validate(&[]).is_err());
        assert!(super::tests::kinds().validate(&[]).is_ok());
    }
}
