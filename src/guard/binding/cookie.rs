//! [`CookieFingerprint`]: the OWASP token-sidejacking defence, a secret the browser keeps in
//! a hardened cookie that scripts cannot read.

use http::HeaderValue;

use super::{
    base64url, claims_digest, sha256, sha256_b64, BindingPolicy, BindingUnavailable, NewBinding, RequestHead,
};
use crate::primitives::claims::Confirmation;
use crate::primitives::error::AuthError;
use crate::primitives::error::ConfigError;

const NAME: &str = "cookie_fingerprint";

/// Binds tokens to a random secret held in an `HttpOnly; Secure; SameSite=Strict` cookie
/// (claim `cnf.cfp`, the secret's SHA-256).
///
/// When a token is minted, the policy draws 256 random bits, puts their SHA-256 (base64url)
/// in the token, and hands the [`TokenIssuer`](crate::TokenIssuer) the `Set-Cookie` to send:
/// `__Secure-Fgp=<secret>; Path=/; Max-Age=<token lifetime>; HttpOnly; Secure; SameSite=Strict`.
/// The cookie name must carry the `__Secure-` or `__Host-` prefix, so browsers accept it only
/// over HTTPS.
///
/// The cookie is read by the crate's one cookie parser: quotes around the value are removed, and
/// a request that carries the cookie twice is refused (`BINDING_MISMATCH`), never matched against
/// one of them: a sibling subdomain can set a second `__Secure-` cookie of the name.
///
/// What it stops: a token stolen by script (XSS, a leaked log or storage) and replayed
/// without the cookie, which scripts cannot read. What it does not stop: a thief who controls
/// the browser itself (malware, a stolen unlocked device), which sends the cookie anyway.
///
/// ```
/// use tower_jwt_guard::binding::{BindingPolicy, CookieFingerprint, NewBinding, RequestHead};
///
/// let policy = CookieFingerprint::new();
/// let mut binding = NewBinding::new(std::time::Duration::from_secs(900));
/// policy.bind(&RequestHead::of(&http::Request::new(())), &mut binding).unwrap();
/// let set_cookie = binding.set_cookies()[0].to_str().unwrap().to_owned();
/// assert!(set_cookie.ends_with("; Path=/; Max-Age=900; HttpOnly; Secure; SameSite=Strict"));
///
/// // The browser sends the cookie back with each request.
/// let cookie = set_cookie.split(';').next().unwrap();
/// let with = http::Request::builder().header("cookie", cookie).body(()).unwrap();
/// assert!(policy.check(&RequestHead::of(&with), Some(binding.confirmation())).is_ok());
/// let without = http::Request::new(());
/// let err = policy.check(&RequestHead::of(&without), Some(binding.confirmation())).unwrap_err();
/// assert_eq!(err.binding(), Some("cookie_fingerprint"));
/// ```
#[derive(Debug, Clone)]
pub struct CookieFingerprint {
    cookie: String,
}

impl Default for CookieFingerprint {
    fn default() -> Self {
        CookieFingerprint::new()
    }
}

impl CookieFingerprint {
    /// The default cookie name (OWASP's).
    pub const DEFAULT_COOKIE: &'static str = "__Secure-Fgp";

    /// A fingerprint in the cookie `__Secure-Fgp`.
    pub fn new() -> Self {
        CookieFingerprint { cookie: Self::DEFAULT_COOKIE.to_string() }
    }

    /// A fingerprint in the cookie `name`, which must start with `__Secure-` or `__Host-`.
    ///
    /// ```
    /// use tower_jwt_guard::binding::CookieFingerprint;
    /// assert!(CookieFingerprint::with_cookie("__Host-fp").is_ok());
    /// assert!(CookieFingerprint::with_cookie("fp").is_err());
    /// assert!(CookieFingerprint::with_cookie("__Secure-a;b").is_err());
    /// ```
    pub fn with_cookie(name: impl Into<String>) -> Result<Self, ConfigError> {
        let cookie = name.into();
        let hardened = cookie.starts_with("__Secure-") || cookie.starts_with("__Host-");
        // RFC 6265 cookie-name: a token (visible ASCII without separators).
        let token = cookie.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !hardened || !token {
            return Err(ConfigError::Invalid(
                "the fingerprint cookie's name must be a token starting with __Secure- or __Host-",
            ));
        }
        Ok(CookieFingerprint { cookie })
    }

    /// The cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }
}

impl BindingPolicy for CookieFingerprint {
    fn name(&self) -> &'static str {
        NAME
    }

    fn confirms(&self) -> &'static [&'static str] {
        &["cfp"]
    }

    fn check(&self, request: &RequestHead<'_>, confirmation: Option<&Confirmation>) -> Result<(), AuthError> {
        let Some(claim) = confirmation.and_then(|cnf| cnf.cookie_fingerprint.as_deref()) else {
            return Err(AuthError::binding_mismatch(NAME));
        };
        // Absent, empty, repeated (ambiguous) or not text: no secret to compare.
        match crate::primitives::cookie::find(request.headers, &self.cookie) {
            Ok(Some(secret)) if claims_digest(claim, &sha256(secret.as_bytes())) => Ok(()),
            _ => Err(AuthError::binding_mismatch(NAME)),
        }
    }

    fn bind(&self, _request: &RequestHead<'_>, binding: &mut NewBinding) -> Result<(), BindingUnavailable> {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret)
            .map_err(|_| BindingUnavailable::new(NAME, "the random generator failed"))?;
        let value = base64url(&secret);
        let cookie = format!(
            "{}={value}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
            self.cookie,
            binding.token_ttl().as_secs()
        );
        let mut cookie = HeaderValue::try_from(cookie)
            .map_err(|_| BindingUnavailable::new(NAME, "the cookie is not a valid header value"))?;
        cookie.set_sensitive(true);
        binding.confirmation_mut().cookie_fingerprint = Some(sha256_b64(value.as_bytes()));
        binding.add_set_cookie(cookie);
        Ok(())
    }
}
