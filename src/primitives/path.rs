//! A request's path as the service behind the layer may read it: the RFC 3986 §6.2.2 normal
//! form, and the lenient readings of common backends.
//!
//! A check that covers some paths ([`RequireMfaLayer::for_paths`](crate::RequireMfaLayer::for_paths))
//! must cover every spelling that the service behind serves as one of them, or `/%61dmin` walks
//! around a rule for `/admin`. The routers of this crate's users (axum, tonic) match the path as
//! received, but a proxy in front or a backend behind may normalise it first, and they do not
//! all normalise alike. So a path is read several ways, and the check applies when any reading
//! matches (fail closed):
//! - **as received**;
//! - **RFC 3986 normal form** (§6.2.2): percent-encodings of unreserved characters decoded
//!   (`%61` → `a`), the others' hex digits uppercased (§6.2.2.1–2), dot segments removed
//!   (§5.2.4, §6.2.2.3): `/x/../admin` → `/admin`;
//! - **as a decoding backend reads it**: every percent-encoding decoded (`%2F` too, and again
//!   for double encodings, up to [`MAX_DECODE_ROUNDS`] rounds), the path cut at a decoded `?`,
//!   `#` or NUL (`/admin%3F.css`, `/admin%00.html`), `\` read as `/` (IIS), path
//!   parameters removed from each segment (`/admin;jsessionid=1` → `/admin`: Tomcat, Spring,
//!   Jetty), repeated slashes merged (`//admin`: nginx's `merge_slashes`, many routers), dot
//!   segments removed. These steps run in the orders backends use (parameters removed before or
//!   after decoding; slashes merged or not before the dot segments; a normalising proxy in front
//!   of a decoding backend), each order one more reading.
//!
//! Letter case and a trailing slash are the matcher's to ignore (a case-insensitive backend, an
//! Express router serves `/ADMIN/` as `/admin`); the readings keep both. A path still encoded
//! after [`MAX_DECODE_ROUNDS`] rounds is in doubt: [`any_reading`] then answers `true`.
//!
//! This is the crate's one reading of a request path. Its RFC 3986 steps (percent-encodings,
//! dot segments) are the URL normaliser's ([`url`](crate::primitives::url)): one of each.

use std::borrow::Cow;

use crate::primitives::url::{decode_unreserved, escape, remove_dot_segments};

/// Rounds of percent-decoding a decoding backend is assumed to do at most (a double-decoding
/// backend needs two; three leaves a margin). A path with an encoding left after them is in doubt.
pub(crate) const MAX_DECODE_ROUNDS: usize = 3;

/// Whether `matches` holds for `path` as received or for any of its readings (see the module
/// documentation); `true` as well when the path is in doubt (still encoded after
/// [`MAX_DECODE_ROUNDS`] rounds of decoding). A plain path (no `%`, `\`, `;`, `//` or dot
/// segment) is its only reading: no allocation.
pub(crate) fn any_reading(path: &str, mut matches: impl FnMut(&str) -> bool) -> bool {
    if matches(path) {
        return true;
    }
    if is_plain(path.as_bytes()) {
        return false;
    }
    let raw = path.as_bytes();
    let normal = normalize(raw);
    let Some(decoded) = decode_all(raw) else { return true };
    let Some(decoded_without_params) = decode_all(&strip_params(raw)) else { return true };
    let Some(normal_decoded) = decode_all(&normal) else { return true };
    let (decoded, decoded_without_params, normal_decoded) =
        (cut(&decoded), cut(&decoded_without_params), cut(&normal_decoded));
    let readings = [
        normal,
        // decode, then the rest (most servers)
        remove_dot_segments(&merge_slashes(&strip_params(&backslashes(decoded)))),
        // path parameters removed before decoding (Tomcat), slashes merged or not
        remove_dot_segments(&merge_slashes(&backslashes(decoded_without_params))),
        remove_dot_segments(&backslashes(decoded_without_params)),
        // a normalising proxy in front of a decoding backend
        remove_dot_segments(&merge_slashes(&strip_params(&backslashes(normal_decoded)))),
    ];
    readings.iter().any(|reading| matches(&String::from_utf8_lossy(reading)))
}

/// The RFC 3986 §6.2.2 normal form of a path: unreserved characters decoded, the other
/// percent-encodings' hex digits uppercased, dot segments removed. A `%` not followed by two
/// hex digits is kept as it is.
///
/// ```text
/// /%61dmin        → /admin
/// /x/../admin     → /admin
/// /a%2fb/./c      → /a%2Fb/c
/// ```
pub(crate) fn normalize_path(path: &str) -> String {
    String::from_utf8_lossy(&normalize(path.as_bytes())).into_owned()
}

/// [`normalize_path`] on bytes.
fn normalize(path: &[u8]) -> Vec<u8> {
    remove_dot_segments(&decode_unreserved(path))
}

