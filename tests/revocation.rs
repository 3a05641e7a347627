//! Revocation and refresh tokens with the in-memory stores, through a real axum server on
//! loopback guarded by the layer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use common::{
    eventually, get as http_get, logout, logout_everywhere, me, now, post as http_post, serve, token,
    token_issued_at, User,
};
use tower_jwt_guard::refresh::{
    MemoryRefreshStore, RefreshError, RefreshPolicy, RefreshStore, SenderConstraint,
};
use tower_jwt_guard::revocation::{MemoryRevocationStore, RevocationCheck, RevocationError, RevocationStore};
use tower_jwt_guard::{JwtAuth, TokenFacts};

type Store = Arc<dyn RevocationStore>;

/// An app whose layer consults `store`.
async fn app_with(store: Store, fail_open: bool) -> std::net::SocketAddr {
    let auth = JwtAuth::builder()
        .hmac_secret(common::SECRET)
        .revocation(Arc::clone(&store))
        .revocation_fail_open(fail_open)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/me", get(me))
        .route("/logout", post(logout::<Store>))
        .route("/logout-everywhere", post(logout_everywhere::<Store>))
        .route_layer(auth.layer::<User>())
        .with_state(store);
    serve(app).await
}

#[tokio::test]
async fn a_token_revoked_by_jti_is_refused_and_others_are_not() {
    let addr = app_with(Arc::new(MemoryRevocationStore::new()), false).await;
    let first = token("alice");
    let second = token("alice");
    // Twice: the second request is a verified-token cache hit, which must not skip revocation.
    assert!(http_get(addr, "/me", &first.token).await.is(200, None));
    assert!(http_get(addr, "/me", &first.token).await.is(200, None));

    assert_eq!(http_post(addr, "/logout", &first.token).await.status, 204);

    assert!(http_get(addr, "/me", &first.token).await.is(401, Some("TOKEN_REVOKED")));
    assert!(http_post(addr, "/logout", &first.token).await.is(401, Some("TOKEN_REVOKED")));
    assert!(http_get(addr, "/me", &second.token).await.is(200, None));
}

#[tokio::test]
async fn a_subject_revocation_refuses_its_earlier_tokens_only() {
    let addr = app_with(Arc::new(MemoryRevocationStore::new()), false).await;
    let alice = token("alice");
    let alice_other_device = token("alice");
    let bob = token("bob");
    assert!(http_get(addr, "/me", &alice_other_device.token).await.is(200, None));

    assert_eq!(http_post(addr, "/logout-everywhere", &alice.token).await.status, 204);

    assert!(http_get(addr, "/me", &alice.token).await.is(401, Some("TOKEN_REVOKED")));
    assert!(http_get(addr, "/me", &alice_other_device.token).await.is(401, Some("TOKEN_REVOKED")));
    assert!(http_get(addr, "/me", &bob.token).await.is(200, None));
    // A token issued after the revocation (a new login) passes.
    let later = token_issued_at("alice", now() + 2);
    assert!(http_get(addr, "/me", &later.token).await.is(200, None));
}

