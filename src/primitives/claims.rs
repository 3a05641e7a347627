//! What a verified token says: your typed [`Claims<C>`], its registered and authentication
//! claims ([`TokenFacts`]) and its `cnf` binding claims ([`Confirmation`]).

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The verified claims of the request's token, decoded once into your type `C`.
///
/// Cheap to clone (an `Arc`), dereferences to `C`. The layer puts it in the request's
/// extensions; with the `axum` feature it is also an extractor, and the pattern
/// `Claims(user): Claims<User>` gives the handler an `Arc<User>`.
///
/// ```
/// use tower_jwt_guard::Claims;
///
/// #[derive(serde::Deserialize)]
/// struct MyClaims { sub: String }
///
/// let claims = Claims::new(MyClaims { sub: "alice".into() });
/// let copy = claims.clone();
/// assert_eq!(copy.sub, "alice");
/// ```
pub struct Claims<C>(pub Arc<C>);

impl<C> Claims<C> {
    /// Wraps decoded claims (useful in tests of handlers).
    pub fn new(claims: C) -> Self {
        Claims(Arc::new(claims))
    }

    /// The shared claims.
    pub fn as_arc(&self) -> &Arc<C> {
        &self.0
    }
}

impl<C> Clone for Claims<C> {
    fn clone(&self) -> Self {
        Claims(Arc::clone(&self.0))
    }
}

impl<C> Deref for Claims<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.0
    }
}

impl<C: fmt::Debug> fmt::Debug for Claims<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Claims").field(&self.0).finish()
    }
}

/// The binding claims a token carries under `cnf` (RFC 7800 confirmation).
///
/// Every member of a token's `cnf` is kept. Those the crate's policies read have a field; any
/// other — RFC 7800's `jwk`, `jwe`, `kid` and `jku`, RFC 9203's `osc`, a member nobody
/// registered — is kept by name with its JSON text ([`other`](Self::other)).
/// [`members`](Self::members) lists them all, and the layer refuses a token with a member that
/// no configured [`BindingPolicy`](crate::binding::BindingPolicy)
/// [`confirms`](crate::binding::BindingPolicy::confirms) (`BINDING_MISMATCH`, naming the member,
/// or `"cnf"` for a name the crate does not know, so that no text of the token is echoed): a
/// token bound to a key or a client this service cannot verify never passes as a bearer token.
///
/// Read from a token, a confirmation is strict; a token whose `cnf` breaks one of these rules is
/// malformed (`INVALID_TOKEN`):
/// - `cnf` is a JSON object (not a string, a number, an array or `null`) with at least one
///   member: RFC 7800 §3.1 makes it the proof-of-possession key's confirmation method, and `{}`
///   names none (it is neither a bound token nor an honest bearer token);
/// - a member the crate knows has its JSON type: `dfp`, `cfp`, `cip`, `jkt`, `x5t#S256`, `jwe`,
///   `kid` and `jku` are strings, `jwk` and `osc` are objects (`null` included in the refusals);
/// - no member appears twice, and there are at most eight members without a field (the
///   registry of confirmation methods has five; more is no token anyone issues).
///
/// A confirmation with only the members that have a field is read without allocating more than
/// their strings.
///
/// ```
/// use tower_jwt_guard::Confirmation;
///
/// let cnf: Confirmation = serde_json::from_str(r#"{"cip":"198.51.100.7","kid":"k-1"}"#).unwrap();
/// assert_eq!(cnf.client_ip.as_deref(), Some("198.51.100.7"));
/// assert_eq!(cnf.other("kid"), Some(r#""k-1""#));
/// assert_eq!(cnf.members().collect::<Vec<_>>(), ["cip", "kid"]);
/// for malformed in ["{}", r#""jkt""#, "[]", r#"{"jkt":5}"#, r#"{"jwk":"a key"}"#, r#"{"kid":"a","kid":"b"}"#] {
///     assert!(serde_json::from_str::<Confirmation>(malformed).is_err(), "{malformed}");
/// }
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Confirmation {
    /// SHA-256 (base64url) of the device fingerprint taken from request headers.
    pub device_fingerprint: Option<String>,
    /// SHA-256 (base64url) of the hardened fingerprint cookie's value.
    pub cookie_fingerprint: Option<String>,
    /// The client address (or network, for prefix binding) the token was issued to.
    pub client_ip: Option<String>,
    /// RFC 9449 DPoP: SHA-256 thumbprint of the client's key.
    pub jkt: Option<String>,
    /// RFC 8705 mutual-TLS: SHA-256 thumbprint of the client certificate.
    pub certificate_thumbprint: Option<String>,
    /// The members without a field, in the token's order.
    others: Vec<OtherMember>,
}

/// A `cnf` member without a field: its name and its JSON text.
#[derive(Clone)]
struct OtherMember {
    name: Box<str>,
    json: Box<RawValue>,
}

