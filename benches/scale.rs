//! How the per-request cost grows as each dimension grows alone: trusted issuers (a list of
//! `Issuer`s), keys in one key set (selected by `kid`), revoked `jti`s in the memory store, and
//! distinct tokens in the verified-token cache. Each point is one request through an axum
//! router (HS256, the guarded route of `benches/routers`), on a cache hit and uncached.
//!
//! ```text
//! cargo bench --bench scale -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! After the run it writes `target/scale.svg` (one panel per dimension, from criterion's
//! estimates of this run).

#[path = "../tests/harness/mod.rs"]
mod harness;
mod routers;

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use http::HeaderValue;
use serde_json::json;
use tower::ServiceExt as _;
use tower_jwt_guard::revocation::{MemoryRevocationStore, RevocationStore as _};
use tower_jwt_guard::{Algorithm, Issuer, JwtAuth, VerificationKey};

use harness::{claims, TestKey};

/// One dimension: its name (criterion's group), its label on the plot, and the sizes measured.
struct Dimension {
    group: &'static str,
    label: &'static str,
    sizes: &'static [usize],
}

const ISSUERS: Dimension =
    Dimension { group: "scale_issuers", label: "trusted issuers (list)", sizes: &[1, 100, 10_000] };
const KEYS: Dimension =
    Dimension { group: "scale_keys", label: "keys in one key set", sizes: &[1, 10, 100, 1_000] };
const REVOKED: Dimension = Dimension {
    group: "scale_revoked",
    label: "revoked jtis (memory store)",
    sizes: &[0, 1_000, 100_000, 1_000_000],
};
const CACHED_TOKENS: Dimension = Dimension {
    group: "scale_cached_tokens",
    label: "distinct tokens in the cache",
    sizes: &[1_000, 10_000, 100_000],
};

const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret!!";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn serve(runtime: &tokio::runtime::Runtime, router: &axum::Router, bearer: &HeaderValue) {
    let response = runtime.block_on(router.clone().oneshot(routers::request(bearer))).unwrap();
    assert_eq!(response.status(), 200);
    black_box(response);
}

fn bearer(token: String) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

fn token_claims(sub: &str) -> serde_json::Value {
    let mut token_claims = claims(sub);
    token_claims["aud"] = "bench".into();
    token_claims
}

/// Measures `router` on a cache hit and uncached, at one size of a dimension.
fn measure(
    c: &mut Criterion,
    dimension: &Dimension,
    size: usize,
    build: impl Fn(bool) -> axum::Router,
    bearer: &HeaderValue,
) {
    let runtime = runtime();
    let mut group = c.benchmark_group(dimension.group);
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (name, cache) in [("hit", true), ("uncached", false)] {
        let router = build(cache);
        serve(&runtime, &router, bearer);
        group.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
            b.iter(|| serve(&runtime, &router, bearer))
        });
    }
    group.finish();
}

fn issuers(c: &mut Criterion) {
    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    for &size in ISSUERS.sizes {
        // The token names the last issuer of the list.
        let mut token_claims = token_claims("bench");
        token_claims["iss"] = format!("https://issuer-{}.example", size - 1).into();
        let bearer = bearer(key.sign(&token_claims));
        let build = |cache: bool| {
            let mut builder = JwtAuth::builder();
            for i in 0..size {
                builder = builder.trust(
                    Issuer::new(format!("https://issuer-{i}.example"))
                        .key(key.verification_key())
                        .audience("bench"),
                );
            }
            if !cache {
                builder = builder.cache_capacity(0);
            }
            routers::guard_router_for(&builder.build().unwrap())
        };
        measure(c, &ISSUERS, size, build, &bearer);
    }
}

