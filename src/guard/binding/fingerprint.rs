//! [`DeviceFingerprint`]: the token is good only from a client that sends the same headers.

use http::header::{ACCEPT_ENCODING, ACCEPT_LANGUAGE, USER_AGENT};
use http::{HeaderMap, HeaderName};

use aws_lc_rs::digest::Digest;

use super::{base64url, claims_digest, sha256, BindingPolicy, BindingUnavailable, NewBinding, RequestHead};
use crate::primitives::claims::Confirmation;
use crate::primitives::error::AuthError;
use crate::primitives::error::ConfigError;

const NAME: &str = "device_fingerprint";
/// Domain separation: this hash is never confused with another use of SHA-256.
const DOMAIN: &[u8] = b"tower-jwt-guard/device-fingerprint/v1\0";

/// Binds tokens to the headers a client sends with every request (claim `cnf.dfp`).
///
/// By default `User-Agent`, `Accept-Language` and `Accept-Encoding`. The claim is the
/// SHA-256 (base64url) of an unambiguous encoding of the headers' names and values, each
/// prefixed by its length and each header by its number of values, so no two different
/// header sets encode the same (`"ab" + "c"` is not `"a" + "bc"`). Compared in constant time.
///
/// What it stops: a stolen token replayed from a client whose headers differ (another
/// browser, a script, curl). What it does not stop: a thief who copies the victim's headers,
/// which are not secret.
///
/// ```
/// use tower_jwt_guard::binding::{BindingPolicy, DeviceFingerprint, NewBinding, RequestHead};
///
/// let policy = DeviceFingerprint::new();
/// let agent = |ua: &str| http::Request::builder().header("user-agent", ua).body(()).unwrap();
///
/// let mut binding = NewBinding::default();
/// policy.bind(&RequestHead::of(&agent("Firefox/140")), &mut binding).unwrap();
/// let cnf = binding.confirmation();
/// assert!(policy.check(&RequestHead::of(&agent("Firefox/140")), Some(cnf)).is_ok());
/// let err = policy.check(&RequestHead::of(&agent("curl/8.0")), Some(cnf)).unwrap_err();
/// assert_eq!(err.binding(), Some("device_fingerprint"));
/// ```
#[derive(Debug, Clone)]
pub struct DeviceFingerprint {
    headers: Vec<HeaderName>,
}

impl Default for DeviceFingerprint {
    fn default() -> Self {
        DeviceFingerprint::new()
    }
}

impl DeviceFingerprint {
    /// `User-Agent`, `Accept-Language` and `Accept-Encoding`.
    pub fn new() -> Self {
        DeviceFingerprint { headers: vec![USER_AGENT, ACCEPT_LANGUAGE, ACCEPT_ENCODING] }
    }

    /// Fingerprint these headers instead (order matters; at least one).
    ///
    /// ```
    /// use http::header::USER_AGENT;
    /// use tower_jwt_guard::binding::DeviceFingerprint;
    /// assert!(DeviceFingerprint::with_headers([USER_AGENT]).is_ok());
    /// assert!(DeviceFingerprint::with_headers([]).is_err());
    /// ```
    pub fn with_headers(headers: impl IntoIterator<Item = HeaderName>) -> Result<Self, ConfigError> {
        let headers: Vec<HeaderName> = headers.into_iter().collect();
        if headers.is_empty() {
            return Err(ConfigError::Invalid("a device fingerprint needs at least one header"));
        }
        Ok(DeviceFingerprint { headers })
    }

    /// The fingerprint of `headers`: what the token's `cnf.dfp` holds.
    ///
    /// ```
    /// use tower_jwt_guard::binding::DeviceFingerprint;
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("user-agent", "a".parse().unwrap());
    /// let fp = DeviceFingerprint::new().fingerprint(&headers);
    /// assert_eq!(fp.len(), 43); // 32 bytes, base64url
    /// assert_ne!(fp, DeviceFingerprint::new().fingerprint(&http::HeaderMap::new()));
    /// ```
    pub fn fingerprint(&self, headers: &HeaderMap) -> String {
        base64url(self.digest(headers).as_ref())
    }

