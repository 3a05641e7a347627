//! [`TokenIssuer`]: mints access tokens that this crate's layer accepts.
//!
//! The issuer adds the registered claims (`iss`, `sub`, `aud`, `iat`, `nbf`, `exp`, a random
//! `jti`) to your claims `C`. The same configuration that verifies is the natural source of the
//! issuer's settings: the same issuer, audience and token type.
//!
//! Given the layer's binding policies ([`TokenIssuerBuilder::bindings_of`]), the issuer binds
//! every token it mints for a request ([`TokenIssuer::mint_for`]) with the code the layer
//! checks it with, and returns the cookies a policy needs set. After a second factor,
//! [`TokenIssuer::step_up`] re-issues the token with the method added to `amr` and a fresh
//! `auth_time`. Binding may need a store's answer (a DPoP proof's replay check in Redis): the
//! methods that bind are `async`, and sign only once every check has passed.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use jsonwebtoken::Header;
use serde::Serialize;
use serde_json::{Map, Value};

use super::SigningKey;
use crate::guard::binding::{BindingPolicy, BindingUnavailable, NewBinding, RequestHead};
use crate::guard::config::JwtAuth;
use crate::guard::context::AuthContext;
use crate::primitives::claims::{Confirmation, TokenFacts};
use crate::primitives::clock;

/// The default lifetime of an access token: 15 minutes.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// A freshly minted token and what the caller needs to hand it out.
#[derive(Clone)]
#[non_exhaustive]
pub struct MintedToken {
    /// The compact token: a JWS, or a JWE when the issuer encrypts (feature `jwe`).
    pub token: String,
    /// Its unique id (`jti`), for revocation.
    pub jti: String,
    /// Its lifetime in seconds (the OAuth `expires_in`).
    pub expires_in: u64,
    /// Its expiry, seconds since the Unix epoch.
    pub expires_at: u64,
    /// `Set-Cookie` values the response that hands out the token must carry (the
    /// [`CookieFingerprint`](crate::binding::CookieFingerprint)'s hardened cookie); sensitive.
    pub set_cookies: Vec<HeaderValue>,
    /// The OAuth `token_type` to answer (RFC 9449 §5): `"DPoP"` for a token bound to a DPoP
    /// key (`cnf.jkt`), `"Bearer"` otherwise.
    pub token_type: &'static str,
    /// Its `cnf` claims: what the token is bound to. A login hands its sender constraint (the
    /// DPoP key, the client certificate) to the refresh-token family, so that refreshes need
    /// the same ([`SenderConstraint::of`](crate::refresh::SenderConstraint::of)).
    pub confirmation: Confirmation,
}

impl fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedToken")
            .field("token", &"REDACTED")
            .field("jti", &self.jti)
            .field("expires_in", &self.expires_in)
            .field("set_cookies", &self.set_cookies.len())
            .finish()
    }
}

/// Why a token could not be minted.
#[derive(Debug)]
#[non_exhaustive]
pub enum IssueError {
    /// The claims did not serialise to a JSON object.
    ClaimsNotAnObject,
    /// Serialising or signing failed.
    Signing,
    /// A binding policy cannot bind the token to the request (or there is no request:
    /// [`mint`](TokenIssuer::mint) on an issuer with binding policies).
    Binding(BindingUnavailable),
    /// A store a binding policy needs cannot answer (the DPoP replay store): fail closed, the
    /// client may try again (a token endpoint answers 503).
    Unavailable(BindingUnavailable),
    /// The request's DPoP proof lacks the server's nonce (RFC 9449 §8): a token endpoint answers
    /// 400 `{"error": "use_dpop_nonce"}` with `nonce` in a `DPoP-Nonce` header, and the client
    /// signs a new proof with it.
    UseDpopNonce {
        /// The nonce the client must put in its next proof.
        nonce: String,
    },
    /// A step-up of a token without a subject.
    NoSubject,
    /// Encrypting the token failed (feature `jwe`: the system's randomness failed).
    Encryption,
    /// A step-up of a token of another issuer: its `iss` is not this issuer's (or one of the
    /// two has no `iss`).
    OtherIssuer,
}