fn keys(c: &mut Criterion) {
    for &size in KEYS.sizes {
        // The token is signed by the last key of the set.
        let secret = |i: usize| format!("bench-secret-{i:06}-bench-secret-bench-secret");
        let signer = TestKey::hmac(Algorithm::HS256, secret(size - 1).as_bytes());
        let kid = format!("key-{}", size - 1);
        let bearer = bearer(signer.sign_with_header(json!({ "kid": kid }), &token_claims("bench")));
        let build = |cache: bool| {
            let mut builder = JwtAuth::builder().audience("bench");
            for i in 0..size {
                let key =
                    VerificationKey::hmac(Algorithm::HS256, secret(i)).unwrap().with_kid(format!("key-{i}"));
                builder = builder.key(key);
            }
            if !cache {
                builder = builder.cache_capacity(0);
            }
            routers::guard_router_for(&builder.build().unwrap())
        };
        measure(c, &KEYS, size, build, &bearer);
    }
}

fn revoked(c: &mut Criterion) {
    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    let runtime = runtime();
    for &size in REVOKED.sizes {
        let store = MemoryRevocationStore::with_capacity(size as u64 + 1);
        runtime.block_on(async {
            for i in 0..size {
                store.revoke_token(None, &format!("revoked-{i}"), harness::now() + 3600).await.unwrap();
            }
        });
        let mut token_claims = token_claims("bench");
        token_claims["jti"] = "a-live-token".into();
        let bearer = bearer(key.sign(&token_claims));
        let build = |cache: bool| {
            let mut builder =
                JwtAuth::builder().key(key.verification_key()).audience("bench").revocation(store.clone());
            if !cache {
                builder = builder.cache_capacity(0);
            }
            routers::guard_router_for(&builder.build().unwrap())
        };
        measure(c, &REVOKED, size, build, &bearer);
    }
}

fn cached_tokens(c: &mut Criterion) {
    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    let runtime = runtime();
    let mut group = c.benchmark_group(CACHED_TOKENS.group);
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for &size in CACHED_TOKENS.sizes {
        let auth = JwtAuth::builder()
            .key(key.verification_key())
            .audience("bench")
            .cache_capacity(size)
            .build()
            .unwrap();
        let layer = auth.layer::<routers::BenchClaims>();
        let router = axum::Router::new()
            .route("/me", axum::routing::get(routers::guarded))
            .route_layer(layer.clone())
            .with_state(());
        let bearers: Vec<HeaderValue> =
            (0..size).map(|i| bearer(key.sign(&token_claims(&format!("user-{i}"))))).collect();
        for bearer in &bearers {
            serve(&runtime, &router, bearer);
        }
        // Hits spread over the whole cache, not one hot entry.
        let mut next = 0usize;
        group.bench_with_input(BenchmarkId::new("hit", size), &size, |b, _| {
            b.iter(|| {
                next = (next + 7919) % size;
                serve(&runtime, &router, &bearers[next])
            })
        });
        if let Some(stats) = layer.cache_stats() {
            println!(
                "{size} tokens: the cache holds {} (capacity {}); {} hits, {} misses in all",
                stats.len, stats.capacity, stats.hits, stats.misses
            );
        }
    }
    group.finish();
}

/// The mean time of one measurement of this run, in nanoseconds, from criterion's estimates.
fn estimate(group: &str, function: &str, size: usize) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let path =
        target.join("criterion").join(group).join(function).join(size.to_string()).join("new/estimates.json");
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates["mean"]["point_estimate"].as_f64()
}

/// A line of a panel: the function measured, its colour, its points (size, µs).
type Series = (&'static str, &'static str, Vec<(usize, f64)>);

