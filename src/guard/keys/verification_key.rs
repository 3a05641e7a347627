//! [`VerificationKey`]: one public key or HMAC secret, bound to exactly one algorithm,
//! prepared once (parsed, HMAC key set up) so no request pays for it.

use std::fmt;

use aws_lc_rs::{hmac, signature};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{AlgorithmFamily, DecodingKey, DecodingKeyKind};

use crate::primitives::algorithm::Algorithm;

use crate::primitives::error::ConfigError;

/// A key that verifies signatures of exactly one algorithm (RFC 8725 §3.1).
///
/// The algorithm comes from configuration or from the JWK's `alg`, never from a token's header.
///
/// ```
/// use tower_jwt_guard::Algorithm;
/// use tower_jwt_guard::VerificationKey;
///
/// let key = VerificationKey::hmac(Algorithm::HS256, b"0123456789abcdef0123456789abcdef")?
///     .with_kid("2026-11");
/// assert_eq!(key.algorithm(), Algorithm::HS256);
/// assert_eq!(key.kid(), Some("2026-11"));
/// assert!(format!("{key:?}").contains("REDACTED"));
///
/// // Too short a secret is refused when the configuration is built, not at request time.
/// assert!(VerificationKey::hmac(Algorithm::HS256, b"short").is_err());
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    algorithm: Algorithm,
    verifier: Verifier,
}

#[derive(Clone)]
enum Verifier {
    /// Boxed: the prepared key (with its precomputed pads) is over a kilobyte.
    Hmac(Box<hmac::Key>),
    Public(signature::ParsedPublicKey),
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("key", &"REDACTED")
            .finish()
    }
}

impl VerificationKey {
    /// An HMAC secret for `HS256`, `HS384` or `HS512`.
    ///
    /// The secret must be at least as long as the hash output (RFC 7518 §3.2): 32, 48 or 64 bytes.
    pub fn hmac(algorithm: Algorithm, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        let (hmac_alg, min_len) = match algorithm {
            Algorithm::HS256 => (hmac::HMAC_SHA256, 32),
            Algorithm::HS384 => (hmac::HMAC_SHA384, 48),
            Algorithm::HS512 => (hmac::HMAC_SHA512, 64),
            other => return Err(ConfigError::KeyAlgorithmMismatch { algorithm: other }),
        };
        if secret.len() < min_len {
            return Err(ConfigError::WeakSecret { algorithm, min_len, len: secret.len() });
        }
        Ok(Self::prepared(algorithm, Verifier::Hmac(Box::new(hmac::Key::new(hmac_alg, secret)))))
    }