impl PartialEq for OtherMember {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.json.get() == other.json.get()
    }
}

impl Eq for OtherMember {}

/// The members with a field, by claim name.
const FIELD_MEMBERS: [&str; 5] = ["dfp", "cfp", "cip", "jkt", "x5t#S256"];

/// The registered members without a field, with the first byte of their JSON type: RFC 7800
/// §3.2–3.5 (`jwk` an object, `jwe` a compact JWE, `kid` and `jku` strings), RFC 9203 (`osc`).
const REGISTERED_MEMBERS: [(&str, u8); 5] =
    [("jwk", b'{'), ("jwe", b'"'), ("kid", b'"'), ("jku", b'"'), ("osc", b'{')];

/// At most this many members without a field.
const MAX_OTHER_MEMBERS: usize = 8;

impl Confirmation {
    /// The `cnf` members present, by their claim names: those with a field first, then the
    /// others in the token's order.
    pub fn members(&self) -> impl Iterator<Item = &str> + '_ {
        [
            self.device_fingerprint.is_some(),
            self.cookie_fingerprint.is_some(),
            self.client_ip.is_some(),
            self.jkt.is_some(),
            self.certificate_thumbprint.is_some(),
        ]
        .into_iter()
        .zip(FIELD_MEMBERS)
        .filter_map(|(present, name)| present.then_some(name))
        .chain(self.others.iter().map(|other| &*other.name))
    }

    /// The JSON text of the member `name` when it has no field (`jwk`, `jwe`, `kid`, `jku`,
    /// `osc`, or any other), for a [`BindingPolicy`](crate::binding::BindingPolicy) that
    /// [`confirms`](crate::binding::BindingPolicy::confirms) it.
    pub fn other(&self, name: &str) -> Option<&str> {
        self.others.iter().find(|other| &*other.name == name).map(|other| other.json.get())
    }

    /// How a refusal names `member`: its claim name when the crate knows it, else `"cnf"`
    /// (a name from the token is never echoed to the client).
    pub(crate) fn label(member: &str) -> &'static str {
        FIELD_MEMBERS
            .into_iter()
            .chain(REGISTERED_MEMBERS.map(|(name, _)| name))
            .find(|known| *known == member)
            .unwrap_or("cnf")
    }
}

impl fmt::Debug for Confirmation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<String>| v.as_ref().map(|_| "REDACTED");
        f.debug_struct("Confirmation")
            .field("device_fingerprint", &shown(&self.device_fingerprint))
            .field("cookie_fingerprint", &shown(&self.cookie_fingerprint))
            .field("client_ip", &shown(&self.client_ip))
            .field("jkt", &shown(&self.jkt))
            .field("certificate_thumbprint", &shown(&self.certificate_thumbprint))
            .field("other_members", &self.others.len())
            .finish()
    }
}

impl Serialize for Confirmation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = [
            &self.device_fingerprint,
            &self.cookie_fingerprint,
            &self.client_ip,
            &self.jkt,
            &self.certificate_thumbprint,
        ];
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in FIELD_MEMBERS.into_iter().zip(fields) {
            if let Some(value) = value {
                map.serialize_entry(name, value)?;
            }
        }
        for other in &self.others {
            map.serialize_entry(&*other.name, &*other.json)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Confirmation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ConfirmationVisitor)
    }
}

/// A member's name: those with a field are matched without allocating.
enum MemberName {
    Field(usize),
    Other(Box<str>),
}

impl<'de> Deserialize<'de> for MemberName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;

        impl Visitor<'_> for Name {
            type Value = MemberName;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a confirmation member's name")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<MemberName, E> {
                Ok(match FIELD_MEMBERS.iter().position(|name| *name == v) {
                    Some(index) => MemberName::Field(index),
                    None => MemberName::Other(v.into()),
                })
            }
        }

        deserializer.deserialize_str(Name)
    }
}

struct ConfirmationVisitor;

impl<'de> Visitor<'de> for ConfirmationVisitor {
    type Value = Confirmation;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of confirmation members (RFC 7800)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Confirmation, A::Error> {
        let mut cnf = Confirmation::default();
        while let Some(name) = map.next_key::<MemberName>()? {
            match name {
                MemberName::Field(index) => {
                    let field = match index {
                        0 => &mut cnf.device_fingerprint,
                        1 => &mut cnf.cookie_fingerprint,
                        2 => &mut cnf.client_ip,
                        3 => &mut cnf.jkt,
                        _ => &mut cnf.certificate_thumbprint,
                    };
                    if field.is_some() {
                        return Err(de::Error::duplicate_field(FIELD_MEMBERS[index]));
                    }
                    *field = Some(map.next_value::<String>()?);
                }
                MemberName::Other(name) => {
                    if cnf.others.iter().any(|other| other.name == name) {
                        return Err(de::Error::custom("a confirmation member appears twice"));
                    }
                    if cnf.others.len() == MAX_OTHER_MEMBERS {
                        return Err(de::Error::custom("too many confirmation members"));
                    }
                    let json: Box<RawValue> = map.next_value()?;
                    let typed = REGISTERED_MEMBERS.iter().find(|(known, _)| **known == *name);
                    if typed.is_some_and(|(_, first)| json.get().as_bytes().first() != Some(first)) {
                        return Err(de::Error::custom("a confirmation member has the wrong type"));
                    }
                    cnf.others.push(OtherMember { name, json });
                }
            }
        }
        if cnf.members().next().is_none() {
            return Err(de::Error::invalid_length(0, &self));
        }
        Ok(cnf)
    }
}