/// One panel per dimension: time per request (µs) against the size (log scale), a line for a
/// cache hit and one uncached.
fn plot(dimensions: &[&Dimension]) -> String {
    const PANEL_W: f64 = 300.0;
    const PANEL_H: f64 = 220.0;
    const LEFT: f64 = 50.0;
    const TOP: f64 = 40.0;
    let width = PANEL_W * dimensions.len() as f64 + 20.0;
    let height = PANEL_H + 90.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="18" font-size="14">tower-jwt-guard: time per request (µs) as each dimension grows alone (HS256, axum, in process)</text>"#
    );
    for (panel, dimension) in dimensions.iter().enumerate() {
        let x0 = panel as f64 * PANEL_W + LEFT;
        let (w, h) = (PANEL_W - LEFT - 20.0, PANEL_H - 40.0);
        let series: Vec<Series> = [("hit", "#1f77b4"), ("uncached", "#d62728")]
            .into_iter()
            .map(|(function, colour)| {
                let points = dimension
                    .sizes
                    .iter()
                    .filter_map(|&size| {
                        estimate(dimension.group, function, size).map(|ns| (size, ns / 1000.0))
                    })
                    .collect();
                (function, colour, points)
            })
            .collect();
        let top =
            series.iter().flat_map(|(_, _, points)| points.iter().map(|p| p.1)).fold(0.0, f64::max) * 1.15;
        let top = if top > 0.0 { top } else { 1.0 };
        let log = |size: usize| ((size.max(1)) as f64).log10();
        let (min, max) = (log(dimension.sizes[0]), log(*dimension.sizes.last().unwrap()));
        let x = |size: usize| x0 + if max > min { (log(size) - min) / (max - min) * w } else { w / 2.0 };
        let y = |value: f64| TOP + h - value / top * h;
        let _ =
            writeln!(svg, r#"<text x="{x0}" y="{}" font-size="12">{}</text>"#, TOP - 8.0, dimension.label);
        let _ =
            writeln!(svg, r#"<path d="M{x0},{TOP} V{} H{}" fill="none" stroke="black"/>"#, TOP + h, x0 + w);
        for tick in 0..=4 {
            let value = top * f64::from(tick) / 4.0;
            let (label_x, label_y, line_y, right) = (x0 - 4.0, y(value) + 4.0, y(value), x0 + w);
            let _ = writeln!(
                svg,
                r##"<text x="{label_x}" y="{label_y}" text-anchor="end">{value:.1}</text><line x1="{x0}" x2="{right}" y1="{line_y}" y2="{line_y}" stroke="#ddd"/>"##
            );
        }
        for &size in dimension.sizes {
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="middle">{size}</text>"#,
                x(size),
                TOP + h + 14.0
            );
        }
        for (_, colour, points) in &series {
            if points.is_empty() {
                continue;
            }
            let line: Vec<String> =
                points.iter().map(|&(size, value)| format!("{:.1},{:.1}", x(size), y(value))).collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                line.join(" ")
            );
            for &(size, value) in points {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                    x(size),
                    y(value)
                );
            }
        }
    }
    let legend_y = PANEL_H + 60.0;
    let _ = writeln!(
        svg,
        r##"<line x1="20" x2="40" y1="{legend_y}" y2="{legend_y}" stroke="#1f77b4" stroke-width="2"/><text x="45" y="{}">cache hit</text><line x1="120" x2="140" y1="{legend_y}" y2="{legend_y}" stroke="#d62728" stroke-width="2"/><text x="145" y="{}">uncached</text>"##,
        legend_y + 4.0,
        legend_y + 4.0
    );
    svg.push_str("</svg>\n");
    svg
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    issuers(&mut c);
    keys(&mut c);
    revoked(&mut c);
    cached_tokens(&mut c);
    c.final_summary();
    let dimensions = [&ISSUERS, &KEYS, &REVOKED, &CACHED_TOKENS];
    for dimension in dimensions {
        for function in ["hit", "uncached"] {
            let figures: Vec<String> = dimension
                .sizes
                .iter()
                .filter_map(|&size| {
                    estimate(dimension.group, function, size).map(|ns| format!("{size}: {ns:.0} ns"))
                })
                .collect();
            if !figures.is_empty() {
                println!("{} ({function}): {}", dimension.label, figures.join(", "));
            }
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let path = target.join("scale.svg");
    match std::fs::write(&path, plot(&dimensions)) {
        Ok(()) => println!("plot: {}", path.display()),
        Err(error) => eprintln!("plot not written to {}: {error}", path.display()),
    }
}