    /// A public key in PEM form (`PUBLIC KEY` or `RSA PUBLIC KEY`), for `algorithm`.
    ///
    /// With `algorithm` `None`, the algorithm follows from the key type: RSA → `RS256`,
    /// P-256 → `ES256`, P-384 → `ES384`, Ed25519 → `EdDSA`.
    ///
    /// ```
    /// use tower_jwt_guard::Algorithm;
    /// use tower_jwt_guard::VerificationKey;
    ///
    /// let pem = "-----BEGIN PUBLIC KEY-----\n\
    ///     MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
    ///     -----END PUBLIC KEY-----\n";
    /// let key = VerificationKey::from_pem(pem.as_bytes(), None)?;
    /// assert_eq!(key.algorithm(), Algorithm::EdDSA);
    /// // An Ed25519 key can never verify an RS256 signature.
    /// assert!(VerificationKey::from_pem(pem.as_bytes(), Some(Algorithm::RS256)).is_err());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn from_pem(pem: &[u8], algorithm: Option<Algorithm>) -> Result<Self, ConfigError> {
        type PemParser = fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>;
        let attempts: [(PemParser, AlgorithmFamily); 3] = [
            (DecodingKey::from_rsa_pem, AlgorithmFamily::Rsa),
            (DecodingKey::from_ec_pem, AlgorithmFamily::Ec),
            (DecodingKey::from_ed_pem, AlgorithmFamily::Ed),
        ];
        for (parse, family) in attempts {
            if algorithm.is_some_and(|alg| alg.family() != family) {
                continue;
            }
            if let Ok(key) = parse(pem) {
                return Self::from_decoding_key(&key, algorithm);
            }
        }
        match algorithm {
            Some(alg) if alg.family() == AlgorithmFamily::Hmac => {
                Err(ConfigError::KeyAlgorithmMismatch { algorithm: alg })
            }
            _ => Err(ConfigError::InvalidKey("not a PEM public key (RSA, EC P-256/P-384 or Ed25519)")),
        }
    }

    /// A public key in DER form, for `algorithm`: RSA as PKCS#1 or SubjectPublicKeyInfo,
    /// EC as the uncompressed point, Ed25519 as the 32 raw bytes.
    pub fn from_der(algorithm: Algorithm, der: &[u8]) -> Result<Self, ConfigError> {
        let key = match algorithm.family() {
            AlgorithmFamily::Rsa => DecodingKey::from_rsa_der(der),
            AlgorithmFamily::Ec => DecodingKey::from_ec_der(der),
            AlgorithmFamily::Ed => DecodingKey::from_ed_der(der),
            _ => return Err(ConfigError::KeyAlgorithmMismatch { algorithm }),
        };
        Self::from_decoding_key(&key, Some(algorithm))
    }

    /// A key from a JWK (RFC 7517). The algorithm is the JWK's `alg`, or `algorithm` when the
    /// JWK has none; when both are given they must agree. The JWK's `kid` is kept.
    ///
    /// A JWK whose `use` is not `sig` is refused; an `oct` (HMAC) JWK is only accepted when
    /// an HMAC algorithm is asked for explicitly.
    ///
    /// ```
    /// use tower_jwt_guard::{Algorithm, VerificationKey};
    ///
    /// let jwk = r#"{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    /// let key = VerificationKey::from_jwk(jwk, None)?;
    /// assert_eq!((key.algorithm(), key.kid()), (Algorithm::EdDSA, Some("ed")));
    /// assert!(VerificationKey::from_jwk(jwk, Some(Algorithm::ES256)).is_err());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn from_jwk(jwk: &str, algorithm: Option<Algorithm>) -> Result<Self, ConfigError> {
        let jwk: Jwk = serde_json::from_str(jwk).map_err(|_| ConfigError::InvalidKey("malformed JWK"))?;
        Self::from_parsed_jwk(&jwk, algorithm)
    }

    /// [`from_jwk`](Self::from_jwk) for a JWK jsonwebtoken has parsed.
    pub(crate) fn from_parsed_jwk(jwk: &Jwk, algorithm: Option<Algorithm>) -> Result<Self, ConfigError> {
        use jsonwebtoken::jwk::{EllipticCurve, KeyOperations, PublicKeyUse};
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return Err(ConfigError::InvalidKey("the JWK is not meant for signatures (use != sig)"));
        }
        // RFC 7517 §4.3: a JWK whose key_ops are given must allow verification.
        if matches!(&jwk.common.key_operations, Some(ops) if !ops.contains(&KeyOperations::Verify)) {
            return Err(ConfigError::InvalidKey("the JWK's key_ops do not include verify"));
        }
        let jwk_alg = match jwk.common.key_algorithm {
            Some(alg) => Some(
                jsonwebtoken::Algorithm::try_from(alg)
                    .ok()
                    .and_then(Algorithm::from_jsonwebtoken)
                    .ok_or(ConfigError::InvalidKey("the JWK's alg is not a JWS algorithm"))?,
            ),
            None => None,
        };
        let algorithm = match (jwk_alg, algorithm) {
            (Some(a), Some(b)) if a != b => return Err(ConfigError::KeyAlgorithmMismatch { algorithm: b }),
            (a, b) => a.or(b),
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|_| ConfigError::InvalidKey("malformed JWK"))?;
        if let AlgorithmParameters::OctetKey(_) = jwk.algorithm {
            let Some(alg) = algorithm else {
                return Err(ConfigError::InvalidKey("an oct JWK needs an explicit HMAC algorithm"));
            };
            let secret = key.try_get_as_bytes().map_err(|_| ConfigError::InvalidKey("malformed JWK"))?;
            let prepared = Self::hmac(alg, secret)?;
            return Ok(match &jwk.common.key_id {
                Some(kid) => prepared.with_kid(kid.clone()),
                None => prepared,
            });
        }
        let prepared = Self::from_decoding_key(&key, algorithm)?;
        // The curve named by the JWK must be the algorithm's (a P-384 JWK is no ES256 key).
        if let AlgorithmParameters::EllipticCurve(ec) = &jwk.algorithm {
            let curve = match prepared.algorithm {
                Algorithm::ES256 => EllipticCurve::P256,
                _ => EllipticCurve::P384,
            };
            if ec.curve != curve {
                return Err(ConfigError::KeyAlgorithmMismatch { algorithm: prepared.algorithm });
            }
        }
        Ok(match &jwk.common.key_id {
            Some(kid) => prepared.with_kid(kid.clone()),
            None => prepared,
        })
    }

    /// Builds the prepared verifier from a jsonwebtoken [`DecodingKey`] (PEM, DER or JWK parsed).
    fn from_decoding_key(key: &DecodingKey, algorithm: Option<Algorithm>) -> Result<Self, ConfigError> {
        let bytes = match key.kind() {
            DecodingKeyKind::SecretOrDer(bytes) => bytes.clone(),
            DecodingKeyKind::RsaModulusExponent { n, e } => rsa_public_key_der(n, e),
        };
        let algorithm = match algorithm {
            Some(alg) => alg,
            None => default_algorithm(key.family(), &bytes)?,
        };
        if algorithm.family() != key.family() {
            return Err(ConfigError::KeyAlgorithmMismatch { algorithm });
        }
        // The RSA verifiers take 2048 to 8192 bits: a smaller key could never verify a token
        // (NIST SP 800-131A, FAPI 2.0 §5.4.1), so it is refused when loaded, static or JWKS.
        if algorithm.family() == AlgorithmFamily::Rsa
            && rsa_modulus_bits(&bytes).is_none_or(|bits| !(2048..=8192).contains(&bits))
        {
            return Err(ConfigError::InvalidKey("an RSA key must have 2048 to 8192 bits"));
        }
        let verification: &'static dyn signature::VerificationAlgorithm = match algorithm {
            Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
            Algorithm::EdDSA => &signature::ED25519,
            other => return Err(ConfigError::KeyAlgorithmMismatch { algorithm: other }),
        };
        let parsed = signature::ParsedPublicKey::new(verification, &bytes)
            .map_err(|_| ConfigError::KeyAlgorithmMismatch { algorithm })?;
        Ok(Self::prepared(algorithm, Verifier::Public(parsed)))
    }

    fn prepared(algorithm: Algorithm, verifier: Verifier) -> Self {
        VerificationKey { kid: None, algorithm, verifier }
    }

    /// Names the key: tokens whose header `kid` is this value select it.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether `signature` is a valid signature of `message` under this key.
    /// HMAC tags are compared in constant time.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Verifier::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }
}

