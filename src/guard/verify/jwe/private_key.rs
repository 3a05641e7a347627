//! The recipient's key material, read from a secret, PEM or a JWK: what [`DecryptionKey`]
//! holds, shared with nobody.
//!
//! [`DecryptionKey`]: super::DecryptionKey

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    self, KeyPairComponents, OaepPrivateDecryptingKey, PrivateDecryptingKey, PublicKeyComponents,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

use crate::primitives::error::ConfigError;

/// The PKCS#8 prefix of an X25519 private key (RFC 8410): the 32 key bytes follow.
const X25519_PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20];

/// One curve of ECDH-ES.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    X25519,
}

impl Curve {
    pub(crate) fn agreement(self) -> &'static agreement::Algorithm {
        match self {
            Curve::P256 => &agreement::ECDH_P256,
            Curve::P384 => &agreement::ECDH_P384,
            Curve::X25519 => &agreement::X25519,
        }
    }

    /// The JWK `crv` name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::X25519 => "X25519",
        }
    }

    /// The length of one coordinate (EC) or of the key (X25519).
    pub(crate) fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 | Curve::X25519 => 32,
            Curve::P384 => 48,
        }
    }

    fn from_name(name: &str) -> Option<Curve> {
        match name {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "X25519" => Some(Curve::X25519),
            _ => None,
        }
    }
}

/// A private key for RSA-OAEP or ECDH-ES.
pub(crate) enum PrivateKey {
    Rsa(OaepPrivateDecryptingKey),
    Ec(agreement::PrivateKey, Curve),
}

impl PrivateKey {
    /// From PEM: `PRIVATE KEY` (PKCS#8: RSA, P-256, P-384, X25519), `RSA PRIVATE KEY` (PKCS#1)
    /// or `EC PRIVATE KEY` (SEC1).
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Self, ConfigError> {
        let (label, der) = pem_block(pem).ok_or(ConfigError::InvalidKey("not a PEM private key"))?;
        match label.as_str() {
            "RSA PRIVATE KEY" => rsa_from_pkcs1(&der),
            "EC PRIVATE KEY" => ec_from_der(&der),
            "PRIVATE KEY" => {
                rsa_from_pkcs8(&der).or_else(|_| ec_from_der(&der)).or_else(|_| x25519_from_pkcs8(&der))
            }
            _ => Err(ConfigError::InvalidKey(
                "not a PEM private key (PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY)",
            )),
        }
    }

    /// From the private members of an RSA, EC or OKP (X25519) JWK.
    pub(crate) fn from_jwk(jwk: &serde_json::Value) -> Result<Self, ConfigError> {
        let member = |name: &str| -> Result<Vec<u8>, ConfigError> {
            let text = jwk
                .get(name)
                .and_then(serde_json::Value::as_str)
                .ok_or(ConfigError::InvalidKey("the JWK lacks a private key member (d, p, q, dp, dq, qi)"))?;
            URL_SAFE_NO_PAD.decode(text).map_err(|_| ConfigError::InvalidKey("a JWK member is not base64url"))
        };
        match jwk.get("kty").and_then(serde_json::Value::as_str) {
            Some("RSA") => {
                let components = KeyPairComponents {
                    public_key: PublicKeyComponents { n: member("n")?, e: member("e")? },
                    d: member("d")?,
                    p: member("p")?,
                    q: member("q")?,
                    dP: member("dp")?,
                    dQ: member("dq")?,
                    qInv: member("qi")?,
                };
                let pair = rsa::KeyPair::from_components(&components)
                    .map_err(|_| ConfigError::InvalidKey("the RSA JWK is not a valid private key"))?;
                let pkcs8 = pair
                    .as_der()
                    .map_err(|_| ConfigError::InvalidKey("the RSA JWK is not a valid private key"))?;
                rsa_from_pkcs8(pkcs8.as_ref())
            }
            Some(kty @ ("EC" | "OKP")) => {
                let curve = jwk
                    .get("crv")
                    .and_then(serde_json::Value::as_str)
                    .and_then(Curve::from_name)
                    .filter(|curve| (*curve == Curve::X25519) == (kty == "OKP"))
                    .ok_or(ConfigError::InvalidKey("the JWK's curve is not P-256, P-384 or X25519"))?;
                let key = agreement::PrivateKey::from_private_key(curve.agreement(), &member("d")?).map_err(
                    |_| ConfigError::InvalidKey("the JWK's private key is not valid for its curve"),
                )?;
                // The public members, when given, must be this private key's.
                let public =
                    key.compute_public_key().map_err(|_| ConfigError::InvalidKey("invalid private key"))?;
                let given = match curve {
                    Curve::X25519 => member("x").ok(),
                    _ => member("x").ok().zip(member("y").ok()).map(|(x, y)| [&[4u8][..], &x, &y].concat()),
                };
                if given.is_some_and(|given| given != public.as_ref()) {
                    return Err(ConfigError::InvalidKey(
                        "the JWK's public members do not match its private key",
                    ));
                }
                Ok(PrivateKey::Ec(key, curve))
            }
            _ => Err(ConfigError::InvalidKey("the JWK is not an RSA, EC or OKP private key")),
        }
    }
}

