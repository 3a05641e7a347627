//! The web page of `full_flow` (`GET /`): static HTML, CSS and one JavaScript module, compiled
//! into the example with `include_str!`, and the headers a browser needs around them.
//!
//! The page does the whole flow (log in, call, step up, refresh, log out) with DPoP proofs
//! from a non-extractable WebCrypto key; see `app.js`. Its accessible names are a contract
//! (EXAMPLES.md) that the browser test (`tests/browser.rs`) relies on.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("index.html");
const APP_CSS: &str = include_str!("app.css");
const APP_JS: &str = include_str!("app.js");

/// The page's policy: its own script and style only (no inline script, no `eval`), `fetch` to
/// its own origin only, no plugins, no `<base>`, no form posted anywhere (the script handles
/// them), never framed, and no string ever turned into markup (Trusted Types).
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
     require-trusted-types-for 'script'";

/// The answers of the API (JSON) are never a document to render or frame.
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// `GET /`, `/app.css` and `/app.js`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (CONTENT_TYPE, content_type),
        (CONTENT_SECURITY_POLICY, PAGE_POLICY),
        // Revalidated on every load: a new build of the example is picked up at once.
        (CACHE_CONTROL, "no-cache"),
    ];
    (headers, body).into_response()
}

/// The headers every answer carries (a `map_response` middleware): no MIME sniffing, no
/// `Referer` leaving the page, no framing, no other origin's window holding a reference to it,
/// no other origin embedding its answers.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    headers.entry(CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(API_POLICY));
    response
}
