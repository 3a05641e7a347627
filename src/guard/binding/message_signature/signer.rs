//! [`MessageSigner`]: signs HTTP messages (RFC 9421 §3.1) with a private key, over the same
//! signature base the verifier rebuilds ([`base`](super::base)): requests, and responses with
//! the components of the request they answer (`;req`, §2.4).

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use aws_lc_rs::{hmac, rand, signature};
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode};
use sfv::{BareItem, FieldType as _, InnerList, Item, Key, List, ListEntry, Parameters, Parser};

use super::algorithm::SignatureAlgorithm;
use super::base::{self, Signed};
use super::key::SignatureKey;
use super::{message_of, origin_of, parse_origin};
use crate::guard::binding::RequestHead;
use crate::primitives::clock;
use crate::primitives::error::ConfigError;

/// A private key that signs HTTP messages, with its one algorithm (RFC 9421 §3.3) and the
/// `keyid` its signatures name.
///
/// Keys: ECDSA P-256 (`ecdsa-p256-sha256`) or P-384 (`ecdsa-p384-sha384`), Ed25519
/// (`ed25519`), RSA (`rsa-pss-sha512`, a 64-byte salt as §3.3.1 fixes) from PEM (PKCS#8
/// `PRIVATE KEY`, SEC 1 `EC PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY`) or a private JWK (EC, OKP;
/// `oct` for `hmac-sha256`), and shared secrets for `hmac-sha256`. The `keyid` defaults to the
/// RFC 7638 thumbprint of the public key (none for a shared secret). `Debug` never shows the key.
///
/// ```
/// use tower_jwt_guard::binding::{MessageSigner, RequestHead, SignatureAlgorithm, SignatureParams};
///
/// // RFC 9421 Appendix B.1.4, test-key-ed25519.
/// let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";
/// let signer = MessageSigner::from_pem(pem)?.keyid("test-key-ed25519");
/// assert_eq!(signer.algorithm(), SignatureAlgorithm::Ed25519);
/// assert!(format!("{signer:?}").contains("REDACTED"));
///
/// let request = http::Request::post("https://example.com/foo").body(()).unwrap();
/// let params = SignatureParams::new("sig1", ["@method", "@target-uri"])?.created(1618884473);
/// let signed = signer.sign_request(&RequestHead::of(&request), &params)?;
/// assert_eq!(signed.input(), r#"sig1=("@method" "@target-uri");created=1618884473;keyid="test-key-ed25519""#);
/// assert!(signed.signature().starts_with("sig1=:"));
///
/// // A relative request without `Host` or a public URL has no `@target-uri`.
/// let relative = http::Request::post("/foo").body(()).unwrap();
/// assert!(signer.sign_request(&RequestHead::of(&relative), &params).is_err());
/// assert!(MessageSigner::from_pem("not a key").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MessageSigner {
    algorithm: SignatureAlgorithm,
    private: Arc<Private>,
    public: SignatureKey,
    keyid: Option<String>,
}

enum Private {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
    Hmac(Box<hmac::Key>),
}

impl fmt::Debug for MessageSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageSigner")
            .field("algorithm", &self.algorithm)
            .field("keyid", &self.keyid)
            .field("key", &"REDACTED")
            .finish()
    }
}

/// Why a message could not be signed: a covered component the message does not have, or a
/// key that failed to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureError(&'static str);

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for SignatureError {}