fn rsa_from_pkcs8(der: &[u8]) -> Result<PrivateKey, ConfigError> {
    let key = PrivateDecryptingKey::from_pkcs8(der)
        .map_err(|_| ConfigError::InvalidKey("not an RSA private key of 2048 to 8192 bits"))?;
    OaepPrivateDecryptingKey::new(key)
        .map(PrivateKey::Rsa)
        .map_err(|_| ConfigError::InvalidKey("not an RSA private key of 2048 to 8192 bits"))
}

fn rsa_from_pkcs1(der: &[u8]) -> Result<PrivateKey, ConfigError> {
    let pair = rsa::KeyPair::from_der(der).map_err(|_| ConfigError::InvalidKey("not an RSA private key"))?;
    let pkcs8 = pair.as_der().map_err(|_| ConfigError::InvalidKey("not an RSA private key"))?;
    rsa_from_pkcs8(pkcs8.as_ref())
}

fn ec_from_der(der: &[u8]) -> Result<PrivateKey, ConfigError> {
    for curve in [Curve::P256, Curve::P384] {
        if let Ok(key) = agreement::PrivateKey::from_private_key_der(curve.agreement(), der) {
            return Ok(PrivateKey::Ec(key, curve));
        }
    }
    Err(ConfigError::InvalidKey("not a P-256 or P-384 private key"))
}

fn x25519_from_pkcs8(der: &[u8]) -> Result<PrivateKey, ConfigError> {
    let raw = der
        .strip_prefix(&X25519_PKCS8_PREFIX[..])
        .filter(|raw| raw.len() == 32)
        .ok_or(ConfigError::InvalidKey("not an RSA, P-256, P-384 or X25519 private key"))?;
    agreement::PrivateKey::from_private_key(&agreement::X25519, raw)
        .map(|key| PrivateKey::Ec(key, Curve::X25519))
        .map_err(|_| ConfigError::InvalidKey("not a valid X25519 private key"))
}

/// The first PEM block: its label and its DER bytes.
pub(crate) fn pem_block(pem: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = &rest[..label_end];
    let body_and_end = &rest[label_end + 5..];
    let end = body_and_end.find(&format!("-----END {label}-----"))?;
    let body: String = body_and_end[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(body).ok()?;
    Some((label.to_owned(), der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks() {
        let (label, der) =
            pem_block(b"junk\n-----BEGIN EC PRIVATE KEY-----\nAAEC\nAw==\n-----END EC PRIVATE KEY-----\n")
                .unwrap();
        assert_eq!((label.as_str(), der.as_slice()), ("EC PRIVATE KEY", &[0u8, 1, 2, 3][..]));
        assert!(pem_block(b"-----BEGIN A-----\nAAEC\n-----END B-----\n").is_none());
        assert!(pem_block(b"no pem").is_none());
    }

    #[test]
    fn generated_keys_load_from_pem() {
        for alg in [&agreement::ECDH_P256, &agreement::ECDH_P384] {
            let key = agreement::PrivateKey::generate(alg).unwrap();
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                STANDARD.encode(der.as_ref())
            );
            assert!(matches!(PrivateKey::from_pem(pem.as_bytes()), Ok(PrivateKey::Ec(..))));
        }
        let x25519 = [&X25519_PKCS8_PREFIX[..], &[7u8; 32]].concat();
        let pem =
            format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(x25519));
        assert!(matches!(PrivateKey::from_pem(pem.as_bytes()), Ok(PrivateKey::Ec(_, Curve::X25519))));
        let rsa = PrivateDecryptingKey::generate(rsa::KeySize::Rsa2048).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(rsa.as_der().unwrap().as_ref())
        );
        assert!(matches!(PrivateKey::from_pem(pem.as_bytes()), Ok(PrivateKey::Rsa(_))));
        assert!(
            PrivateKey::from_pem(b"-----BEGIN PUBLIC KEY-----\nAAEC\n-----END PUBLIC KEY-----\n").is_err()
        );
    }
}
