//! The JWE protected header (RFC 7516 §4): the members this crate reads, and its refusals.
//!
//! Refused here, before any key is touched: an `alg` or `enc` this crate does not decrypt
//! (`RSA1_5`, `PBES2-*`, ...), `zip` (a compressed payload is a decompression bomb waiting to
//! happen), any `crit` extension, duplicate members. Keys never come from the header (`jku`,
//! `jwk`, `x5u`, `x5c` are ignored); `epk` is only the sender's ephemeral public key.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::algorithms::{ContentEncryption, KeyManagement};
use crate::guard::verify::compact::{is_json_object, malformed};
use crate::primitives::error::AuthError;

/// The protected header, parsed and checked.
#[derive(Debug)]
pub(crate) struct JweHeader<'a> {
    pub(crate) alg: KeyManagement,
    pub(crate) enc: ContentEncryption,
    pub(crate) kid: Option<Cow<'a, str>>,
    pub(crate) typ: Option<Cow<'a, str>>,
    /// `cty: "JWT"` (case-insensitive, RFC 7519 §5.2): the content is a nested JWT.
    pub(crate) nested: bool,
    pub(crate) epk: Option<EphemeralKey<'a>>,
    pub(crate) apu: Option<Cow<'a, str>>,
    pub(crate) apv: Option<Cow<'a, str>>,
    /// `iv` and `tag` of the AES-GCM key wrap (RFC 7518 §4.7.1).
    pub(crate) iv: Option<Cow<'a, str>>,
    pub(crate) tag: Option<Cow<'a, str>>,
    /// Claims replicated in the header (RFC 7519 §5.3): they must match the claims.
    pub(crate) replicated: Replicated,
}

/// `iss`, `sub` and `aud` replicated in the header of an encrypted token.
#[derive(Debug, Default, Clone)]
pub(crate) struct Replicated {
    pub(crate) iss: Option<String>,
    pub(crate) sub: Option<String>,
    pub(crate) aud: Option<Vec<String>>,
}

/// The sender's ephemeral public key (ECDH-ES): a JWK with public members only.
#[derive(Debug, Deserialize)]
pub(crate) struct EphemeralKey<'a> {
    #[serde(borrow)]
    pub(crate) kty: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) crv: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) x: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) y: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow)]
    enc: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    cty: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    epk: Option<EphemeralKey<'a>>,
    #[serde(borrow, default)]
    apu: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    apv: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    iv: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tag: Option<Cow<'a, str>>,
    #[serde(default)]
    zip: Option<IgnoredAny>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<OneOrMany>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'a> JweHeader<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, AuthError> {
        if !is_json_object(bytes) {
            return Err(malformed("the token header is malformed"));
        }
        let raw: RawHeader<'a> =
            serde_json::from_slice(bytes).map_err(|_| malformed("the token header is malformed"))?;
        let alg = raw.alg.parse::<KeyManagement>().map_err(|_| refused_alg(&raw.alg))?;
        let enc = raw
            .enc
            .parse::<ContentEncryption>()
            .map_err(|_| malformed("the token's content encryption algorithm is not supported"))?;
        if raw.zip.is_some() {
            return Err(malformed("compressed encrypted tokens (zip) are refused"));
        }
        // RFC 7516 §4.1.13: this decrypter understands no extension, so any `crit` rejects.
        if raw.crit.is_some() {
            return Err(malformed("the token uses a critical extension this server does not support"));
        }
        let nested = match raw.cty.as_deref() {
            None => false,
            Some(cty) if cty.eq_ignore_ascii_case("JWT") => true,
            Some(_) => return Err(malformed("the encrypted token's content type is not a JWT")),
        };
        let aud = raw.aud.map(|aud| match aud {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        });
        Ok(JweHeader {
            alg,
            enc,
            kid: raw.kid,
            typ: raw.typ,
            nested,
            epk: raw.epk,
            apu: raw.apu,
            apv: raw.apv,
            iv: raw.iv,
            tag: raw.tag,
            replicated: Replicated { iss: raw.iss, sub: raw.sub, aud },
        })
    }
}

/// The audit reason for an `alg` this crate does not decrypt.
fn refused_alg(alg: &str) -> AuthError {
    if alg == "RSA1_5" {
        malformed("RSA1_5 encrypted tokens are refused (padding oracle)")
    } else if alg.starts_with("PBES2") {
        malformed("PBES2 encrypted tokens are refused (password-based, token-chosen cost)")
    } else {
        malformed("the token's key management algorithm is not supported")
    }
}

impl Replicated {
    /// Whether the claims agree with what the header replicates (absent members agree).
    pub(crate) fn agrees_with(&self, iss: Option<&str>, sub: Option<&str>, aud: &[String]) -> bool {
        self.iss.as_deref().is_none_or(|header| Some(header) == iss)
            && self.sub.as_deref().is_none_or(|header| Some(header) == sub)
            && self.aud.as_deref().is_none_or(|header| header == aud)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(header: &str) -> String {
        JweHeader::parse(header.as_bytes()).unwrap_err().detail().to_owned()
    }

    #[test]
    fn reads_the_members() {
        let header =
            JweHeader::parse(br#"{"alg":"A256KW","enc":"A256GCM","cty":"jwt","kid":"k1","iss":"a"}"#)
                .unwrap();
        assert_eq!((header.alg, header.enc), (KeyManagement::A256Kw, ContentEncryption::A256Gcm));
        assert!(header.nested, "cty is case-insensitive");
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert!(header.replicated.agrees_with(Some("a"), None, &[]));
        assert!(!header.replicated.agrees_with(Some("b"), None, &[]));
        assert!(!header.replicated.agrees_with(None, None, &[]));
    }

    #[test]
    fn refusals() {
        assert!(detail(r#"{"alg":"RSA1_5","enc":"A128GCM"}"#).contains("RSA1_5"));
        assert!(detail(r#"{"alg":"PBES2-HS256+A128KW","enc":"A128GCM","p2c":999999999}"#).contains("PBES2"));
        assert!(detail(r#"{"alg":"A256KW","enc":"A256GCM","zip":"DEF"}"#).contains("zip"));
        assert!(detail(r#"{"alg":"A256KW","enc":"A256GCM","crit":["exp"],"exp":1}"#).contains("critical"));
        assert!(detail(r#"{"alg":"A256KW","enc":"A192GCM"}"#).contains("content encryption"));
        assert!(detail(r#"{"alg":"A256KW","enc":"A256GCM","cty":"text/plain"}"#).contains("content type"));
        assert!(detail(r#"{"alg":"A256KW","alg":"dir","enc":"A256GCM"}"#).contains("malformed"));
        assert!(detail(r#"["A256KW","A256GCM"]"#).contains("malformed"));
        assert!(detail(r#"{"alg":"A256KW"}"#).contains("malformed"));
    }
}