impl SignatureError {
    /// Why, in a few words.
    pub(crate) fn reason(&self) -> &'static str {
        self.0
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn pem_body(pem: &str) -> Result<(String, Vec<u8>), ConfigError> {
    let label = pem
        .lines()
        .find_map(|line| line.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or(ConfigError::InvalidKey("the key is not PEM"))?
        .to_owned();
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|line| !line.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END "))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| ConfigError::InvalidKey("the PEM key is not base64"))?;
    Ok((label, der))
}

impl MessageSigner {
    /// A private key in PEM: PKCS#8 (`PRIVATE KEY`: EC P-256, P-384, Ed25519, RSA), SEC 1
    /// (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`). RSA keys sign with `rsa-pss-sha512`.
    pub fn from_pem(pem: &str) -> Result<Self, ConfigError> {
        let (label, der) = pem_body(pem)?;
        match label.as_str() {
            "PRIVATE KEY" => MessageSigner::from_pkcs8_der(&der),
            "EC PRIVATE KEY" => {
                for algorithm in [SignatureAlgorithm::EcdsaP256Sha256, SignatureAlgorithm::EcdsaP384Sha384] {
                    if let Ok(pair) = EcdsaKeyPair::from_private_key_der(ecdsa_signing(algorithm), &der) {
                        return MessageSigner::ecdsa(algorithm, pair);
                    }
                }
                Err(ConfigError::InvalidKey("the EC key is not on P-256 or P-384"))
            }
            "RSA PRIVATE KEY" => {
                let pair = RsaKeyPair::from_der(&der)
                    .map_err(|_| ConfigError::InvalidKey("the RSA key is not valid"))?;
                MessageSigner::rsa(pair)
            }
            _ => Err(ConfigError::InvalidKey("the PEM block is not a private key")),
        }
    }

    /// A PKCS#8 private key (DER): EC P-256, P-384, Ed25519 or RSA.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, ConfigError> {
        for algorithm in [SignatureAlgorithm::EcdsaP256Sha256, SignatureAlgorithm::EcdsaP384Sha384] {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(ecdsa_signing(algorithm), der) {
                return MessageSigner::ecdsa(algorithm, pair);
            }
        }
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return MessageSigner::ed25519(pair);
        }
        if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
            return MessageSigner::rsa(pair);
        }
        Err(ConfigError::InvalidKey("the PKCS#8 key is not an EC P-256/P-384, Ed25519 or RSA private key"))
    }

    /// A private JWK (RFC 7517): EC P-256 / P-384 or OKP Ed25519 with `d`, or `oct` (`k`, at
    /// least 32 bytes) for `hmac-sha256`. RSA keys: use [`from_pem`](Self::from_pem). The
    /// JWK's `kid`, when present, is the `keyid`.
    ///
    /// ```
    /// use tower_jwt_guard::binding::{MessageSigner, SignatureAlgorithm};
    /// // RFC 9421 Appendix B.1.3, test-key-ecc-p256.
    /// let jwk = r#"{"kty":"EC","crv":"P-256","kid":"test-key-ecc-p256",
    ///   "x":"qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA","y":"Mc4nN9LTDOBhfoUeg8Ye9WedFRhnZXZJA12Qp0zZ6F0",
    ///   "d":"UpuF81l-kOxbjf7T4mNSv0r5tN67Gim7rnf6EFpcYDs"}"#;
    /// let signer = MessageSigner::from_jwk(jwk)?;
    /// assert_eq!(signer.algorithm(), SignatureAlgorithm::EcdsaP256Sha256);
    /// assert_eq!(signer.keyid_value(), Some("test-key-ecc-p256"));
    /// assert!(MessageSigner::from_jwk(r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#).is_err(), "a public JWK");
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn from_jwk(jwk: &str) -> Result<Self, ConfigError> {
        let jwk: serde_json::Value =
            serde_json::from_str(jwk).map_err(|_| ConfigError::InvalidKey("the JWK is not valid JSON"))?;
        let member = |name: &str| -> Result<Vec<u8>, ConfigError> {
            let text = jwk
                .get(name)
                .and_then(|value| value.as_str())
                .ok_or(ConfigError::InvalidKey("the private JWK lacks a member"))?;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| ConfigError::InvalidKey("a JWK member is not base64url"))
        };
        let kty = jwk.get("kty").and_then(|value| value.as_str()).unwrap_or_default();
        let crv = jwk.get("crv").and_then(|value| value.as_str()).unwrap_or_default();
        let signer = match (kty, crv) {
            ("EC", "P-256" | "P-384") => {
                let algorithm = if crv == "P-256" {
                    SignatureAlgorithm::EcdsaP256Sha256
                } else {
                    SignatureAlgorithm::EcdsaP384Sha384
                };
                let mut point = vec![4u8];
                point.extend(member("x")?);
                point.extend(member("y")?);
                let pair = EcdsaKeyPair::from_private_key_and_public_key(
                    ecdsa_signing(algorithm),
                    &member("d")?,
                    &point,
                )
                .map_err(|_| ConfigError::InvalidKey("the EC JWK is not a valid key pair"))?;
                MessageSigner::ecdsa(algorithm, pair)?
            }
            ("OKP", "Ed25519") => {
                let pair = Ed25519KeyPair::from_seed_and_public_key(&member("d")?, &member("x")?)
                    .map_err(|_| ConfigError::InvalidKey("the Ed25519 JWK is not a valid key pair"))?;
                MessageSigner::ed25519(pair)?
            }
            ("oct", _) => MessageSigner::hmac_sha256(member("k")?)?,
            ("RSA", _) => {
                return Err(ConfigError::InvalidKey("an RSA signing key is read from PEM, not from a JWK"))
            }
            _ => return Err(ConfigError::InvalidKey("the JWK's key type cannot sign HTTP messages")),
        };
        Ok(match jwk.get("kid").and_then(|kid| kid.as_str()) {
            Some(kid) => signer.keyid(kid),
            None => signer,
        })
    }

    /// A shared secret for `hmac-sha256` (at least 32 bytes). No default `keyid`.
    ///
    /// ```
    /// use tower_jwt_guard::binding::MessageSigner;
    /// assert!(MessageSigner::hmac_sha256([7u8; 32]).is_ok());
    /// assert!(MessageSigner::hmac_sha256([7u8; 16]).is_err());
    /// ```
    pub fn hmac_sha256(secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        Ok(MessageSigner {
            algorithm: SignatureAlgorithm::HmacSha256,
            public: SignatureKey::hmac_sha256(secret)?,
            private: Arc::new(Private::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret)))),
            keyid: None,
        })
    }

    fn ecdsa(algorithm: SignatureAlgorithm, pair: EcdsaKeyPair) -> Result<Self, ConfigError> {
        let point = pair.public_key().as_ref();
        let size = (point.len() - 1) / 2;
        let crv = if algorithm == SignatureAlgorithm::EcdsaP256Sha256 { "P-256" } else { "P-384" };
        let jwk = serde_json::json!({
            "kty": "EC", "crv": crv, "x": b64url(&point[1..1 + size]), "y": b64url(&point[1 + size..]),
        });
        MessageSigner::asymmetric(algorithm, Private::Ecdsa(pair), &jwk)
    }

    fn ed25519(pair: Ed25519KeyPair) -> Result<Self, ConfigError> {
        let jwk =
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(pair.public_key().as_ref())});
        MessageSigner::asymmetric(SignatureAlgorithm::Ed25519, Private::Ed25519(pair), &jwk)
    }

    fn rsa(pair: RsaKeyPair) -> Result<Self, ConfigError> {
        let public = pair.public_key();
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": b64url(public.modulus().big_endian_without_leading_zero()),
            "e": b64url(public.exponent().big_endian_without_leading_zero()),
        });
        MessageSigner::asymmetric(SignatureAlgorithm::RsaPssSha512, Private::Rsa(pair), &jwk)
    }

    fn asymmetric(
        algorithm: SignatureAlgorithm,
        private: Private,
        jwk: &serde_json::Value,
    ) -> Result<Self, ConfigError> {
        let public = SignatureKey::from_jwk_value(jwk)?;
        let keyid = public.thumbprint().map(str::to_owned);
        Ok(MessageSigner { algorithm, private: Arc::new(private), public, keyid })
    }

    /// The `keyid` parameter of the signatures (replaces the default thumbprint).
    pub fn keyid(mut self, keyid: impl Into<String>) -> Self {
        self.keyid = Some(keyid.into());
        self
    }

    /// The `keyid` the signatures name.
    pub fn keyid_value(&self) -> Option<&str> {
        self.keyid.as_deref()
    }

    /// The algorithm of the key.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The key that verifies this signer's signatures (the public key; the secret itself for
    /// `hmac-sha256`): for [`MessageSignature::key`](super::MessageSignature::key) and clients.
    pub fn verifying_key(&self) -> SignatureKey {
        self.public.clone()
    }

    /// The public key as a JWK (with `kid` and `alg`, RFC 9421 §6.2.2 names), to publish for
    /// verifiers; `None` for a shared secret.
    ///
    /// ```
    /// use tower_jwt_guard::binding::MessageSigner;
    /// let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";
    /// let jwk = MessageSigner::from_pem(pem)?.keyid("k1").public_jwk().unwrap();
    /// assert_eq!(jwk["x"], "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs");
    /// assert_eq!(jwk["kid"], "k1");
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn public_jwk(&self) -> Option<serde_json::Value> {
        let mut jwk = self.public.public_jwk()?;
        if let Some(object) = jwk.as_object_mut() {
            object.insert("alg".into(), self.algorithm.name().into());
            if let Some(keyid) = &self.keyid {
                object.insert("kid".into(), keyid.clone().into());
            }
        }
        Some(jwk)
    }

    /// The signature of `base` (RFC 9421 §3.3): the bytes of the `Signature` member.
    pub fn sign_base(&self, base: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let failed = SignatureError("the key could not sign");
        Ok(match &*self.private {
            Private::Ecdsa(pair) => {
                pair.sign(&rand::SystemRandom::new(), base).map_err(|_| failed)?.as_ref().to_vec()
            }
            Private::Ed25519(pair) => pair.sign(base).as_ref().to_vec(),
            Private::Rsa(pair) => {
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PSS_SHA512, &rand::SystemRandom::new(), base, &mut out)
                    .map_err(|_| failed)?;
                out
            }
            Private::Hmac(key) => hmac::sign(key, base).as_ref().to_vec(),
        })
    }

    /// Signs a request: the `Signature-Input` and `Signature` members of the signature
    /// `params` describes. `@target-uri`, `@authority` and `@scheme` come from the request's
    /// absolute URI, else its `Host` (or [`SignatureParams::public_url`]).
    pub fn sign_request(
        &self,
        request: &RequestHead<'_>,
        params: &SignatureParams,
    ) -> Result<SignatureFields, SignatureError> {
        let origin = origin_of(params.origin.as_ref(), request).unwrap_or_default();
        self.sign_message(&Signed::Request(message_of(request, &origin)), &params.components, params)
    }

    /// Signs a response (`@status` and its fields), with the components of the `request` it
    /// answers marked `;req` (RFC 9421 §2.4).
    pub fn sign_response(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        request: Option<&RequestHead<'_>>,
        params: &SignatureParams,
    ) -> Result<SignatureFields, SignatureError> {
        let origin = request.map(|request| origin_of(params.origin.as_ref(), request).unwrap_or_default());
        let request = request.zip(origin.as_ref()).map(|(request, origin)| message_of(request, origin));
        self.sign_message(&Signed::Response { status, headers, request }, &params.components, params)
    }

    /// Signs `message` over `components` with the parameters of `params`.
    pub(crate) fn sign_message(
        &self,
        message: &Signed<'_>,
        components: &[Item],
        params: &SignatureParams,
    ) -> Result<SignatureFields, SignatureError> {
        let created = params.created.unwrap_or_else(|| i64::try_from(clock::now()).unwrap_or(i64::MAX));
        let mut parameters = Parameters::new();
        let mut set = |name: &str, value: BareItem| {
            if let Ok(key) = Key::from_string(name.to_owned()) {
                parameters.insert(key, value);
            }
        };
        let string = |text: &str| {
            sfv::String::from_string(text.to_owned())
                .map(BareItem::String)
                .map_err(|_| SignatureError("a signature parameter is not a printable ASCII string"))
        };
        let integer = |value: i64| {
            sfv::Integer::try_from(value)
                .map(BareItem::Integer)
                .map_err(|_| SignatureError("a signature time is out of range"))
        };
        set("created", integer(created)?);
        if let Some(lifetime) = params.expires_in {
            set("expires", integer(created.saturating_add(lifetime))?);
        }
        if let Some(keyid) = &self.keyid {
            set("keyid", string(keyid)?);
        }
        if params.alg {
            set("alg", string(self.algorithm.name())?);
        }
        match &params.nonce {
            Nonce::None => {}
            Nonce::Fixed(nonce) => set("nonce", string(nonce)?),
            Nonce::Random => {
                let mut bytes = [0u8; 16];
                rand::fill(&mut bytes).map_err(|_| SignatureError("no randomness for the nonce"))?;
                set("nonce", string(&b64url(&bytes))?);
            }
        }
        if let Some(tag) = &params.tag {
            set("tag", string(tag)?);
        }
        let list = InnerList::with_params(components.to_vec(), parameters);
        let params_text = List::from([ListEntry::InnerList(list)])
            .serialize()
            .ok_or(SignatureError("the signature parameters cannot be serialized"))?;
        let texts: Vec<String> = components.iter().map(|component| component.serialize()).collect();
        let base = base::base_of(message, components, &texts, &params_text).map_err(SignatureError)?;
        let bytes = self.sign_base(base.as_bytes())?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        Ok(SignatureFields {
            input: format!("{}={params_text}", params.label),
            signature: format!("{}=:{encoded}:", params.label),
            label: params.label.clone(),
            base,
        })
    }
}