/// The registered and authentication claims of a verified token.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TokenFacts {
    /// `sub`
    pub subject: Option<String>,
    /// `jti`
    pub jti: Option<String>,
    /// `iss`
    pub issuer: Option<String>,
    /// `aud` (a single string becomes a one-element list)
    pub audience: Vec<String>,
    /// `exp`, seconds since the epoch
    pub expires_at: Option<u64>,
    /// `nbf`, seconds since the epoch
    pub not_before: Option<u64>,
    /// `iat`, seconds since the epoch
    pub issued_at: Option<u64>,
    /// `amr` (RFC 8176 authentication methods)
    pub amr: Vec<String>,
    /// `acr`
    pub acr: Option<String>,
    /// `auth_time`, seconds since the epoch
    pub auth_time: Option<u64>,
    /// `mfa_verified` (a JSON boolean)
    pub mfa_verified: Option<bool>,
    /// `scope` and `scp`, as a list: each a space-separated string (split on spaces) or an array
    /// of strings (one scope per item)
    pub scopes: Vec<String>,
    /// `cnf`: binding claims
    pub confirmation: Option<Confirmation>,
    /// the header's `typ`
    pub token_type: Option<String>,
    /// `client_id` (RFC 9068 §2.2, RFC 8693 §4.3), when it is a string: the client the token was
    /// issued to
    pub client_id: Option<String>,
    /// the name of the accepted [`TokenKind`](crate::TokenKind) the token is (when the
    /// configuration [`accept`](crate::JwtAuthBuilder::accept)s kinds)
    pub kind: Option<Arc<str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Confirmation, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn every_member_is_kept() {
        let cnf = parse(r#"{"dfp":"d","jwk": {"kty":"OKP"},"x5t#S256":"t","zz":[1]}"#).unwrap();
        assert_eq!(cnf.members().collect::<Vec<_>>(), ["dfp", "x5t#S256", "jwk", "zz"]);
        assert_eq!(cnf.other("jwk"), Some(r#"{"kty":"OKP"}"#), "whitespace before a value is not kept");
        assert_eq!(cnf.other("zz"), Some("[1]"));
        assert_eq!(cnf.other("dfp"), None, "members with a field are read from it");
        let again: Confirmation = serde_json::from_value(serde_json::to_value(&cnf).unwrap()).unwrap();
        assert_eq!(again, cnf);
        assert_eq!(serde_json::to_string(&parse(r#"{"cip":"x"}"#).unwrap()).unwrap(), r#"{"cip":"x"}"#);
        assert!(format!("{cnf:?}").contains("other_members: 2"));
        assert!(!format!("{cnf:?}").contains("zz"), "Debug shows no names from the token");
    }

    #[test]
    fn only_known_names_are_echoed() {
        for name in ["dfp", "cfp", "cip", "jkt", "x5t#S256", "jwk", "jwe", "kid", "jku", "osc"] {
            assert_eq!(Confirmation::label(name), name);
        }
        for name in ["", "JKT", "x5t", "<script>", "jkt "] {
            assert_eq!(Confirmation::label(name), "cnf");
        }
    }

    #[test]
    fn malformed_confirmations_are_refused() {
        for bad in [
            "{}",
            "null",
            "5",
            r#""jkt""#,
            "[]",
            r#"["x"]"#,
            r#"{"jkt":5}"#,
            r#"{"dfp":null}"#,
            r#"{"jwk":"k"}"#,
            r#"{"osc":[]}"#,
            r#"{"kid":1}"#,
            r#"{"jku":null}"#,
            r#"{"jwe":{}}"#,
            r#"{"cip":"a","cip":"b"}"#,
            r#"{"c\u0069p":"a","cip":"b"}"#,
            r#"{"kid":"a","kid":"b"}"#,
            r#"{"q":1,"q":1}"#,
            r#"{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} must be refused");
        }
        assert!(parse(r#"{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"cip":"x"}"#).is_ok());
        assert_eq!(parse(r#"{"j\u006bt":"t"}"#).unwrap().jkt.as_deref(), Some("t"), "escaped names");
    }
}
