//! The opaque refresh-token value: `<family id>.<secret>`, both random, base64url.
//!
//! Only the SHA-256 of the whole value is stored; the family id travels in the value so a
//! store finds the family's records without a lookup table (and Redis keys of one family
//! share a hash slot).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Length of a family id: 16 random bytes, base64url.
const FAMILY_LEN: usize = 22;
/// Length of the secret part: 32 random bytes, base64url.
const SECRET_LEN: usize = 43;

/// An opaque refresh token: hand it to the client (an `HttpOnly; Secure; SameSite=Strict`
/// cookie), never log it. `Debug` prints `REDACTED`.
///
/// ```
/// use tower_jwt_guard::refresh::RefreshToken;
///
/// let token = RefreshToken::from("a.b");
/// assert_eq!(format!("{token:?}"), "RefreshToken(REDACTED)");
/// assert_eq!(token.as_str(), "a.b");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    /// The value to send to the client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value, consumed.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<&str> for RefreshToken {
    fn from(value: &str) -> Self {
        RefreshToken(value.to_owned())
    }
}

impl From<String> for RefreshToken {
    fn from(value: String) -> Self {
        RefreshToken(value)
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(REDACTED)")
    }
}

/// A freshly made token and the hash under which it is stored.
pub(crate) struct Minted {
    pub(crate) token: RefreshToken,
    pub(crate) hash: String,
}

/// A presented token, split and hashed; `None` when it is not shaped like one of ours.
pub(crate) struct Presented<'a> {
    /// The whole value (the key that seals its successor during the grace period).
    pub(crate) value: &'a str,
    pub(crate) family: &'a str,
    pub(crate) hash: String,
}

/// A new random family id.
pub(crate) fn new_family() -> String {
    random(16)
}

/// A new token of `family`.
pub(crate) fn mint(family: &str) -> Minted {
    let token = format!("{family}.{}", random(32));
    let hash = hash(&token);
    Minted { token: RefreshToken(token), hash }
}

/// Splits and hashes a presented value; anything not shaped like our tokens is refused
/// before hashing (no work for garbage of any length).
pub(crate) fn parse(presented: &str) -> Option<Presented<'_>> {
    let (family, secret) = presented.split_once('.')?;
    let base64url = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if family.len() != FAMILY_LEN || secret.len() != SECRET_LEN || !base64url(family) || !base64url(secret) {
        return None;
    }
    Some(Presented { value: presented, family, hash: hash(presented) })
}

fn hash(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Seals `successor` under the token it replaced (AES-256-GCM, random nonce): the store keeps
/// the successor only in this form, so that a retry of the rotation (which presents the old
/// token again) can be handed it back, while a reader of the store (which holds only hashes)
/// cannot. The key is a SHA-256 of the old token under its own label, independent of the
/// stored hash; the family binds the seal to its records.
pub(crate) fn seal(successor: &RefreshToken, under: &Presented<'_>) -> String {
    use aws_lc_rs::aead::{Aad, Nonce, NONCE_LEN};
    let key = sealing_key(under.value);
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).expect("the operating system's random generator failed");
    let mut sealed = successor.as_str().as_bytes().to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(under.family), &mut sealed)
        .expect("AES-GCM seals any token-sized input");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    URL_SAFE_NO_PAD.encode(out)
}

/// Opens what [`seal`] made under the same presented token; `None` if anything differs.
pub(crate) fn unseal(sealed: &str, under: &Presented<'_>) -> Option<RefreshToken> {
    use aws_lc_rs::aead::{Aad, Nonce, NONCE_LEN};
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut sealed = sealed.to_vec();
    let opened = sealing_key(under.value).open_in_place(nonce, Aad::from(under.family), &mut sealed).ok()?;
    String::from_utf8(opened.to_vec()).ok().map(RefreshToken)
}

fn sealing_key(token: &str) -> aws_lc_rs::aead::LessSafeKey {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(b"tower-jwt-guard refresh successor seal\0");
    context.update(token.as_bytes());
    let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, context.finish().as_ref())
        .expect("a SHA-256 digest is an AES-256 key");
    aws_lc_rs::aead::LessSafeKey::new(key)
}

fn random(len: usize) -> String {
    let mut bytes = [0u8; 32];
    let bytes = &mut bytes[..len];
    // Fails only when the operating system has no entropy source: a guessable refresh token
    // would be worse than none, so there is no fallback.
    aws_lc_rs::rand::fill(bytes).expect("the operating system's random generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_back_to_their_family_and_hash() {
        let family = new_family();
        let minted = mint(&family);
        let presented = parse(minted.token.as_str()).unwrap();
        assert_eq!(presented.family, family);
        assert_eq!(presented.hash, minted.hash);
        assert_ne!(minted.hash, minted.token.as_str());
    }

    #[test]
    fn a_successor_is_opened_only_with_the_token_it_replaced() {
        let family = new_family();
        let old = mint(&family).token;
        let next = mint(&family).token;
        let presented = parse(old.as_str()).unwrap();
        let sealed = seal(&next, &presented);
        assert!(!sealed.contains(next.as_str().split_once('.').unwrap().1));
        assert_eq!(unseal(&sealed, &presented).unwrap(), next);
        let other = mint(&family).token;
        assert!(unseal(&sealed, &parse(other.as_str()).unwrap()).is_none());
        assert!(unseal("AAAA", &presented).is_none());
    }

    #[test]
    fn malformed_values_are_refused() {
        let good = mint(&new_family()).token.into_string();
        assert!(parse("").is_none());
        assert!(parse("no-dot").is_none());
        assert!(parse(&good[1..]).is_none());
        assert!(parse(&format!("{good}x")).is_none());
        assert!(parse(&good.replace('.', "!")).is_none());
        let mut bad = good.clone().into_bytes();
        bad[3] = b'+';
        assert!(parse(std::str::from_utf8(&bad).unwrap()).is_none());
    }
}
