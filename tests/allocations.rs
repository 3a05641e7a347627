//! Allocations of a request whose token the cache already holds, counted by a counting global
//! allocator: the guarded route (fingerprint and client-IP bindings, memory revocation) against
//! the bare route, same request. Allocation counts do not depend on the machine's load, so the
//! test pins them: a change that allocates more on a hit fails here.
//!
//! In process (`oneshot` on a current-thread runtime), not over HTTP: the server's own buffers
//! would only add noise to both sides.

mod harness;
#[path = "../benches/routers/mod.rs"]
mod routers;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use http::HeaderValue;
use tower::ServiceExt as _;
use tower_jwt_guard::Algorithm;

/// Counts the allocations of the thread that switched counting on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the thread's locals may be gone while it exits.
    let _ = COUNTING.try_with(|counting| {
        if counting.get() {
            let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        }
    });
}

// SAFETY: every call goes to the system allocator unchanged; counting only reads and writes
// thread-locals of plain `Cell`s, which do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The allocations (reallocations included) of one request through `router`, after `warm`
/// requests that fill the caches and grow the runtime's buffers.
fn allocations_per_request<S, B>(router: &S, bearer: &HeaderValue) -> u64
where
    S: tower::Service<http::Request<axum::body::Body>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
{
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let serve = || {
        let response = runtime.block_on(router.clone().oneshot(routers::request(bearer))).unwrap();
        assert_eq!(response.status(), 200);
        response
    };
    for _ in 0..3 {
        drop(serve());
    }
    let mut counts = Vec::with_capacity(5);
    for _ in 0..5 {
        ALLOCATIONS.with(|count| count.set(0));
        COUNTING.with(|counting| counting.set(true));
        let response = serve();
        drop(response);
        COUNTING.with(|counting| counting.set(false));
        counts.push(ALLOCATIONS.with(Cell::get));
    }
    // Deterministic: every request allocates the same.
    assert!(counts.windows(2).all(|pair| pair[0] == pair[1]), "allocations per request vary: {counts:?}");
    counts[0]
}

/// The most allocations a cache hit may add to those of the bare route behind a pass-through
/// route layer: the two boxed request extensions the layer inserts (`Claims<C>`, `AuthContext`,
/// each an `Arc` in a box of `http::Extensions`), and nothing else. Found with a
/// backtrace-capturing allocator: the layer answers in the inner service's body type
/// (`RejectionBody`), so axum does not box the response body once more (it did while the layer
/// wrapped it in `JwtBody<B>`: 3 then).
const MOST_EXTRA_ALLOCATIONS_ON_A_HIT: u64 = 2;

/// What any route layer costs in axum, whatever it does: the route's boxed service is cloned,
/// and its future boxed, on every request.
const ROUTE_LAYER_ALLOCATIONS: u64 = 2;

/// The bare route behind a route layer that does nothing: the baseline of any layer.
fn pass_through_router() -> axum::Router {
    axum::Router::new()
        .route("/me", axum::routing::get(routers::bare))
        .route_layer(tower::util::MapRequestLayer::new(|request: http::Request<axum::body::Body>| request))
        .with_state(())
}

#[test]
fn a_cache_hit_allocates_only_the_request_extensions() {
    let (key, bearer) = routers::key_and_bearer(Algorithm::HS256);
    let bare = allocations_per_request(&routers::bare_router(), &bearer);
    let layered = allocations_per_request(&pass_through_router(), &bearer);
    let cached = allocations_per_request(&routers::guard_router(&key, true), &bearer);
    let (bound_router, bound_bearer) = routers::bound_router_and_bearer(&key);
    let bound = allocations_per_request(&bound_router, &bound_bearer);
    println!(
        "allocations per request: bare {bare}, behind a pass-through layer {layered}, cache hit {cached}, \
         cache hit with fingerprint + client IP + revocation {bound}"
    );
    assert!(layered <= bare + ROUTE_LAYER_ALLOCATIONS, "{layered} against {bare}");
    assert!(
        cached <= layered + MOST_EXTRA_ALLOCATIONS_ON_A_HIT,
        "a cache hit allocates {} more than a pass-through layer ({cached} against {layered})",
        cached - layered
    );
    // The bindings and the revocation check allocate nothing.
    assert_eq!(bound, cached, "bindings and revocation allocate on a hit");
}
