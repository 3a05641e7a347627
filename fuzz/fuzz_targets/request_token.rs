//! Step 1, extraction: arbitrary `Authorization`, `Cookie` and URI bytes, with every source
//! configured (bearer header, cookie, query parameter). Whatever is found is then verified.
#![no_main]

use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use tower_jwt_guard::{JwtAuth, TokenSource};

fn auth() -> &'static JwtAuth {
    static AUTH: OnceLock<JwtAuth> = OnceLock::new();
    AUTH.get_or_init(|| {
        JwtAuth::builder()
            .hmac_secret([7u8; 32])
            .sources([TokenSource::Bearer, TokenSource::cookie("access_token"), TokenSource::query()])
            .max_token_len(1024)
            .build()
            .expect("a valid configuration")
    })
}

fuzz_target!(|data: &[u8]| {
    // Three fields separated by 0xFF bytes: authorization, cookie, URI.
    let mut fields = data.splitn(3, |&b| b == 0xFF);
    let (authorization, cookie, uri) = (fields.next(), fields.next(), fields.next());
    let mut headers = HeaderMap::new();
    for (name, value) in [("authorization", authorization), ("cookie", cookie)] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.append(name, value);
        }
    }
    let uri = uri.and_then(|u| Uri::try_from(u).ok()).unwrap_or_else(|| Uri::from_static("/"));
    if let Ok(Some(token)) = tower_jwt_guard::__fuzz::extract(auth(), &headers, &uri) {
        assert!(token.len() <= 1024, "the size cap holds");
        let _ = tower_jwt_guard::__fuzz::verify(auth(), token, 1_700_000_000);
    }
});
