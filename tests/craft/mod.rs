//! Hand-made tokens for the security tests: base64url and signatures straight from aws-lc-rs,
//! never from the crate's own issuer, so the oracle does not share the code under test.

#![allow(dead_code)] // each test file uses the part it needs

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use aws_lc_rs::{hmac, rsa::KeySize};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

/// base64url without padding (RFC 7515 §2).
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// `header.payload` for a header and claims given as JSON text (kept verbatim, so duplicate
/// keys and odd numbers survive).
pub fn signing_input(header: &str, claims: &str) -> String {
    format!("{}.{}", b64(header), b64(claims))
}

/// A compact JWS with the given signature bytes.
pub fn with_signature(header: &str, claims: &str, signature: &[u8]) -> String {
    format!("{}.{}", signing_input(header, claims), b64(signature))
}

/// HMAC-SHA256 over `header.payload` with `key`.
pub fn hs256(key: &[u8], header: &str, claims: &str) -> String {
    let input = signing_input(header, claims);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// Claims of a good token for `sub`, valid for ten minutes, with a `jti`.
pub fn good_claims(sub: &str) -> String {
    format!(r#"{{"sub":"{sub}","jti":"jti-{sub}","iat":{},"exp":{}}}"#, now(), now() + 600)
}

/// PEM armour around DER.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The keys of the tests, generated once per test binary.
pub struct Keys {
    pub hmac: [u8; 32],
    pub rsa: RsaKeyPair,
    /// An RSA key the server does not know (the attacker's).
    pub rogue_rsa: RsaKeyPair,
    pub ec: EcdsaKeyPair,
    /// The same EC key, signing in ASN.1 DER form instead of JOSE's fixed r||s.
    pub ec_asn1: EcdsaKeyPair,
    pub ed: Ed25519KeyPair,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = SystemRandom::new();
        let mut hmac = [0u8; 32];
        rng.fill(&mut hmac).unwrap();
        let ec_pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Keys {
            hmac,
            rsa: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
            rogue_rsa: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
            ec: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec_pkcs8.as_ref()).unwrap(),
            ec_asn1: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, ec_pkcs8.as_ref()).unwrap(),
            ed: Ed25519KeyPair::generate().unwrap(),
        }
    })
}

impl Keys {
    /// RSA public key, SubjectPublicKeyInfo DER.
    pub fn rsa_spki_der(&self) -> Vec<u8> {
        spki(&self.rsa)
    }

    /// RSA public key, PKCS#1 `RSAPublicKey` DER.
    pub fn rsa_pkcs1_der(&self) -> Vec<u8> {
        self.rsa.public_key().as_ref().to_vec()
    }

    pub fn rsa_pem(&self) -> String {
        pem("PUBLIC KEY", &self.rsa_spki_der())
    }

    /// EC public key, SubjectPublicKeyInfo DER.
    pub fn ec_spki_der(&self) -> Vec<u8> {
        self.ec.public_key().as_der().unwrap().as_ref().to_vec()
    }

    /// EC public key, the uncompressed point.
    pub fn ec_point(&self) -> Vec<u8> {
        self.ec.public_key().as_ref().to_vec()
    }

    pub fn ec_pem(&self) -> String {
        pem("PUBLIC KEY", &self.ec_spki_der())
    }

    pub fn ed_pem(&self) -> String {
        let der: PublicKeyX509Der<'static> = self.ed.public_key().as_der().unwrap();
        pem("PUBLIC KEY", der.as_ref())
    }

    pub fn rs256_with(&self, key: &RsaKeyPair, header: &str, claims: &str) -> String {
        let input = signing_input(header, claims);
        let mut sig = vec![0u8; key.public_modulus_len()];
        key.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
        format!("{input}.{}", b64(sig))
    }

    pub fn rs256(&self, header: &str, claims: &str) -> String {
        self.rs256_with(&self.rsa, header, claims)
    }

    pub fn es256(&self, header: &str, claims: &str) -> String {
        let input = signing_input(header, claims);
        let sig = self.ec.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    /// ES256 with a DER-encoded signature (JOSE requires the fixed 64-byte form).
    pub fn es256_der(&self, header: &str, claims: &str) -> String {
        let input = signing_input(header, claims);
        let sig = self.ec_asn1.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    pub fn eddsa(&self, header: &str, claims: &str) -> String {
        let input = signing_input(header, claims);
        format!("{input}.{}", b64(self.ed.sign(input.as_bytes()).as_ref()))
    }

    pub fn hs256(&self, header: &str, claims: &str) -> String {
        hs256(&self.hmac, header, claims)
    }
}

fn spki(key: &RsaKeyPair) -> Vec<u8> {
    let der: PublicKeyX509Der<'static> = key.public_key().as_der().unwrap();
    der.as_ref().to_vec()
}