#[tokio::test]
async fn revocations_expire_with_their_token() {
    let store = MemoryRevocationStore::new().expiry_margin(Duration::ZERO);
    // Already expired: nothing to remember.
    store.revoke_token(None, "old", now() - 1).await.unwrap();
    assert!(store.is_empty());

    let mut facts = TokenFacts::default();
    facts.jti = Some("short-lived".into());
    store.revoke_token(None, "short-lived", now() + 1).await.unwrap();
    assert_eq!(store.len(), 1);
    assert!(matches!(store.check(&facts), RevocationCheck::Revoked));

    eventually("the entry to expire", Duration::from_secs(10), || {
        let store = store.clone();
        async move { store.is_empty().then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn a_full_store_refuses_new_revocations_instead_of_forgetting_old_ones() {
    let store = MemoryRevocationStore::with_capacity(2);
    let far = now() + 3600;
    store.revoke_token(None, "a", far).await.unwrap();
    store.revoke_token(None, "b", far).await.unwrap();
    assert_eq!(store.revoke_token(None, "c", far).await, Err(RevocationError::CapacityExceeded));
    // Revoking an already revoked token again is fine.
    store.revoke_token(None, "a", far).await.unwrap();
    for jti in ["a", "b"] {
        let mut facts = TokenFacts::default();
        facts.jti = Some(jti.into());
        assert!(matches!(store.check(&facts), RevocationCheck::Revoked));
    }
}

/// A store that cannot answer (a shared store that is down).
struct Down;

impl RevocationStore for Down {
    fn check(&self, _: &TokenFacts) -> RevocationCheck {
        RevocationCheck::Unavailable
    }
}

#[tokio::test]
async fn a_store_that_cannot_answer_fails_closed_unless_fail_open_was_chosen() {
    let closed = app_with(Arc::new(Down), false).await;
    assert!(http_get(closed, "/me", &token("alice").token).await.is(503, Some("AUTH_UNAVAILABLE")));
    let open = app_with(Arc::new(Down), true).await;
    assert!(http_get(open, "/me", &token("alice").token).await.is(200, None));
    // The default revoke methods of a read-only store say so.
    assert_eq!(Down.revoke_token(None, "x", now() + 60).await, Err(RevocationError::Unsupported));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replay_revokes_the_family() {
    let store = MemoryRefreshStore::new();
    let login = store.issue("alice", &SenderConstraint::none()).await.unwrap();
    let second = store.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap();
    let third = store.rotate(second.token.as_str(), &SenderConstraint::none()).await.unwrap();
    assert_eq!((third.subject.as_str(), third.family.as_str()), ("alice", login.family.as_str()));
    assert_ne!(third.token, second.token);

    // Another login is another family, untouched by the replay below.
    let other = store.issue("alice", &SenderConstraint::none()).await.unwrap();

    // The first token, whose successor has been used: a replay, not a retry.
    assert_eq!(
        store.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Reused { subject: "alice".into() }
    );
    assert_eq!(
        store.rotate(third.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
    assert!(store.rotate(other.token.as_str(), &SenderConstraint::none()).await.is_ok());
    assert_eq!(store.rotate("garbage", &SenderConstraint::none()).await.unwrap_err(), RefreshError::Invalid);
}

#[tokio::test]
async fn logout_revokes_the_refresh_family() {
    let store = MemoryRefreshStore::new();
    let login = store.issue("alice", &SenderConstraint::none()).await.unwrap();
    let current = store.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap();
    // Logging out with the used (older) token still ends the family, without naming the
    // subject (whose other sessions it must not end).
    assert_eq!(store.revoke(login.token.as_str(), &SenderConstraint::none()).await.unwrap(), None);
    assert_eq!(
        store.rotate(current.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
    assert_eq!(store.revoke("unknown", &SenderConstraint::none()).await.unwrap(), None);
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let policy = RefreshPolicy::default().token_ttl(Duration::from_secs(1));
    let store = MemoryRefreshStore::with_policy(policy);
    let login = store.issue("alice", &SenderConstraint::none()).await.unwrap();
    assert!(login.expires_at <= now() + 1);
    // Rotating would use it up: wait (bounded) for the clock to pass its expiry, then try once.
    eventually("the clock to pass the expiry", Duration::from_secs(10), || async {
        (now() > login.expires_at).then_some(())
    })
    .await;
    assert_eq!(
        store.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Invalid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_grace_period_of_concurrent_refreshes_of_one_token_exactly_one_wins() {
    let store = MemoryRefreshStore::with_policy(RefreshPolicy::default().grace_period(Duration::ZERO));
    let login = store.issue("alice", &SenderConstraint::none()).await.unwrap();
    let winners = common::race_rotations(std::slice::from_ref(&store), login.token.as_str()).await;
    assert_eq!(winners.len(), 1, "exactly one concurrent refresh wins");
    // The losers were replays: the family, with the winner's token, is revoked.
    assert_eq!(
        store.rotate(winners[0].token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
}

#[tokio::test]
async fn refresh_rotates_the_cookie_a_replay_kills_the_family_and_logout_revokes_both() {
    use common::auth_flow::{call, serve_auth};
    let addr = serve_auth(Arc::new(MemoryRevocationStore::new()), Arc::new(MemoryRefreshStore::new())).await;

    let first = call(addr, "/auth/login", None).await.unwrap();
    assert!(http_get(addr, "/protected", &first.access).await.is(200, None));
    let second = call(addr, "/auth/refresh", Some(&first)).await.unwrap();
    assert_ne!(second.refresh, first.refresh);
    assert!(http_get(addr, "/protected", &second.access).await.is(200, None));

    // The first cookie again while the second is unused: a retry, answered with the same cookie.
    let retried = call(addr, "/auth/refresh", Some(&first)).await.unwrap();
    assert_eq!(retried.refresh, second.refresh);
    // Once the second is used, the first cookie again is a replay: refused, and the family dies.
    let third = call(addr, "/auth/refresh", Some(&second)).await.unwrap();
    assert!(call(addr, "/auth/refresh", Some(&first))
        .await
        .unwrap_err()
        .is(401, Some("REFRESH_TOKEN_REUSED")));
    assert!(call(addr, "/auth/refresh", Some(&third))
        .await
        .unwrap_err()
        .is(401, Some("INVALID_REFRESH_TOKEN")));

    // Logout: the access token is refused and the refresh family is gone.
    let session = call(addr, "/auth/login", None).await.unwrap();
    assert_eq!(call(addr, "/auth/logout", Some(&session)).await.unwrap_err().status, 204);
    assert!(http_get(addr, "/protected", &session.access).await.is(401, Some("TOKEN_REVOKED")));
    assert!(call(addr, "/auth/refresh", Some(&session))
        .await
        .unwrap_err()
        .is(401, Some("INVALID_REFRESH_TOKEN")));
}

#[tokio::test]
async fn logging_out_everywhere_revokes_every_refresh_family_of_the_subject() {
    let store = MemoryRefreshStore::new();
    let phone = store.issue("alice", &SenderConstraint::none()).await.unwrap();
    let laptop = store.issue("alice", &SenderConstraint::none()).await.unwrap();
    let laptop = store.rotate(laptop.token.as_str(), &SenderConstraint::none()).await.unwrap();
    let bob = store.issue("bob", &SenderConstraint::none()).await.unwrap();

    assert_eq!(store.revoke_subject("alice").await.unwrap(), 2);
    assert_eq!(
        store.rotate(phone.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
    assert_eq!(
        store.rotate(laptop.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
    assert!(store.rotate(bob.token.as_str(), &SenderConstraint::none()).await.is_ok());
    // A later login starts a fresh family.
    let again = store.issue("alice", &SenderConstraint::none()).await.unwrap();
    assert!(store.rotate(again.token.as_str(), &SenderConstraint::none()).await.is_ok());
    assert_eq!(store.revoke_subject("alice").await.unwrap(), 1);
}

#[test]
fn a_leeway_longer_than_the_store_remembers_is_a_configuration_error() {
    use std::time::Duration;
    use tower_jwt_guard::revocation::MemoryRevocationStore;
    use tower_jwt_guard::JwtAuth;
    let short = MemoryRevocationStore::new().expiry_margin(Duration::from_secs(60));
    let error = JwtAuth::builder()
        .hmac_secret([7u8; 32])
        .leeway(Duration::from_secs(600))
        .revocation(short)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("leeway"), "{error}");
    let enough = MemoryRevocationStore::new().expiry_margin(Duration::from_secs(600));
    assert!(JwtAuth::builder()
        .hmac_secret([7u8; 32])
        .leeway(Duration::from_secs(600))
        .revocation(enough)
        .build()
        .is_ok());
}

/// A store that asks a (slow) remote server: it answers "not revoked" once the wall clock reads
/// `at` (seconds since the epoch).
struct AnswersAt(u64);

impl RevocationStore for AnswersAt {
    fn check(&self, _: &TokenFacts) -> RevocationCheck {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(self.0);
        let wait = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
        RevocationCheck::Pending(Box::pin(async move {
            tokio::time::sleep(wait).await;
            RevocationCheck::Valid
        }))
    }
}

#[tokio::test]
async fn a_token_that_expires_during_a_remote_revocation_check_is_refused() {
    // Valid when the request arrives; the store answers only after it has expired (no leeway).
    let exp = now() + 2;
    let minted = common::issuer()
        .mint_with("alice", &serde_json::json!({}), |claims| {
            claims.insert("exp".into(), exp.into());
        })
        .unwrap();
    let auth = JwtAuth::builder()
        .hmac_secret(common::SECRET)
        .leeway(Duration::ZERO)
        .revocation(AnswersAt(exp + 1))
        .build()
        .unwrap();
    let app = Router::new().route("/me", get(me)).route_layer(auth.layer::<User>());
    let addr = serve(app).await;
    let answer = tokio::time::timeout(Duration::from_secs(60), http_get(addr, "/me", &minted.token)).await;
    assert!(answer.expect("the request hung").is(401, Some("TOKEN_EXPIRED")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn within_the_grace_period_concurrent_refreshes_get_the_same_successor() {
    let store = MemoryRefreshStore::new();
    let login = store.issue("alice", &SenderConstraint::none()).await.unwrap();
    let winners = common::race_rotations(std::slice::from_ref(&store), login.token.as_str()).await;
    assert_eq!(winners.len(), 16, "every concurrent refresh is answered");
    assert!(winners.iter().all(|w| w.token == winners[0].token), "one successor");
    assert_eq!(winners.iter().filter(|w| !w.repeated).count(), 1, "minted once");
    let next = store.rotate(winners[0].token.as_str(), &SenderConstraint::none()).await.unwrap();
    assert_eq!(
        store.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Reused { subject: "alice".into() }
    );
    assert_eq!(
        store.rotate(next.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
}

#[tokio::test]
async fn outside_the_grace_period_a_second_use_revokes_the_family() {
    let store =
        MemoryRefreshStore::with_policy(RefreshPolicy::default().grace_period(Duration::from_secs(1)));
    let login = store.issue("alice", &SenderConstraint::none()).await.unwrap();
    let next = store.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap();
    let rotated_at = now();
    eventually("the grace period to pass", Duration::from_secs(10), || async {
        (now() > rotated_at + 1).then_some(())
    })
    .await;
    assert_eq!(
        store.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Reused { subject: "alice".into() }
    );
    assert_eq!(
        store.rotate(next.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
}