    /// The SHA-256 of the headers' unambiguous encoding.
    fn digest(&self, headers: &HeaderMap) -> Digest {
        // The whole input is laid out first and hashed in one call: many small updates cost
        // more than the hashing itself.
        let mut input = Input::new();
        input.push(DOMAIN);
        for name in &self.headers {
            input.push(&len(name.as_str().len()));
            input.push(name.as_str().as_bytes());
            let values = headers.get_all(name);
            input.push(&len(values.iter().count()));
            for value in values {
                input.push(&len(value.as_bytes().len()));
                input.push(value.as_bytes());
            }
        }
        sha256(input.as_slice())
    }
}

/// The bytes to hash, on the stack while they fit (a browser's identifying headers do): no
/// allocation on the request path; on the heap past that.
struct Input {
    stack: [u8; Input::STACK],
    len: usize,
    heap: Vec<u8>,
}

impl Input {
    const STACK: usize = 1024;

    fn new() -> Self {
        Input { stack: [0; Input::STACK], len: 0, heap: Vec::new() }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.heap.is_empty() {
            if let Some(free) = self.stack.get_mut(self.len..self.len + bytes.len()) {
                free.copy_from_slice(bytes);
                self.len += bytes.len();
                return;
            }
            self.heap.reserve(2 * Input::STACK + bytes.len());
            self.heap.extend_from_slice(&self.stack[..self.len]);
        }
        self.heap.extend_from_slice(bytes);
    }

    fn as_slice(&self) -> &[u8] {
        if self.heap.is_empty() {
            &self.stack[..self.len]
        } else {
            &self.heap
        }
    }
}

fn len(n: usize) -> [u8; 8] {
    (n as u64).to_be_bytes()
}

impl BindingPolicy for DeviceFingerprint {
    fn name(&self) -> &'static str {
        NAME
    }

    fn confirms(&self) -> &'static [&'static str] {
        &["dfp"]
    }

    fn check(&self, request: &RequestHead<'_>, confirmation: Option<&Confirmation>) -> Result<(), AuthError> {
        let Some(claim) = confirmation.and_then(|cnf| cnf.device_fingerprint.as_deref()) else {
            return Err(AuthError::binding_mismatch(NAME));
        };
        if claims_digest(claim, &self.digest(request.headers)) {
            Ok(())
        } else {
            Err(AuthError::binding_mismatch(NAME))
        }
    }

    fn bind(&self, request: &RequestHead<'_>, binding: &mut NewBinding) -> Result<(), BindingUnavailable> {
        binding.confirmation_mut().device_fingerprint = Some(self.fingerprint(request.headers));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    #[test]
    fn encoding_is_unambiguous() {
        let policy = DeviceFingerprint::new();
        let fp = |pairs: &[(&str, &str)]| policy.fingerprint(&headers(pairs));
        // A value moved between headers, split in two, or absent vs empty: all differ.
        let a = fp(&[("user-agent", "ab"), ("accept-language", "c")]);
        let b = fp(&[("user-agent", "a"), ("accept-language", "bc")]);
        let c = fp(&[("user-agent", "a"), ("user-agent", "b"), ("accept-language", "c")]);
        let d = fp(&[("user-agent", "")]);
        let e = fp(&[]);
        let all = [&a, &b, &c, &d, &e];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        // Headers outside the set do not matter; the order of configured headers is fixed.
        assert_eq!(a, fp(&[("accept-language", "c"), ("x-other", "1"), ("user-agent", "ab")]));
    }

    #[test]
    fn the_input_is_the_same_on_the_stack_and_past_it() {
        // Every size around the stack buffer's end: the bytes hashed are the bytes pushed.
        for size in [0, 1, 500, Input::STACK - 1, Input::STACK, Input::STACK + 1, 5000] {
            let mut input = Input::new();
            let mut expected = Vec::new();
            for piece in [&b"head"[..], &vec![b'x'; size], b"tail"] {
                input.push(piece);
                expected.extend_from_slice(piece);
            }
            assert_eq!(input.as_slice(), &expected[..], "size {size}");
        }
        // A user agent longer than the stack buffer still fingerprints, and apart from a shorter one.
        let policy = DeviceFingerprint::new();
        let long = "a".repeat(3 * Input::STACK);
        let long = policy.fingerprint(&headers(&[("user-agent", &long)]));
        assert_ne!(long, policy.fingerprint(&headers(&[("user-agent", "a")])));
    }
}