fn ecdsa_signing(algorithm: SignatureAlgorithm) -> &'static signature::EcdsaSigningAlgorithm {
    if algorithm == SignatureAlgorithm::EcdsaP384Sha384 {
        &signature::ECDSA_P384_SHA384_FIXED_SIGNING
    } else {
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING
    }
}

#[derive(Debug, Clone)]
enum Nonce {
    None,
    Fixed(String),
    Random,
}

/// What a signature covers and its parameters (RFC 9421 §2.3): the label, the covered
/// components in order, `created` (default: now), and optionally `expires`, `nonce`, `tag` and
/// `alg`. The `keyid` is the signer's.
///
/// Components are written as in `Signature-Input`: a name (`@method`, `content-digest`), or a
/// quoted name with parameters (`"@query-param";name="id"`, `"signature";req;key="sig"`).
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_guard::binding::SignatureParams;
///
/// let params = SignatureParams::new("sig", ["@method", "@target-uri", r#""@query-param";name="id""#])?
///     .expires_in(Duration::from_secs(30))
///     .random_nonce()
///     .tag("orders-api");
/// assert!(SignatureParams::new("sig", ["@method", "@method"]).is_err(), "a component twice");
/// assert!(SignatureParams::new("Not A Label", ["@method"]).is_err());
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SignatureParams {
    label: String,
    components: Vec<Item>,
    created: Option<i64>,
    expires_in: Option<i64>,
    nonce: Nonce,
    tag: Option<String>,
    alg: bool,
    origin: Option<(String, String)>,
}