impl fmt::Display for IssueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssueError::ClaimsNotAnObject => f.write_str("the claims must serialise to a json object"),
            IssueError::Signing => f.write_str("the token could not be signed"),
            IssueError::Binding(err) | IssueError::Unavailable(err) => err.fmt(f),
            IssueError::NoSubject => f.write_str("the token to step up has no subject"),
            IssueError::Encryption => f.write_str("the token could not be encrypted"),
            IssueError::OtherIssuer => f.write_str("the token to step up was issued by another issuer"),
            IssueError::UseDpopNonce { .. } => f.write_str("the DPoP proof lacks the server's nonce"),
        }
    }
}

impl std::error::Error for IssueError {}

impl From<BindingUnavailable> for IssueError {
    fn from(err: BindingUnavailable) -> Self {
        if err.is_store_unavailable() {
            return IssueError::Unavailable(err);
        }
        match err.into_dpop_nonce() {
            Ok(nonce) => IssueError::UseDpopNonce { nonce },
            Err(err) => IssueError::Binding(err),
        }
    }
}

/// The binding of a token not yet minted, made by [`TokenIssuer::bind`]: its `cnf` claims and
/// cookies, every policy's check done (the DPoP proof verified and recorded). Mint with
/// [`TokenIssuer::mint_bound`]: a refresh endpoint binds first, checks that the refresh token
/// belongs to the same key, and only then signs.
pub struct RequestBinding(NewBinding);

impl RequestBinding {
    /// The `cnf` claims the token will carry.
    pub fn confirmation(&self) -> &Confirmation {
        self.0.confirmation()
    }
}

impl fmt::Debug for RequestBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestBinding").field(&self.0).finish()
    }
}

/// Mints access tokens.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tower_jwt_guard::issue::{SigningKey, TokenIssuer};
/// use tower_jwt_guard::Algorithm;
///
/// #[derive(Serialize, Deserialize)]
/// struct Profile { role: String }
///
/// let secret = [42u8; 32];
/// let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, secret)?)
///     .issuer("https://auth.example.com")
///     .audience("api")
///     .build();
/// let minted = issuer.mint("alice", &Profile { role: "admin".into() }).unwrap();
/// assert_eq!(minted.token.split('.').count(), 3);
/// assert_eq!(minted.expires_in, 15 * 60);
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct TokenIssuer {
    key: SigningKey,
    header: Header,
    issuer: Option<String>,
    audience: Vec<String>,
    ttl: Duration,
    bindings: Vec<Arc<dyn BindingPolicy>>,
    #[cfg(feature = "jwe")]
    encryption: Option<Arc<crate::guard::verify::jwe::EncryptionKey>>,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("key", &self.key)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .field("bindings", &self.bindings.iter().map(|b| b.name()).collect::<Vec<_>>())
            .finish()
    }
}

/// Builds a [`TokenIssuer`].
pub struct TokenIssuerBuilder {
    key: SigningKey,
    issuer: Option<String>,
    audience: Vec<String>,
    ttl: Duration,
    token_type: Option<String>,
    bindings: Vec<Arc<dyn BindingPolicy>>,
    #[cfg(feature = "jwe")]
    encryption: Option<Arc<crate::guard::verify::jwe::EncryptionKey>>,
}

