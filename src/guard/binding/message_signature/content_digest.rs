//! [`ContentDigest`]: the `Content-Digest` field (RFC 9530) checked against the body as it
//! streams, within a size limit: a signature that covers `content-digest` covers the body only
//! once the digest is checked.

use std::fmt;

use aws_lc_rs::digest;
use base64::Engine as _;
use http::HeaderMap;
use sfv::{BareItem, Dictionary, ListEntry, Parser};

use crate::primitives::error::{AuthError, ErrorKind};

/// Default size limit of a body whose digest is checked (1 MiB).
pub const DEFAULT_DIGEST_BODY_LIMIT: u64 = 1 << 20;

/// A `Content-Digest` check, fed the body chunk by chunk; nothing of the body is kept.
///
/// The strongest digest the field carries is checked (`sha-512`, else `sha-256`); other
/// algorithms are ignored, and a field with neither is refused. A body longer than the limit is
/// refused as soon as it passes it.
///
/// ```
/// use tower_jwt_guard::binding::ContentDigest;
///
/// // RFC 9530 §2: the digest of `{"hello": "world"}` and a newline.
/// let mut headers = http::HeaderMap::new();
/// headers.insert("content-digest", "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:".parse().unwrap());
/// let mut check = ContentDigest::from_headers(&headers, 1024).unwrap().unwrap();
/// check.update(b"{\"hello\": ").unwrap();
/// check.update(b"\"world\"}\n").unwrap();
/// assert!(check.finish().is_ok());
/// assert_eq!(ContentDigest::header_value_sha256(b"{\"hello\": \"world\"}\n"), "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:");
/// ```
pub struct ContentDigest {
    expected: Vec<u8>,
    context: digest::Context,
    seen: u64,
    limit: u64,
}

impl fmt::Debug for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentDigest")
            .field("algorithm", &self.context.algorithm())
            .field("seen", &self.seen)
            .field("limit", &self.limit)
            .finish()
    }
}

fn refuse(reason: &'static str) -> AuthError {
    AuthError::signature(ErrorKind::InvalidSignature, reason, None)
}

impl ContentDigest {
    /// The check the request's `Content-Digest` asks for, or `None` when it has none. A field
    /// that is malformed, or names no supported algorithm, is refused (`INVALID_SIGNATURE`).
    pub fn from_headers(headers: &HeaderMap, limit: u64) -> Result<Option<Self>, AuthError> {
        let mut text = String::new();
        for value in headers.get_all("content-digest") {
            let value = value.to_str().map_err(|_| refuse("the Content-Digest field is not ASCII"))?;
            if !text.is_empty() {
                text.push_str(", ");
            }
            text.push_str(value);
        }
        if text.is_empty() {
            return Ok(None);
        }
        let field: Dictionary =
            Parser::new(&text).parse().map_err(|_| refuse("the Content-Digest field is malformed"))?;
        let member = |name: &str| match field.get(name) {
            Some(ListEntry::Item(item)) => match &item.bare_item {
                BareItem::ByteSequence(bytes) => Some(Ok(bytes.clone())),
                _ => Some(Err(refuse("a Content-Digest member is not a byte sequence"))),
            },
            Some(ListEntry::InnerList(_)) => {
                Some(Err(refuse("a Content-Digest member is not a byte sequence")))
            }
            None => None,
        };
        let (algorithm, expected) = if let Some(bytes) = member("sha-512") {
            (&digest::SHA512, bytes?)
        } else if let Some(bytes) = member("sha-256") {
            (&digest::SHA256, bytes?)
        } else {
            return Err(refuse("the Content-Digest field names no supported algorithm"));
        };
        Ok(Some(ContentDigest { expected, context: digest::Context::new(algorithm), seen: 0, limit }))
    }

    /// Feeds the next chunk of the body.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), AuthError> {
        self.seen = self.seen.saturating_add(chunk.len() as u64);
        if self.seen > self.limit {
            return Err(refuse("the body is longer than the digest limit"));
        }
        self.context.update(chunk);
        Ok(())
    }

    /// Whether the whole body had the announced digest.
    pub fn finish(self) -> Result<(), AuthError> {
        let actual = self.context.finish();
        if crate::guard::binding::same(actual.as_ref(), &self.expected) {
            Ok(())
        } else {
            Err(refuse("the body does not match its Content-Digest"))
        }
    }

    /// The `Content-Digest` value of `body` with SHA-256 (for signers and tests).
    pub fn header_value_sha256(body: &[u8]) -> String {
        let digest = digest::digest(&digest::SHA256, body);
        format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
    }

    /// The `Content-Digest` value of `body` with SHA-512.
    pub fn header_value_sha512(body: &[u8]) -> String {
        let digest = digest::digest(&digest::SHA512, body);
        format!("sha-512=:{}:", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(field: &str, limit: u64) -> Result<Option<ContentDigest>, AuthError> {
        let mut headers = HeaderMap::new();
        headers.insert("content-digest", field.parse().unwrap());
        ContentDigest::from_headers(&headers, limit)
    }

    #[test]
    fn rfc_9421_request_body_sha512() {
        // RFC 9421 Appendix B.2: the test request's body and its Content-Digest.
        let field = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";
        let body = br#"{"hello": "world"}"#;
        assert_eq!(ContentDigest::header_value_sha512(body), field);
        let mut digest = check(field, 1024).unwrap().unwrap();
        digest.update(body).unwrap();
        digest.finish().unwrap();
        // The body changed under a valid field: refused.
        let mut digest = check(field, 1024).unwrap().unwrap();
        digest.update(br#"{"hello": "World"}"#).unwrap();
        assert_eq!(digest.finish().unwrap_err().code(), "INVALID_SIGNATURE");
    }

    #[test]
    fn the_strongest_known_digest_is_checked_and_the_limit_holds() {
        let body = b"{\"hello\": \"world\"}\n";
        // A wrong sha-512 beside a right sha-256: the sha-512 decides.
        let field =
            format!("sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:, sha-512=:{}:", "A".repeat(88));
        let mut digest = check(&field, 1024).unwrap().unwrap();
        digest.update(body).unwrap();
        assert!(digest.finish().is_err());
        assert!(check("md5=:AAAA:", 1024).is_err(), "no supported algorithm");
        assert!(check("sha-256=\"text\"", 1024).is_err());
        assert!(check("sha-256=:", 1024).is_err());
        let mut digest =
            check("sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:", 10).unwrap().unwrap();
        assert!(digest.update(body).is_err(), "over the limit");
        assert!(ContentDigest::from_headers(&HeaderMap::new(), 10).unwrap().is_none());
    }
}