/// RSA → RS256, P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA.
fn default_algorithm(family: AlgorithmFamily, key: &[u8]) -> Result<Algorithm, ConfigError> {
    match family {
        AlgorithmFamily::Rsa => Ok(Algorithm::RS256),
        AlgorithmFamily::Ec if key.len() == 65 => Ok(Algorithm::ES256),
        AlgorithmFamily::Ec if key.len() == 97 => Ok(Algorithm::ES384),
        AlgorithmFamily::Ed => Ok(Algorithm::EdDSA),
        _ => Err(ConfigError::InvalidKey("unsupported key type or curve")),
    }
}

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` in DER.
pub(crate) fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn integer(out: &mut Vec<u8>, value: &[u8]) {
        let value = match value.iter().position(|&b| b != 0) {
            Some(first) => &value[first..],
            None => &[0][..],
        };
        let pad = value[0] & 0x80 != 0;
        out.push(0x02);
        length(out, value.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(value);
    }
    fn length(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(&mut body, n);
    integer(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 8);
    out.push(0x30);
    length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// The bit length of the modulus of an RSA public key in DER: PKCS#1 `RSAPublicKey`, or a
/// SubjectPublicKeyInfo holding one. `None` when the DER is not one of them.
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    /// One DER element: its tag, its content and what follows it.
    fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (bytes, rest) = rest.split_at(count);
            (bytes.iter().fold(0usize, |len, &b| (len << 8) | usize::from(b)), rest)
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }
    let (0x30, body, _) = element(der)? else { return None };
    let (tag, first, rest) = element(body)?;
    let modulus = match tag {
        0x02 => first,
        // SubjectPublicKeyInfo: AlgorithmIdentifier, then a BIT STRING holding RSAPublicKey.
        0x30 => {
            let (0x03, bits, _) = element(rest)? else { return None };
            let (0x30, inner, _) = element(bits.get(1..)?)? else { return None };
            let (0x02, modulus, _) = element(inner)? else { return None };
            modulus
        }
        _ => return None,
    };
    let start = modulus.iter().position(|&b| b != 0)?;
    let modulus = &modulus[start..];
    Some((modulus.len() - 1) * 8 + (8 - modulus[0].leading_zeros() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_modulus_bits_reads_pkcs1_and_spki() {
        let mut n = [0xFFu8; 256];
        assert_eq!(rsa_modulus_bits(&rsa_public_key_der(&n, &[1, 0, 1])), Some(2048));
        n[0] = 0x01;
        assert_eq!(rsa_modulus_bits(&rsa_public_key_der(&n, &[1, 0, 1])), Some(2041));
        assert_eq!(rsa_modulus_bits(&rsa_public_key_der(&[0xC3; 128], &[3])), Some(1024));
        assert_eq!(rsa_modulus_bits(b"\x30\x05\x02\x83"), None);
        assert_eq!(rsa_modulus_bits(b""), None);
    }

    #[test]
    fn hmac_minimum_lengths_follow_rfc_7518() {
        assert!(VerificationKey::hmac(Algorithm::HS256, [7u8; 31]).is_err());
        assert!(VerificationKey::hmac(Algorithm::HS256, [7u8; 32]).is_ok());
        assert!(VerificationKey::hmac(Algorithm::HS384, [7u8; 47]).is_err());
        assert!(VerificationKey::hmac(Algorithm::HS512, [7u8; 63]).is_err());
        assert!(VerificationKey::hmac(Algorithm::HS512, [7u8; 64]).is_ok());
        assert!(VerificationKey::hmac(Algorithm::RS256, [7u8; 64]).is_err());
    }

    #[test]
    fn der_lengths_use_long_form_when_needed() {
        let der = rsa_public_key_der(&[0xFF; 256], &[1, 0, 1]);
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x0a]);
        assert_eq!(&der[4..8], &[0x02, 0x82, 0x01, 0x01]);
    }
}