/// Nothing to read differently: no `%`, `\`, `;`, `//` or dot segment.
fn is_plain(path: &[u8]) -> bool {
    !path.iter().any(|b| matches!(b, b'%' | b'\\' | b';'))
        && !path.windows(2).any(|pair| pair == b"//")
        && !path.split(|&b| b == b'/').any(|segment| segment == b"." || segment == b"..")
}

/// One round of decoding every percent-encoding; `None` when there was none.
fn decode_once(path: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(path.len());
    let mut decoded = false;
    let mut i = 0;
    while i < path.len() {
        match escape(&path[i..]) {
            Some(value) => {
                out.push(value);
                decoded = true;
                i += 3;
            }
            None => {
                out.push(path[i]);
                i += 1;
            }
        }
    }
    decoded.then_some(out)
}

/// Every percent-encoding decoded, again and again as long as one is left, for at most
/// [`MAX_DECODE_ROUNDS`] rounds; `None` when one is still left after them (in doubt).
fn decode_all(path: &[u8]) -> Option<Vec<u8>> {
    let mut path = Cow::Borrowed(path);
    for _ in 0..MAX_DECODE_ROUNDS {
        match decode_once(&path) {
            Some(next) => path = Cow::Owned(next),
            None => return Some(path.into_owned()),
        }
    }
    decode_once(&path).is_none().then(|| path.into_owned())
}

/// The path up to a (decoded) `?`, `#` or NUL: where a backend that decodes first ends it.
fn cut(path: &[u8]) -> &[u8] {
    let end = path.iter().position(|b| matches!(b, b'?' | b'#' | 0)).unwrap_or(path.len());
    &path[..end]
}

/// `\` read as `/`.
fn backslashes(path: &[u8]) -> Vec<u8> {
    path.iter().map(|&b| if b == b'\\' { b'/' } else { b }).collect()
}

/// Each segment without its parameters (from `;` to the segment's end).
fn strip_params(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut in_params = false;
    for &b in path {
        match b {
            b'/' => {
                in_params = false;
                out.push(b);
            }
            b';' => in_params = true,
            _ if !in_params => out.push(b),
            _ => {}
        }
    }
    out
}

/// Runs of `/` merged into one.
fn merge_slashes(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if !(b == b'/' && out.last() == Some(&b'/')) {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings(path: &str) -> Vec<String> {
        let mut all = Vec::new();
        any_reading(path, |reading| {
            all.push(reading.to_owned());
            false
        });
        all
    }

    fn reads_as(path: &str, target: &str) -> bool {
        any_reading(path, |reading| reading == target)
    }

    #[test]
    fn rfc_3986_normal_form() {
        for (path, normal) in [
            ("/%61dmin", "/admin"),
            ("/x/../admin", "/admin"),
            ("/./admin", "/admin"),
            ("/admin/.", "/admin/"),
            ("/a/b/../../admin", "/admin"),
            ("/../admin", "/admin"),
            ("/%2e%2E/admin", "/admin"),
            ("/a%2fb", "/a%2Fb"),
            ("/%7euser", "/~user"),
            ("/a/%zz", "/a/%zz"),
            ("/a%", "/a%"),
            ("", "/"),
            ("/", "/"),
            ("/mid/content=5/../6", "/mid/6"),
        ] {
            assert_eq!(normalize_path(path), normal, "{path}");
        }
    }

    #[test]
    fn every_spelling_of_admin_reads_as_admin() {
        for path in [
            "/admin",
            "/%61dmin",
            "/%61%64%6D%69%6E",
            "/x/../admin",
            "/x/%2e%2e/admin",
            "//admin",
            "///admin",
            "/x//../admin",
            "/admin;jsessionid=1",
            "/admin;",
            "/x;a=/../admin",
            "/x%2F..%2Fadmin",
            "/%2Fadmin",
            "/x\\..\\admin",
            "/%5cadmin",
            "/%2561dmin",
            "/%252561dmin",
            "/./admin",
            "/admin%3F.css",
            "/admin%23x",
            "/admin%00.html",
        ] {
            assert!(reads_as(path, "/admin"), "{path}: {:?}", readings(path));
        }
        for path in ["/admins", "/me", "/x/admin", "/admin/x", "/a/dmin"] {
            assert!(!reads_as(path, "/admin"), "{path}: {:?}", readings(path));
        }
    }

    #[test]
    fn plain_paths_are_read_once_and_deep_encodings_are_in_doubt() {
        assert_eq!(readings("/orders/42"), ["/orders/42"]);
        assert_eq!(readings("/Admin/"), ["/Admin/"], "case and the trailing slash are the matcher's");
        assert!(readings("/%61").len() > 1);
        assert!(!any_reading("/%252561", |_| false), "three rounds decode it");
        assert!(any_reading("/%25252561", |_| false), "still encoded after three rounds: in doubt");
    }
}