/// One component identifier, from its `Signature-Input` form (a bare name is quoted).
pub(crate) fn component(text: &str) -> Result<Item, ConfigError> {
    let text = text.trim();
    let quoted;
    let text = if text.starts_with('"') {
        text
    } else {
        quoted = format!("\"{text}\"");
        &quoted
    };
    let item: Item =
        Parser::new(text).parse().map_err(|_| ConfigError::Invalid("a covered component is malformed"))?;
    match &item.bare_item {
        BareItem::String(name) if name.as_str() == name.as_str().to_ascii_lowercase() => Ok(item),
        _ => Err(ConfigError::Invalid("a covered component must be a lowercase name")),
    }
}

impl SignatureParams {
    /// A signature labelled `label` (an RFC 9651 key: lowercase, digits, `_-.*`) covering
    /// `components`, in this order.
    pub fn new<I, S>(label: &str, components: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Key::from_string(label.to_owned())
            .map_err(|_| ConfigError::Invalid("the signature label is not a key"))?;
        let mut params = SignatureParams {
            label: label.to_owned(),
            components: Vec::new(),
            created: None,
            expires_in: None,
            nonce: Nonce::None,
            tag: None,
            alg: false,
            origin: None,
        };
        for text in components {
            params.push(component(text.as_ref())?)?;
        }
        Ok(params)
    }