impl fmt::Debug for TokenIssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuerBuilder")
            .field("key", &self.key)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .field("bindings", &self.bindings.iter().map(|b| b.name()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TokenIssuerBuilder {
    /// The `iss` of every token.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Adds an audience (`aud`); one audience is written as a string, several as an array.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience.push(audience.into());
        self
    }

    /// The lifetime of minted tokens (default 15 minutes).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The header's `typ`, e.g. `at+jwt` (RFC 9068); default `JWT`.
    pub fn token_type(mut self, typ: impl Into<String>) -> Self {
        self.token_type = Some(typ.into());
        self
    }

    /// Binds every token minted with [`mint_for`](TokenIssuer::mint_for) with this policy.
    /// Prefer [`bindings_of`](Self::bindings_of): the layer must check the same policies.
    pub fn binding(mut self, policy: impl BindingPolicy) -> Self {
        self.bindings.push(Arc::new(policy));
        self
    }

    /// Binds every token minted with [`mint_for`](TokenIssuer::mint_for) with the binding
    /// policies of `auth`: the very policies its layer checks.
    ///
    /// ```
    /// use tower_jwt_guard::binding::DeviceFingerprint;
    /// use tower_jwt_guard::issue::{SigningKey, TokenIssuer};
    /// use tower_jwt_guard::{Algorithm, JwtAuth};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_jwt_guard::ConfigError> {
    /// let secret = [42u8; 32];
    /// let auth = JwtAuth::builder().hmac_secret(secret).binding(DeviceFingerprint::new()).build()?;
    /// let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, secret)?).bindings_of(&auth).build();
    /// // Binding needs the request: `mint` refuses, `mint_for` binds.
    /// assert!(issuer.mint("alice", &serde_json::json!({})).is_err());
    /// let request = http::Request::builder().header("user-agent", "app/1").body(()).unwrap();
    /// assert!(issuer.mint_for(&request, "alice", &serde_json::json!({})).await.is_ok());
    /// # Ok(()) }
    /// ```
    pub fn bindings_of(mut self, auth: &JwtAuth) -> Self {
        self.bindings.extend(auth.shared.bindings.iter().cloned());
        if let Some(dpop) = &auth.shared.dpop {
            self.bindings.push(Arc::clone(dpop) as Arc<dyn BindingPolicy>);
        }
        self
    }

    /// Encrypts every token minted (JWE, feature `jwe`) to the recipient of `key`:
    /// - with a shared secret (`dir`, `A*KW`, `A*GCMKW`) the claims set itself is encrypted,
    ///   as the JWT guide's `EncryptJWT` example does (the recipient authenticates it by the
    ///   shared secret; the signing key is not used);
    /// - with the recipient's public key (`RSA-OAEP*`, `ECDH-ES*`) the signed token is
    ///   encrypted (sign-then-encrypt, `cty: "JWT"`): anyone can encrypt to a public key, so
    ///   the signature is what the recipient trusts.
    ///
    /// ```
    /// use tower_jwt_guard::issue::{SigningKey, TokenIssuer};
    /// use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, EncryptionKey, KeyManagement};
    /// use tower_jwt_guard::{Algorithm, JwtAuth};
    ///
    /// let (signing, encryption) = ([42u8; 32], [7u8; 32]);
    /// let (alg, enc) = (KeyManagement::A256Kw, ContentEncryption::A256Gcm);
    /// let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, signing)?)
    ///     .encrypt_to(EncryptionKey::secret(alg, enc, encryption)?)
    ///     .build();
    /// let minted = issuer.mint("alice", &serde_json::json!({})).unwrap();
    /// assert_eq!(minted.token.split('.').count(), 5);
    /// // The layer that holds the same secret accepts it.
    /// let auth = JwtAuth::builder()
    ///     .hmac_secret(signing)
    ///     .decryption_key(DecryptionKey::secret(alg, enc, encryption)?)
    ///     .build()?;
    /// # let _ = auth;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    #[cfg(feature = "jwe")]
    pub fn encrypt_to(mut self, key: crate::guard::verify::jwe::EncryptionKey) -> Self {
        self.encryption = Some(Arc::new(key));
        self
    }

    /// Freezes the settings.
    pub fn build(self) -> TokenIssuer {
        let mut header = Header::new(self.key.algorithm.to_jsonwebtoken());
        header.kid = self.key.kid.clone();
        if let Some(typ) = self.token_type {
            header.typ = Some(typ);
        }
        TokenIssuer {
            key: self.key,
            header,
            issuer: self.issuer,
            audience: self.audience,
            ttl: self.ttl,
            bindings: self.bindings,
            #[cfg(feature = "jwe")]
            encryption: self.encryption,
        }
    }
}

impl TokenIssuer {
    /// Starts a builder around the signing key.
    pub fn builder(key: SigningKey) -> TokenIssuerBuilder {
        TokenIssuerBuilder {
            key,
            issuer: None,
            audience: Vec::new(),
            ttl: DEFAULT_TOKEN_TTL,
            token_type: None,
            bindings: Vec::new(),
            #[cfg(feature = "jwe")]
            encryption: None,
        }
    }

    /// The lifetime of the tokens this issuer mints.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Mints a token for `subject` carrying `claims` plus the registered claims.
    ///
    /// An issuer with binding policies refuses (`IssueError::Binding`): use
    /// [`mint_for`](Self::mint_for), which binds the token to the request.
    pub fn mint<C: Serialize + ?Sized>(&self, subject: &str, claims: &C) -> Result<MintedToken, IssueError> {
        self.mint_with(subject, claims, |_| {})
    }

    /// Like [`mint`](Self::mint), with a last look at the claim set before it is signed
    /// (to add `amr`, `auth_time`, ...).
    pub fn mint_with<C, F>(&self, subject: &str, claims: &C, extra: F) -> Result<MintedToken, IssueError>
    where
        C: Serialize + ?Sized,
        F: FnOnce(&mut Map<String, Value>),
    {
        if let Some(policy) = self.bindings.first() {
            return Err(IssueError::Binding(BindingUnavailable::new(
                policy.name(),
                "a bound token must be minted for a request (mint_for)",
            )));
        }
        self.sign(subject, claims, NewBinding::new(self.ttl), extra)
    }

    /// The binding policies of this issuer.
    pub fn binding_names(&self) -> Vec<&'static str> {
        self.bindings.iter().map(|b| b.name()).collect()
    }

    /// Mints a token for `subject` carrying `claims`, the registered claims, and the binding
    /// claims (`cnf`) of every binding policy, computed from `request` (an
    /// `http::Request` or its `Parts`). Send the returned
    /// [`set_cookies`](MintedToken::set_cookies) with the response.
    ///
    /// The policies read the request at once; a check whose answer comes later (a DPoP proof's
    /// replay check in Redis) is awaited before the token is signed: the future does not borrow
    /// the request.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use tower_jwt_guard::binding::{ClientIpBinding, CookieFingerprint, PeerAddr};
    /// use tower_jwt_guard::issue::{SigningKey, TokenIssuer};
    /// use tower_jwt_guard::Algorithm;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_jwt_guard::ConfigError> {
    /// let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [42u8; 32])?)
    ///     .binding(ClientIpBinding::new())
    ///     .binding(CookieFingerprint::new())
    ///     .build();
    /// let mut login = http::Request::new(());
    /// login.extensions_mut().insert(PeerAddr("192.0.2.8:5000".parse::<SocketAddr>().unwrap()));
    /// let minted = issuer.mint_for(&login, "alice", &serde_json::json!({ "role": "admin" })).await.unwrap();
    /// assert_eq!(minted.set_cookies.len(), 1); // the __Secure-Fgp cookie
    /// assert!(minted.confirmation.client_ip.is_some());
    ///
    /// // Without a peer address the client IP cannot be bound: refused, not silently unbound.
    /// assert!(issuer.mint_for(&http::Request::new(()), "alice", &serde_json::json!({})).await.is_err());
    /// # Ok(()) }
    /// ```
    pub fn mint_for<'a, 'r, C: Serialize + ?Sized>(
        &'a self,
        request: impl Into<RequestHead<'r>>,
        subject: &'a str,
        claims: &'a C,
    ) -> impl Future<Output = Result<MintedToken, IssueError>> + 'a {
        self.mint_for_with(request, subject, claims, |_| {})
    }

    /// Like [`mint_for`](Self::mint_for), with a last look at the claim set before it is
    /// signed (to add `amr: ["pwd"]`, `auth_time`, ...).
    pub fn mint_for_with<'a, 'r, C, F>(
        &'a self,
        request: impl Into<RequestHead<'r>>,
        subject: &'a str,
        claims: &'a C,
        extra: F,
    ) -> impl Future<Output = Result<MintedToken, IssueError>> + 'a
    where
        C: Serialize + ?Sized,
        F: FnOnce(&mut Map<String, Value>) + 'a,
    {
        let binding = self.bind(request);
        async move { self.mint_bound_with(binding.await?, subject, claims, extra) }
    }

    /// Binds a token to `request` without minting it yet: every binding policy runs (the DPoP
    /// proof verified and recorded in the replay store, awaited when the store is remote), and
    /// the answer holds the token's `cnf` claims. Then [`mint_bound`](Self::mint_bound) signs.
    /// A refresh endpoint uses the two steps: bind, check the refresh token against the
    /// binding's sender constraint, mint.
    ///
    /// ```
    /// use tower_jwt_guard::binding::DeviceFingerprint;
    /// use tower_jwt_guard::issue::{SigningKey, TokenIssuer};
    /// use tower_jwt_guard::Algorithm;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_jwt_guard::ConfigError> {
    /// let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [42u8; 32])?)
    ///     .binding(DeviceFingerprint::new())
    ///     .build();
    /// let request = http::Request::builder().header("user-agent", "Firefox/140").body(()).unwrap();
    /// let binding = issuer.bind(&request).await.unwrap();
    /// assert!(binding.confirmation().device_fingerprint.is_some());
    /// let minted = issuer.mint_bound(binding, "alice", &serde_json::json!({})).unwrap();
    /// assert_eq!(minted.token_type, "Bearer");
    /// # Ok(()) }
    /// ```
    pub fn bind<'r>(
        &self,
        request: impl Into<RequestHead<'r>>,
    ) -> impl Future<Output = Result<RequestBinding, IssueError>> + Send + 'static {
        let request = request.into();
        // A request the layer already let through with a DPoP-bound token (a step-up): its proof
        // was checked and recorded there.
        let layer_jkt = request
            .extensions
            .get::<AuthContext>()
            .and_then(|context| context.confirmation.as_ref())
            .and_then(|confirmation| confirmation.jkt.clone());
        let mut binding = NewBinding::new(self.ttl).with_layer_jkt(layer_jkt);
        let bound = self.bindings.iter().try_for_each(|policy| policy.bind(&request, &mut binding));
        async move {
            bound?;
            binding.settle().await?;
            Ok(RequestBinding(binding))
        }
    }

    /// Mints a token for `subject` carrying `claims` with a `binding` made by
    /// [`bind`](Self::bind).
    pub fn mint_bound<C: Serialize + ?Sized>(
        &self,
        binding: RequestBinding,
        subject: &str,
        claims: &C,
    ) -> Result<MintedToken, IssueError> {
        self.mint_bound_with(binding, subject, claims, |_| {})
    }

    /// Like [`mint_bound`](Self::mint_bound), with a last look at the claim set before it is
    /// signed.
    pub fn mint_bound_with<C, F>(
        &self,
        binding: RequestBinding,
        subject: &str,
        claims: &C,
        extra: F,
    ) -> Result<MintedToken, IssueError>
    where
        C: Serialize + ?Sized,
        F: FnOnce(&mut Map<String, Value>),
    {
        self.sign(subject, claims, binding.0, extra)
    }

    /// Re-issues a token after a second factor: same subject, `claims`, the binding claims
    /// computed again from `request`, `amr` = the previous token's methods plus `method`
    /// (RFC 8176, e.g. `"otp"`), and `auth_time` = now.
    ///
    /// Only a token of this issuer is stepped up: the previous token's `iss` must be this
    /// issuer's (both absent counts as the same), else `IssueError::OtherIssuer`. A layer that
    /// trusts several issuers or tenants would otherwise re-mint another issuer's `sub` as this
    /// issuer's user.
    ///
    /// ```
    /// use tower_jwt_guard::issue::{SigningKey, TokenIssuer};
    /// use tower_jwt_guard::{Algorithm, TokenFacts};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_jwt_guard::ConfigError> {
    /// let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [42u8; 32])?).build();
    /// // In a handler, `previous` is the request's `AuthContext` (it dereferences to `TokenFacts`).
    /// let mut previous = TokenFacts::default();
    /// previous.subject = Some("alice".into());
    /// previous.amr = vec!["pwd".into()];
    /// let request = http::Request::new(());
    /// let stepped_up = issuer.step_up(&request, &previous, &serde_json::json!({}), "otp").await.unwrap();
    /// # let _ = stepped_up;
    /// # Ok(()) }
    /// ```
    pub fn step_up<'a, 'r, C: Serialize + ?Sized>(
        &'a self,
        request: impl Into<RequestHead<'r>>,
        previous: &TokenFacts,
        claims: &'a C,
        method: &str,
    ) -> impl Future<Output = Result<MintedToken, IssueError>> + 'a {
        // A token of another issuer (or tenant) is not re-minted under this one.
        let other_issuer = previous.issuer != self.issuer;
        let subject = previous.subject.clone();
        let mut amr = previous.amr.clone();
        if !amr.iter().any(|m| m == method) {
            amr.push(method.to_string());
        }
        // Without a subject there is nothing to step up: no binding (no proof recorded either).
        let binding = (subject.is_some() && !other_issuer).then(|| self.bind(request));
        async move {
            if other_issuer {
                return Err(IssueError::OtherIssuer);
            }
            let (Some(subject), Some(binding)) = (subject, binding) else {
                return Err(IssueError::NoSubject);
            };
            let binding = binding.await?;
            let now = clock::now();
            self.mint_bound_with(binding, &subject, claims, |set| {
                set.insert("amr".into(), amr.into());
                set.insert("auth_time".into(), now.into());
            })
        }
    }

    fn sign<C, F>(
        &self,
        subject: &str,
        claims: &C,
        binding: NewBinding,
        extra: F,
    ) -> Result<MintedToken, IssueError>
    where
        C: Serialize + ?Sized,
        F: FnOnce(&mut Map<String, Value>),
    {
        let Value::Object(mut set) = serde_json::to_value(claims).map_err(|_| IssueError::Signing)? else {
            return Err(IssueError::ClaimsNotAnObject);
        };
        let now = clock::now();
        let expires_at = now.saturating_add(self.ttl.as_secs());
        let jti = random_id();
        if let Some(iss) = &self.issuer {
            set.insert("iss".into(), iss.clone().into());
        }
        set.insert("sub".into(), subject.into());
        match self.audience.as_slice() {
            [] => {}
            [one] => {
                set.insert("aud".into(), one.clone().into());
            }
            many => {
                set.insert("aud".into(), many.to_vec().into());
            }
        }
        set.insert("iat".into(), now.into());
        set.insert("nbf".into(), now.into());
        set.insert("exp".into(), expires_at.into());
        set.insert("jti".into(), jti.clone().into());
        let (confirmation, set_cookies) = binding.into_parts();
        let token_type = if confirmation.jkt.is_some() { "DPoP" } else { "Bearer" };
        match serde_json::to_value(&confirmation) {
            Ok(Value::Object(cnf)) if cnf.is_empty() => {}
            Ok(cnf) => {
                set.insert("cnf".into(), cnf);
            }
            Err(_) => return Err(IssueError::Signing),
        }
        extra(&mut set);
        let token = self.seal(&set)?;
        Ok(MintedToken {
            token,
            jti,
            expires_in: self.ttl.as_secs(),
            expires_at,
            set_cookies,
            token_type,
            confirmation,
        })
    }
}