    /// Adds a component at the end (a component covered twice is refused).
    pub(crate) fn push(&mut self, item: Item) -> Result<(), ConfigError> {
        let text = item.serialize();
        if self.components.iter().any(|known| known.serialize() == text) {
            return Err(ConfigError::Invalid("a component is covered twice"));
        }
        self.components.push(item);
        Ok(())
    }

    /// The label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// `created` at this time (seconds since the epoch) instead of the time of signing: for
    /// test vectors.
    pub fn created(mut self, created: i64) -> Self {
        self.created = Some(created);
        self
    }

    /// `expires` this long after `created`.
    pub fn expires_in(mut self, lifetime: std::time::Duration) -> Self {
        self.expires_in = Some(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
        self
    }

    /// This `nonce`.
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Nonce::Fixed(nonce.into());
        self
    }

    /// A fresh random `nonce` in every signature (128 bits, base64url).
    pub fn random_nonce(mut self) -> Self {
        self.nonce = Nonce::Random;
        self
    }

    /// The `tag` parameter: the application or profile the signature is for (§2.3).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Adds the `alg` parameter (the signer's algorithm).
    pub fn with_alg(mut self) -> Self {
        self.alg = true;
        self
    }

    /// The origin (`https://api.example.com`) of `@target-uri`, `@authority` and `@scheme`
    /// when the request's URI is relative.
    pub fn public_url(mut self, url: &str) -> Self {
        self.origin = parse_origin(url);
        self
    }

    /// The covered components, as `Signature-Input` writes them.
    pub fn components(&self) -> Vec<String> {
        self.components.iter().map(Item::serialize).collect()
    }

    pub(crate) fn items(&self) -> &[Item] {
        &self.components
    }
}

/// A signature made by [`MessageSigner`]: the members to add to `Signature-Input` and
/// `Signature`, and the signature base that was signed.
#[derive(Clone)]
pub struct SignatureFields {
    label: String,
    input: String,
    signature: String,
    base: String,
}

impl fmt::Debug for SignatureFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureFields").field("input", &self.input).finish_non_exhaustive()
    }
}

impl SignatureFields {
    /// The label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The `Signature-Input` member: `label=(...);created=...`.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The `Signature` member: `label=:base64:`.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The signature base (RFC 9421 §2.5) that was signed.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Adds the two members to `headers` (as new field lines beside any signature already
    /// there).
    pub fn apply(&self, headers: &mut HeaderMap) -> Result<(), SignatureError> {
        let value = |text: &str| {
            HeaderValue::try_from(text).map_err(|_| SignatureError("a signature field is not a header value"))
        };
        let (input, signature) = (value(&self.input)?, value(&self.signature)?);
        headers.append("signature-input", input);
        headers.append("signature", signature);
        Ok(())
    }
}