impl TokenIssuer {
    /// The compact token of the claims `set`: signed, and encrypted when an encryption key is set.
    fn seal(&self, set: &Map<String, Value>) -> Result<String, IssueError> {
        #[cfg(feature = "jwe")]
        if let Some(encryption) = &self.encryption {
            if encryption.algorithm().is_shared_secret() {
                let claims = serde_json::to_vec(set).map_err(|_| IssueError::Signing)?;
                return encryption
                    .encrypt_typed(&claims, false, self.header.typ.as_deref())
                    .map_err(|_| IssueError::Encryption);
            }
            let signed =
                jsonwebtoken::encode(&self.header, set, &self.key.key).map_err(|_| IssueError::Signing)?;
            return encryption.encrypt(signed.as_bytes(), true).map_err(|_| IssueError::Encryption);
        }
        jsonwebtoken::encode(&self.header, set, &self.key.key).map_err(|_| IssueError::Signing)
    }
}

/// 128 random bits, base64url: a `jti` nobody can guess or collide with.
pub(crate) fn random_id() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 16];
    // aws-lc's generator fails only when the operating system has no entropy source at all;
    // there is no safe fallback (a predictable jti would be worse than no token).
    aws_lc_rs::rand::fill(&mut bytes).expect("the operating system's random generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::algorithm::Algorithm;

    #[test]
    fn minted_claims_carry_registered_claims_over_user_claims() {
        let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [1u8; 32]).unwrap())
            .issuer("iss")
            .audience("a")
            .audience("b")
            .build();
        let user = serde_json::json!({"sub": "mallory", "role": "x"});
        let minted = issuer.mint("alice", &user).unwrap();
        let payload = minted.token.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let json: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
        )
        .unwrap();
        assert_eq!(json["sub"], "alice");
        assert_eq!(json["role"], "x");
        assert_eq!(json["aud"], serde_json::json!(["a", "b"]));
        assert_eq!(json["jti"], minted.jti.as_str());
        assert_eq!(json["exp"].as_u64().unwrap() - json["iat"].as_u64().unwrap(), 900);
    }

    #[test]
    fn ids_are_distinct() {
        assert_ne!(random_id(), random_id());
    }

    fn payload(token: &str) -> Value {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn step_up_extends_amr_once_and_sets_auth_time() {
        use crate::guard::binding::DeviceFingerprint;
        let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [1u8; 32]).unwrap())
            .binding(DeviceFingerprint::new())
            .build();
        let request = http::Request::builder().header("user-agent", "a").body(()).unwrap();
        let mut previous = TokenFacts { subject: Some("alice".into()), ..TokenFacts::default() };
        previous.amr = vec!["pwd".into()];
        let user = serde_json::json!({ "amr": ["forged"], "role": "x" });
        let json = payload(&issuer.step_up(&request, &previous, &user, "otp").await.unwrap().token);
        assert_eq!(json["sub"], "alice");
        assert_eq!(json["amr"], serde_json::json!(["pwd", "otp"]));
        assert!(json["auth_time"].as_u64().unwrap() >= json["iat"].as_u64().unwrap());
        assert!(json["cnf"]["dfp"].is_string());
        previous.amr.push("otp".into());
        let again = payload(&issuer.step_up(&request, &previous, &user, "otp").await.unwrap().token);
        assert_eq!(again["amr"], serde_json::json!(["pwd", "otp"]));
        previous.subject = None;
        assert!(matches!(
            issuer.step_up(&request, &previous, &user, "otp").await,
            Err(IssueError::NoSubject)
        ));
    }

    #[tokio::test]
    async fn step_up_refuses_a_token_of_another_issuer() {
        let key = || SigningKey::hmac(Algorithm::HS256, [1u8; 32]).unwrap();
        let ours = TokenIssuer::builder(key()).issuer("https://a.example").build();
        let request = http::Request::new(());
        let facts = |iss: Option<&str>| TokenFacts {
            subject: Some("alice".into()),
            issuer: iss.map(str::to_owned),
            ..TokenFacts::default()
        };
        let claims = serde_json::json!({});
        let unnamed = TokenIssuer::builder(key()).build();
        let cases = [
            (&ours, Some("https://a.example"), true),
            (&ours, Some("https://b.example"), false),
            (&ours, Some("https://a.example/"), false),
            (&ours, None, false),
            (&unnamed, None, true),
            (&unnamed, Some("https://a.example"), false),
        ];
        for (issuer, iss, accepted) in cases {
            let answer = issuer.step_up(&request, &facts(iss), &claims, "otp").await;
            match accepted {
                true => assert!(answer.is_ok(), "{iss:?}"),
                false => assert!(matches!(answer, Err(IssueError::OtherIssuer)), "{iss:?}"),
            }
        }
    }

    #[tokio::test]
    async fn unbound_tokens_carry_no_cnf() {
        let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [1u8; 32]).unwrap()).build();
        let minted = issuer.mint_for(&http::Request::new(()), "a", &serde_json::json!({})).await.unwrap();
        assert!(payload(&minted.token).get("cnf").is_none());
        assert!(minted.set_cookies.is_empty());
    }

    /// A policy whose check answers later, as a remote replay store does.
    struct Deferring(Result<(), BindingUnavailable>);

    impl BindingPolicy for Deferring {
        fn name(&self) -> &'static str {
            "deferring"
        }
        fn check(
            &self,
            _: &RequestHead<'_>,
            _: Option<&Confirmation>,
        ) -> Result<(), crate::primitives::error::AuthError> {
            Ok(())
        }
        fn bind(&self, _: &RequestHead<'_>, binding: &mut NewBinding) -> Result<(), BindingUnavailable> {
            let answer = self.0.clone();
            binding.defer(async move {
                tokio::task::yield_now().await;
                answer
            });
            binding.confirmation_mut().jkt = Some("k".into());
            Ok(())
        }
    }

    #[tokio::test]
    async fn deferred_checks_are_awaited_before_signing() {
        let issuer = |answer| {
            TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [1u8; 32]).unwrap())
                .binding(Deferring(answer))
                .build()
        };
        let request = http::Request::new(());
        let claims = serde_json::json!({});
        let minted = issuer(Ok(())).mint_for(&request, "a", &claims).await.unwrap();
        assert_eq!((minted.token_type, minted.confirmation.jkt.as_deref()), ("DPoP", Some("k")));
        let refused = issuer(Err(BindingUnavailable::new("deferring", "used before")));
        assert!(matches!(refused.mint_for(&request, "a", &claims).await, Err(IssueError::Binding(_))));
        let down = issuer(Err(BindingUnavailable::store_unavailable("deferring", "the store is down")));
        assert!(matches!(down.mint_for(&request, "a", &claims).await, Err(IssueError::Unavailable(_))));
        let nonce = issuer(Err(BindingUnavailable::use_dpop_nonce("dpop", "no nonce", "n-1".into())));
        match nonce.mint_for(&request, "a", &claims).await {
            Err(IssueError::UseDpopNonce { nonce }) => assert_eq!(nonce, "n-1"),
            other => panic!("expected UseDpopNonce, got {other:?}"),
        }
        let binding = issuer(Ok(())).bind(&request).await.unwrap();
        assert_eq!(binding.confirmation().jkt.as_deref(), Some("k"));
    }

    /// A replay store that answers later, as Redis does: `answer` of the memory store, or none.
    struct Remote(crate::guard::revocation::MemoryReplayStore, bool);

    impl crate::guard::revocation::ReplayStore for Remote {
        fn check_and_record(
            &self,
            key: &crate::guard::revocation::ReplayKey,
            expires_at: u64,
        ) -> crate::guard::revocation::ReplayCheck {
            use crate::guard::revocation::ReplayCheck;
            let answer =
                if self.1 { self.0.check_and_record(key, expires_at) } else { ReplayCheck::Unavailable };
            ReplayCheck::Pending(Box::pin(async move {
                tokio::task::yield_now().await;
                answer
            }))
        }
    }

    /// Issue #25: with a remote replay store, the token endpoint's DPoP step awaits its answer
    /// (it refused every login before); a replayed proof is refused, a store that cannot answer
    /// is `Unavailable` (503), not an invalid proof.
    #[tokio::test]
    async fn a_token_request_proof_waits_for_a_remote_replay_store() {
        use crate::guard::binding::Dpop;
        use crate::guard::revocation::MemoryReplayStore;
        let issuer = |up| {
            let dpop = Dpop::allowed()
                .public_url("https://api.example.com")
                .replay_store(Remote(MemoryReplayStore::new(), up));
            TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [1u8; 32]).unwrap()).binding(dpop).build()
        };
        let key = crate::issue::DpopKey::generate_es256().unwrap();
        let uri: http::Uri = "https://api.example.com/token".parse().unwrap();
        let proof = key.proof(&http::Method::POST, &uri, None).unwrap();
        let request = || http::Request::post("/token").header("dpop", proof.as_str()).body(()).unwrap();
        let claims = serde_json::json!({});
        let up = issuer(true);
        let minted = up.mint_for(&request(), "alice", &claims).await.unwrap();
        assert_eq!((minted.token_type, minted.confirmation.jkt.as_deref()), ("DPoP", Some(key.jkt())));
        let replayed = up.mint_for(&request(), "alice", &claims).await;
        assert!(
            matches!(&replayed, Err(IssueError::Binding(err)) if err.binding() == "dpop"),
            "{replayed:?}"
        );
        let down = issuer(false).mint_for(&request(), "alice", &claims).await;
        assert!(matches!(down, Err(IssueError::Unavailable(_))), "{down:?}");
    }

    #[test]
    fn claims_that_are_not_an_object_are_refused() {
        let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [1u8; 32]).unwrap()).build();
        assert!(matches!(issuer.mint("a", &5), Err(IssueError::ClaimsNotAnObject)));
    }
}
