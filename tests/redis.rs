//! Revocation and refresh tokens shared through a real `redis-server` (feature `redis`).
//!
//! Each test starts its own server on an ephemeral port (or uses `REDIS_URL` with a unique
//! key prefix). Without Redis the tests say "skipped"; with `REQUIRE_REDIS=1` (CI) they fail.
#![cfg(feature = "redis")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::redis_server::{subject_key, token_key, unique_prefix, Redis};
use common::{
    answers, eventually, get as http_get, now, post as http_post, revocations, subscribed, token,
    token_issued_at,
};
use redis::AsyncCommands as _;
use tower_jwt_guard::refresh::{
    RedisRefreshStore, RefreshError, RefreshPolicy, RefreshStore, SenderConstraint,
};
use tower_jwt_guard::revocation::{RedisRevocationStore, RevocationError, RevocationStore};

const PATIENCE: Duration = Duration::from_secs(20);

fn refresh_store(url: &str, prefix: &str) -> RedisRefreshStore {
    RedisRefreshStore::builder(url).unwrap().key_prefix(prefix).build().unwrap()
}

async fn instance(store: &RedisRevocationStore) -> SocketAddr {
    common::revocation_instance(store).await
}

#[tokio::test]
async fn revoke_by_jti_and_by_subject_through_the_layer() {
    let Some(redis) = Redis::for_test("revoke_by_jti_and_by_subject_through_the_layer") else { return };
    let store = revocations(&redis.url(), &unique_prefix("layer"));
    let addr = instance(&store).await;
    let first = token("alice");
    let second = token("alice");
    let bob = token("bob");
    assert!(http_get(addr, "/me", &first.token).await.is(200, None));

    assert_eq!(http_post(addr, "/logout", &first.token).await.status, 204);
    assert!(http_get(addr, "/me", &first.token).await.is(401, Some("TOKEN_REVOKED")));
    assert!(http_get(addr, "/me", &second.token).await.is(200, None));

    assert_eq!(http_post(addr, "/logout-everywhere", &second.token).await.status, 204);
    assert!(http_get(addr, "/me", &second.token).await.is(401, Some("TOKEN_REVOKED")));
    assert!(http_get(addr, "/me", &bob.token).await.is(200, None));
    assert!(http_get(addr, "/me", &token_issued_at("alice", now() + 2).token).await.is(200, None));
}

#[tokio::test]
async fn a_revocation_on_one_instance_is_refused_on_the_other() {
    let Some(redis) = Redis::for_test("a_revocation_on_one_instance_is_refused_on_the_other") else { return };
    let prefix = unique_prefix("instances");
    let (store_a, store_b) = (revocations(&redis.url(), &prefix), revocations(&redis.url(), &prefix));
    let (a, b) = (instance(&store_a).await, instance(&store_b).await);
    subscribed(&store_b, PATIENCE).await;
    let access = token("alice");
    let other = token("carol");
    // B answers from its local cache from now on ("not revoked"): the invalidation must reach it.
    for _ in 0..2 {
        assert!(http_get(b, "/me", &access.token).await.is(200, None));
        assert!(http_get(b, "/me", &other.token).await.is(200, None));
    }

    assert_eq!(http_post(a, "/logout", &access.token).await.status, 204);
    answers(b, "/me", &access.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;

    assert_eq!(http_post(a, "/logout-everywhere", &other.token).await.status, 204);
    answers(b, "/me", &other.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
    assert!(http_get(b, "/me", &token("dave").token).await.is(200, None));
}

#[tokio::test]
async fn revocation_entries_expire_with_their_token() {
    let Some(redis) = Redis::for_test("revocation_entries_expire_with_their_token") else { return };
    let prefix = unique_prefix("expiry");
    let store = RedisRevocationStore::builder(&redis.url())
        .unwrap()
        .key_prefix(&prefix)
        .expiry_margin(Duration::ZERO)
        .subject_retention(Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut conn =
        redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();

    store.revoke_token(None, "already-expired", now() - 1).await.unwrap();
    assert!(!conn.exists::<_, bool>(token_key(&prefix, None, "already-expired")).await.unwrap());

    let issued = now();
    store.revoke_subject(None, "alice", issued).await.unwrap();
    let ttl: i64 = conn.ttl(subject_key(&prefix, None, "alice")).await.unwrap();
    assert!(ttl > 0 && ttl <= 3600, "subject entry TTL {ttl}");

    store.revoke_token(None, "short-lived", now() + 1).await.unwrap();
    let key = token_key(&prefix, None, "short-lived");
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!((0..=2).contains(&ttl), "token entry TTL {ttl}");
    eventually("the entry to expire", PATIENCE, || {
        let (mut conn, key) = (conn.clone(), key.clone());
        async move { (!conn.exists::<_, bool>(&key).await.unwrap()).then_some(()) }
    })
    .await;
}

/// Issue #25: a family bound to the login's DPoP key (and certificate) is refreshed only with
/// them, on any instance; another key, or none, is refused inside the script without rotating,
/// retries within the grace period included.
#[tokio::test]
async fn a_sender_constrained_family_refuses_another_key_without_rotating() {
    let test = "a_sender_constrained_family_refuses_another_key_without_rotating";
    let Some(redis) = Redis::for_test(test) else { return };
    let prefix = unique_prefix("constrained");
    let (a, b) = (refresh_store(&redis.url(), &prefix), refresh_store(&redis.url(), &prefix));
    let key = |jkt: &str| SenderConstraint::none().with_jkt(jkt);

    let login = a.issue("alice", &key("k1")).await.unwrap();
    for presented in [key("k2"), SenderConstraint::none(), SenderConstraint::none().with_certificate("c")] {
        let refused = b.rotate(login.token.as_str(), &presented).await;
        assert_eq!(refused.unwrap_err(), RefreshError::SenderMismatch, "{presented:?}");
    }
    // Nothing changed: the key's holder rotates it once, on either instance.
    let next = b.rotate(login.token.as_str(), &key("k1")).await.unwrap();
    assert!(!next.repeated);
    // The retry of the spent token needs the key too; without it, no successor and no revocation.
    assert_eq!(a.rotate(login.token.as_str(), &key("k2")).await.unwrap_err(), RefreshError::SenderMismatch);
    let retried = a.rotate(login.token.as_str(), &key("k1")).await.unwrap();
    assert_eq!((retried.token.as_str(), retried.repeated), (next.token.as_str(), true));
    let third = a.rotate(next.token.as_str(), &key("k1")).await.unwrap();
    assert_eq!(b.rotate(third.token.as_str(), &key("k2")).await.unwrap_err(), RefreshError::SenderMismatch);
    assert!(b.rotate(third.token.as_str(), &key("k1")).await.is_ok());

    // Bound to a certificate (and a key): both are needed.
    let both = key("k1").with_certificate("x5t");
    let login = a.issue("alice", &both).await.unwrap();
    assert_eq!(b.rotate(login.token.as_str(), &key("k1")).await.unwrap_err(), RefreshError::SenderMismatch);
    let other_certificate = key("k1").with_certificate("other");
    assert_eq!(
        b.rotate(login.token.as_str(), &other_certificate).await.unwrap_err(),
        RefreshError::SenderMismatch
    );
    assert!(b.rotate(login.token.as_str(), &both).await.is_ok());

    // A bearer login's family takes any request, as before.
    let bearer = a.issue("bob", &SenderConstraint::none()).await.unwrap();
    assert!(b.rotate(bearer.token.as_str(), &key("any")).await.is_ok());

    // The family records hold the thumbprints, never a token.
    let mut conn =
        redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let family: std::collections::HashMap<String, String> =
        conn.hgetall(format!("{prefix}refresh:{{{}}}", login.family)).await.unwrap();
    assert_eq!((family["jkt"].as_str(), family["x5t"].as_str()), ("k1", "x5t"));
}

#[tokio::test]
async fn logout_names_the_subject_only_for_the_current_token_with_the_logins_key() {
    let Some(redis) =
        Redis::for_test("logout_names_the_subject_only_for_the_current_token_with_the_logins_key")
    else {
        return;
    };
    let prefix = unique_prefix("refresh-logout");
    let (a, b) = (refresh_store(&redis.url(), &prefix), refresh_store(&redis.url(), &prefix));
    let key = |jkt: &str| SenderConstraint::none().with_jkt(jkt);
    let none = SenderConstraint::none();

    // Without the key, or with another: the family ends, the subject is not named.
    for presented in [none.clone(), key("k2"), none.clone().with_certificate("x5t")] {
        let login = a.issue("alice", &key("k1")).await.unwrap();
        assert_eq!(b.revoke(login.token.as_str(), &presented).await.unwrap(), None);
        assert_eq!(a.rotate(login.token.as_str(), &key("k1")).await.unwrap_err(), RefreshError::Revoked);
    }
    // A family bound to a certificate: a request without it does not name the subject.
    let login = a.issue("alice", &none.clone().with_certificate("x5t")).await.unwrap();
    assert_eq!(b.revoke(login.token.as_str(), &key("k1")).await.unwrap(), None);
    // An old, rotated token, even with the key: the family ends, the subject is not named.
    let login = a.issue("alice", &key("k1")).await.unwrap();
    let next = a.rotate(login.token.as_str(), &key("k1")).await.unwrap();
    assert_eq!(b.revoke(login.token.as_str(), &key("k1")).await.unwrap(), None);
    assert_eq!(a.rotate(next.token.as_str(), &key("k1")).await.unwrap_err(), RefreshError::Revoked);
    // The current token with the key names it.
    let login = a.issue("alice", &key("k1")).await.unwrap();
    let next = a.rotate(login.token.as_str(), &key("k1")).await.unwrap();
    assert_eq!(b.revoke(next.token.as_str(), &key("k1")).await.unwrap().as_deref(), Some("alice"));
    // A bearer family's current token names it without a key.
    let login = a.issue("bob", &none).await.unwrap();
    assert_eq!(b.revoke(login.token.as_str(), &none).await.unwrap().as_deref(), Some("bob"));
}

#[tokio::test]
async fn refresh_rotation_and_reuse_detection_across_instances() {
    let Some(redis) = Redis::for_test("refresh_rotation_and_reuse_detection_across_instances") else {
        return;
    };
    let prefix = unique_prefix("refresh");
    let (a, b) = (refresh_store(&redis.url(), &prefix), refresh_store(&redis.url(), &prefix));

    let login = a.issue("alice", &SenderConstraint::none()).await.unwrap();
    let on_a = a.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap();
    let on_b = b.rotate(on_a.token.as_str(), &SenderConstraint::none()).await.unwrap();
    assert_eq!((on_b.subject.as_str(), on_b.family.as_str()), ("alice", login.family.as_str()));
    assert!(on_b.expires_at > now());

    // Only hashes are stored: no key or value contains the token.
    let mut conn =
        redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = conn.keys(format!("{prefix}*")).await.unwrap();
    assert!(keys.len() >= 4, "{keys:?}");
    let secret = on_b.token.as_str().split_once('.').unwrap().1;
    assert!(keys.iter().all(|key| !key.contains(secret)));

    // The login token, whose successor has been used since, replayed on B: refused, and the
    // family dies with it.
    assert_eq!(
        b.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Reused { subject: "alice".into() }
    );
    assert_eq!(
        a.rotate(on_b.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );

    // Logout on B ends a family rotated on A.
    let second = a.issue("alice", &SenderConstraint::none()).await.unwrap();
    let rotated = a.rotate(second.token.as_str(), &SenderConstraint::none()).await.unwrap();
    let bearer = SenderConstraint::none();
    assert_eq!(b.revoke(rotated.token.as_str(), &bearer).await.unwrap().as_deref(), Some("alice"));
    assert_eq!(
        a.rotate(rotated.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
    assert_eq!(b.revoke("not-a-token", &bearer).await.unwrap(), None);
    assert_eq!(a.rotate("not-a-token", &SenderConstraint::none()).await.unwrap_err(), RefreshError::Invalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_grace_period_of_concurrent_refreshes_of_one_token_exactly_one_wins() {
    let Some(redis) =
        Redis::for_test("without_a_grace_period_of_concurrent_refreshes_of_one_token_exactly_one_wins")
    else {
        return;
    };
    let prefix = unique_prefix("race");
    let no_grace = |_| {
        RedisRefreshStore::builder(&redis.url())
            .unwrap()
            .key_prefix(&prefix)
            .policy(RefreshPolicy::default().grace_period(Duration::ZERO))
            .build()
            .unwrap()
    };
    let stores = [no_grace(0), no_grace(1)];
    let login = stores[0].issue("alice", &SenderConstraint::none()).await.unwrap();
    let winners = common::race_rotations(&stores, login.token.as_str()).await;
    assert_eq!(winners.len(), 1, "exactly one concurrent refresh wins");
    assert_eq!(
        stores[1].rotate(winners[0].token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
}

#[tokio::test]
async fn redis_down_fails_closed_and_a_restart_recovers_without_rebuilding() {
    let Some(mut server) =
        Redis::local_for_test("redis_down_fails_closed_and_a_restart_recovers_without_rebuilding")
    else {
        return;
    };
    let prefix = unique_prefix("outage");
    let store = revocations(&server.url(), &prefix);
    let refresh = refresh_store(&server.url(), &prefix);
    let addr = instance(&store).await;
    subscribed(&store, PATIENCE).await;
    let access = token("alice");
    let login = refresh.issue("alice", &SenderConstraint::none()).await.unwrap();
    assert!(http_get(addr, "/me", &access.token).await.is(200, None));
    assert!(http_get(addr, "/me", &access.token).await.is(200, None));

    server.stop();
    answers(addr, "/me", &access.token, 503, Some("AUTH_UNAVAILABLE"), PATIENCE).await;
    assert_eq!(store.revoke_token(None, "x", now() + 60).await, Err(RevocationError::Unavailable));
    assert_eq!(
        refresh.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Unavailable
    );
    assert_eq!(
        refresh.issue("alice", &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Unavailable
    );

    // Same port, empty data (no persistence): the same layer and stores recover by themselves.
    server.restart();
    answers(addr, "/me", &access.token, 200, None, PATIENCE).await;
    let login = eventually("the refresh store to reconnect", PATIENCE, || async {
        refresh.issue("alice", &SenderConstraint::none()).await.ok()
    })
    .await;
    assert!(refresh.rotate(login.token.as_str(), &SenderConstraint::none()).await.is_ok());
    subscribed(&store, PATIENCE).await;
    assert_eq!(http_post(addr, "/logout", &access.token).await.status, 204);
    assert!(http_get(addr, "/me", &access.token).await.is(401, Some("TOKEN_REVOKED")));
}

#[tokio::test]
async fn logout_and_refresh_replay_across_two_instances() {
    use common::auth_flow::{call, serve_auth};
    let Some(redis) = Redis::for_test("logout_and_refresh_replay_across_two_instances") else { return };
    let prefix = unique_prefix("flow");
    let instance = |_: u8| {
        let revocations = revocations(&redis.url(), &prefix);
        let refresh = refresh_store(&redis.url(), &prefix);
        async move {
            subscribed(&revocations, PATIENCE).await;
            serve_auth(Arc::new(revocations), Arc::new(refresh)).await
        }
    };
    let (a, b) = (instance(b'a').await, instance(b'b').await);

    // Logout on A is refused on B with TOKEN_REVOKED.
    let session = call(a, "/auth/login", None).await.unwrap();
    assert!(http_get(b, "/protected", &session.access).await.is(200, None));
    assert_eq!(call(a, "/auth/logout", Some(&session)).await.unwrap_err().status, 204);
    answers(b, "/protected", &session.access, 401, Some("TOKEN_REVOKED"), PATIENCE).await;

    // A refresh token used on A, replayed on B: refused, and the new one dies with it.
    let first = call(a, "/auth/login", None).await.unwrap();
    let second = call(a, "/auth/refresh", Some(&first)).await.unwrap();
    // Retried on B while the second is unused: the same cookie (the grace period).
    assert_eq!(call(b, "/auth/refresh", Some(&first)).await.unwrap().refresh, second.refresh);
    let third = call(b, "/auth/refresh", Some(&second)).await.unwrap();
    assert!(call(b, "/auth/refresh", Some(&first)).await.unwrap_err().is(401, Some("REFRESH_TOKEN_REUSED")));
    assert!(call(a, "/auth/refresh", Some(&third)).await.unwrap_err().is(401, Some("INVALID_REFRESH_TOKEN")));
}

#[tokio::test]
async fn logging_out_everywhere_revokes_every_refresh_family_on_every_instance() {
    let Some(redis) =
        Redis::for_test("logging_out_everywhere_revokes_every_refresh_family_on_every_instance")
    else {
        return;
    };
    let prefix = unique_prefix("everywhere");
    let (a, b) = (refresh_store(&redis.url(), &prefix), refresh_store(&redis.url(), &prefix));
    let phone = a.issue("alice", &SenderConstraint::none()).await.unwrap();
    let laptop = b.issue("alice", &SenderConstraint::none()).await.unwrap();
    let laptop = a.rotate(laptop.token.as_str(), &SenderConstraint::none()).await.unwrap();
    let bob = a.issue("bob", &SenderConstraint::none()).await.unwrap();

    assert_eq!(b.revoke_subject("alice").await.unwrap(), 2);
    assert_eq!(
        a.rotate(phone.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
    assert_eq!(
        b.rotate(laptop.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
    assert!(b.rotate(bob.token.as_str(), &SenderConstraint::none()).await.is_ok());
    assert_eq!(a.revoke_subject("alice").await.unwrap(), 0);
    assert_eq!(a.revoke_subject("nobody").await.unwrap(), 0);
}

#[tokio::test]
async fn a_service_started_while_redis_is_down_fails_closed_until_it_comes_up() {
    let Some(mut server) =
        Redis::local_for_test("a_service_started_while_redis_is_down_fails_closed_until_it_comes_up")
    else {
        return;
    };
    server.stop();
    let prefix = unique_prefix("late");
    let store = revocations(&server.url(), &prefix);
    let refresh = refresh_store(&server.url(), &prefix);
    let addr = instance(&store).await;
    let access = token("alice");
    assert!(http_get(addr, "/me", &access.token).await.is(503, Some("AUTH_UNAVAILABLE")));
    assert_eq!(
        refresh.issue("alice", &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Unavailable
    );

    server.restart();
    answers(addr, "/me", &access.token, 200, None, PATIENCE).await;
    subscribed(&store, PATIENCE).await;
    eventually("the refresh store to connect", PATIENCE, || async {
        refresh.issue("alice", &SenderConstraint::none()).await.ok()
    })
    .await;
}

/// How many `GET` commands the server has run (a check reads its keys with `GET`s).
async fn get_calls(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await.unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

#[tokio::test]
async fn repeated_checks_are_answered_from_the_local_cache() {
    let Some(server) = Redis::local_for_test("repeated_checks_are_answered_from_the_local_cache") else {
        return;
    };
    let store = revocations(&server.url(), &unique_prefix("local"));
    let addr = instance(&store).await;
    subscribed(&store, PATIENCE).await;
    let mut conn =
        redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let access = token("alice");

    assert!(http_get(addr, "/me", &access.token).await.is(200, None));
    let after_first = get_calls(&mut conn).await;
    assert!(after_first >= 1, "the first check asks Redis");
    for _ in 0..20 {
        assert!(http_get(addr, "/me", &access.token).await.is(200, None));
    }
    assert_eq!(get_calls(&mut conn).await, after_first, "later checks are answered locally");

    // A revocation drops the cached answer: the next check asks Redis again and is refused.
    assert_eq!(http_post(addr, "/logout", &access.token).await.status, 204);
    assert!(http_get(addr, "/me", &access.token).await.is(401, Some("TOKEN_REVOKED")));
}

#[tokio::test]
async fn cached_answers_are_dropped_after_the_local_ttl() {
    let Some(server) = Redis::local_for_test("cached_answers_are_dropped_after_the_local_ttl") else {
        return;
    };
    let store = RedisRevocationStore::builder(&server.url())
        .unwrap()
        .key_prefix(unique_prefix("sweep"))
        .local_cache_ttl(Duration::from_millis(200))
        .build()
        .unwrap();
    let addr = instance(&store).await;
    subscribed(&store, PATIENCE).await;
    let mut conn =
        redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let access = token("alice");
    assert!(http_get(addr, "/me", &access.token).await.is(200, None));
    let before = get_calls(&mut conn).await;
    // Bounded: the sweep empties the cache, so a later check asks Redis again.
    eventually("a check after the sweep to ask Redis", PATIENCE, || {
        let mut conn = conn.clone();
        let token = access.token.clone();
        async move {
            assert!(http_get(addr, "/me", &token).await.is(200, None));
            (get_calls(&mut conn).await > before).then_some(())
        }
    })
    .await;
}

/// What the store answers for `facts`, awaiting Redis when it must.
async fn verdict(store: &RedisRevocationStore, facts: &tower_jwt_guard::TokenFacts) -> &'static str {
    use tower_jwt_guard::revocation::RevocationCheck;
    let mut answer = store.check(facts);
    if let RevocationCheck::Pending(fetch) = answer {
        answer = fetch.await;
    }
    match answer {
        RevocationCheck::Valid => "valid",
        RevocationCheck::Revoked => "revoked",
        _ => "unavailable",
    }
}

#[tokio::test]
async fn revocations_are_per_issuer_in_redis() {
    let Some(redis) = Redis::for_test("revocations_are_per_issuer_in_redis") else { return };
    let prefix = unique_prefix("issuers");
    let store = revocations(&redis.url(), &prefix);
    let (a, b) = (Some("https://a.example.com"), Some("https://b.example.com"));
    let facts = |issuer: Option<&str>, jti: &str, subject: &str| {
        let mut facts = tower_jwt_guard::TokenFacts::default();
        facts.issuer = issuer.map(str::to_owned);
        facts.jti = Some(jti.into());
        facts.subject = Some(subject.into());
        facts.issued_at = Some(now() - 10);
        facts
    };
    store.revoke_token(a, "1", now() + 60).await.unwrap();
    store.revoke_subject(b, "alice", now()).await.unwrap();
    // Twice each: the answer from Redis, then from the local cache once subscribed.
    subscribed(&store, PATIENCE).await;
    for _ in 0..2 {
        assert_eq!(verdict(&store, &facts(a, "1", "bob")).await, "revoked");
        assert_eq!(verdict(&store, &facts(b, "1", "bob")).await, "valid");
        assert_eq!(verdict(&store, &facts(None, "1", "bob")).await, "valid");
        assert_eq!(verdict(&store, &facts(b, "2", "alice")).await, "revoked");
        assert_eq!(verdict(&store, &facts(a, "2", "alice")).await, "valid");
    }
    // The keys: the issuer is length-prefixed, so no pair reads as another.
    let mut conn =
        redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    assert!(conn.exists::<_, bool>(token_key(&prefix, a, "1")).await.unwrap());
    assert!(!conn.exists::<_, bool>(token_key(&prefix, b, "1")).await.unwrap());
    assert_ne!(token_key(&prefix, Some("a:"), "b"), token_key(&prefix, Some("a"), ":b"));
    assert!(token_key(&prefix, a, "1").ends_with(":revoked:jti:21:https://a.example.com1"));
}

/// A hang detector: the call must come back (its answer is checked by the caller).
async fn within<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, call).await.unwrap_or_else(|_| panic!("{what} hung"))
}

#[tokio::test]
async fn a_restarted_redis_costs_no_request() {
    let Some(mut server) = Redis::local_for_test("a_restarted_redis_costs_no_request") else { return };
    let prefix = unique_prefix("restart");
    let (store, other) = (revocations(&server.url(), &prefix), revocations(&server.url(), &prefix));
    let refresh = refresh_store(&server.url(), &prefix);
    let addr = instance(&store).await;
    subscribed(&store, PATIENCE).await;
    let access = token("alice");
    let login = refresh.issue("alice", &SenderConstraint::none()).await.unwrap();
    assert!(refresh.rotate(login.token.as_str(), &SenderConstraint::none()).await.is_ok());
    assert!(other.revoke_token(None, "warm-up", now() + 60).await.is_ok());
    assert!(http_get(addr, "/me", &access.token).await.is(200, None));

    // Killed and back on the same port: every connection these stores hold is dead.
    server.restart();
    // The first request of each store after the restart is answered (tried again on a fresh
    // connection), not lost.
    let first = std::time::Instant::now();
    assert!(http_get(addr, "/me", &access.token).await.is(200, None));
    eprintln!("first request after a restart answered in {:?}", first.elapsed()); // a figure, not a check
    let login =
        refresh.issue("alice", &SenderConstraint::none()).await.expect("the first issue after a restart");
    assert!(other.revoke_token(None, "after-restart", now() + 60).await.is_ok());
    let rotated = refresh
        .rotate(login.token.as_str(), &SenderConstraint::none())
        .await
        .expect("a rotation after a restart");
    assert!(!rotated.repeated);
}

#[tokio::test]
async fn a_rotation_whose_connection_drops_is_answered_once_redis_is_back() {
    let Some(mut server) =
        Redis::local_for_test("a_rotation_whose_connection_drops_is_answered_once_redis_is_back")
    else {
        return;
    };
    let prefix = unique_prefix("rotate-restart");
    let refresh = refresh_store(&server.url(), &prefix);
    assert!(refresh.issue("alice", &SenderConstraint::none()).await.is_ok());
    server.restart();
    // The rotation is the first operation after the restart: the data is gone (no
    // persistence), so the token is unknown, but the answer is Redis's, not a lost request.
    let login =
        refresh_store(&server.url(), &prefix).issue("alice", &SenderConstraint::none()).await.unwrap();
    assert_eq!(
        refresh.rotate(login.token.as_str(), &SenderConstraint::none()).await.map(|r| r.subject),
        Ok("alice".to_owned())
    );
}

#[tokio::test]
async fn a_frozen_redis_fails_closed_within_the_timeout_and_recovers_when_thawed() {
    let Some(server) =
        Redis::local_for_test("a_frozen_redis_fails_closed_within_the_timeout_and_recovers_when_thawed")
    else {
        return;
    };
    let prefix = unique_prefix("frozen");
    let store = revocations(&server.url(), &prefix);
    let refresh = refresh_store(&server.url(), &prefix);
    let addr = instance(&store).await;
    subscribed(&store, PATIENCE).await;
    let login = refresh.issue("alice", &SenderConstraint::none()).await.unwrap();
    // A token never seen: not in the local cache, so the check must ask the frozen Redis.
    server.freeze();
    let fresh = token("bob");
    let answer = within("a check against a frozen Redis", http_get(addr, "/me", &fresh.token)).await;
    assert!(answer.is(503, Some("AUTH_UNAVAILABLE")), "{answer:?}");
    let rotated = within(
        "a rotation against a frozen Redis",
        refresh.rotate(login.token.as_str(), &SenderConstraint::none()),
    )
    .await;
    assert_eq!(rotated.unwrap_err(), RefreshError::Unavailable);

    server.thaw();
    answers(addr, "/me", &fresh.token, 200, None, PATIENCE).await;
    // The rotation may have run once Redis woke up: a retry within the grace period gets the
    // same successor instead of revoking the family.
    let retried =
        within("a rotation after the thaw", refresh.rotate(login.token.as_str(), &SenderConstraint::none()))
            .await;
    assert_eq!(retried.unwrap().subject, "alice");
}

/// A subscription whose connection stays open but is never answered again (a frozen server, a
/// partition without a reset) is noticed by its `PING`: the store stops trusting its local cache,
/// so an invalidation it could not hear cannot leave a revoked token cached.
#[tokio::test]
async fn a_silently_dead_subscription_is_noticed_by_its_health_check() {
    let Some(server) = Redis::local_for_test("a_silently_dead_subscription_is_noticed_by_its_health_check")
    else {
        return;
    };
    let prefix = unique_prefix("health-check");
    let store = RedisRevocationStore::builder(&server.url())
        .unwrap()
        .key_prefix(&prefix)
        .timeout(Duration::from_millis(300))
        .health_check_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let addr = instance(&store).await;
    subscribed(&store, PATIENCE).await;
    let access = token("alice");
    // Twice: the second answer comes from the local cache.
    assert!(http_get(addr, "/me", &access.token).await.is(200, None));
    assert!(http_get(addr, "/me", &access.token).await.is(200, None));

    server.freeze();
    eventually("the health check to give the subscription up", PATIENCE, || async {
        (!store.is_subscribed()).then_some(())
    })
    .await;
    // The cached answer is no longer used: the check asks the frozen Redis and fails closed.
    let answer =
        within("a check after the subscription was given up", http_get(addr, "/me", &access.token)).await;
    assert!(answer.is(503, Some("AUTH_UNAVAILABLE")), "{answer:?}");

    server.thaw();
    subscribed(&store, PATIENCE).await;
    assert!(http_get(addr, "/me", &access.token).await.is(200, None));
}

#[tokio::test]
async fn a_revocation_published_while_subscriptions_are_cut_is_honoured_by_every_instance() {
    let Some(redis) =
        Redis::for_test("a_revocation_published_while_subscriptions_are_cut_is_honoured_by_every_instance")
    else {
        return;
    };
    let prefix = unique_prefix("pubsub-kill");
    let stores = [revocations(&redis.url(), &prefix), revocations(&redis.url(), &prefix)];
    let addrs = [instance(&stores[0]).await, instance(&stores[1]).await];
    for store in &stores {
        subscribed(store, PATIENCE).await;
    }
    let access = token("alice");
    for addr in addrs {
        // Twice: the second answer comes from the local cache.
        assert!(http_get(addr, "/me", &access.token).await.is(200, None));
        assert!(http_get(addr, "/me", &access.token).await.is(200, None));
    }
    let mut conn =
        redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let killed: u64 =
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut conn).await.unwrap();
    assert!(killed >= 2, "{killed} pub/sub connections killed");
    assert_eq!(http_post(addrs[0], "/logout", &access.token).await.status, 204);
    for addr in addrs {
        answers(addr, "/me", &access.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
    }
    for store in &stores {
        subscribed(store, PATIENCE).await;
    }
    for addr in addrs {
        assert!(http_get(addr, "/me", &access.token).await.is(401, Some("TOKEN_REVOKED")));
    }
}

async fn grace_period_in(stores: &[RedisRefreshStore; 2]) {
    let login = stores[0].issue("alice", &SenderConstraint::none()).await.unwrap();
    // 16 concurrent rotations of one token on two instances: one successor, handed to all.
    let winners = common::race_rotations(stores, login.token.as_str()).await;
    assert_eq!(winners.len(), 16, "every concurrent refresh is answered");
    assert!(winners.iter().all(|w| w.token == winners[0].token), "one successor");
    assert_eq!(winners.iter().filter(|w| !w.repeated).count(), 1, "minted once");
    // The family is alive: the successor rotates.
    let next = stores[1].rotate(winners[0].token.as_str(), &SenderConstraint::none()).await.unwrap();
    // The first token again, its successor now used: a replay.
    assert_eq!(
        stores[0].rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Reused { subject: "alice".into() }
    );
    assert_eq!(
        stores[1].rotate(next.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn within_the_grace_period_concurrent_refreshes_get_the_same_successor() {
    let Some(redis) = Redis::for_test("within_the_grace_period_concurrent_refreshes_get_the_same_successor")
    else {
        return;
    };
    let prefix = unique_prefix("grace");
    let stores = [refresh_store(&redis.url(), &prefix), refresh_store(&redis.url(), &prefix)];
    grace_period_in(&stores).await;

    // The successor is kept only sealed, and only for the grace period.
    let login = stores[0].issue("bob", &SenderConstraint::none()).await.unwrap();
    let next = stores[0].rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap();
    let mut conn =
        redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let grace_keys: Vec<String> = conn.keys(format!("{prefix}*:g")).await.unwrap();
    let secret = next.token.as_str().split_once('.').unwrap().1;
    for key in &grace_keys {
        let value: String = conn.get(key).await.unwrap();
        assert!(!value.contains(secret), "the successor is stored sealed");
        let ttl: i64 = conn.ttl(key).await.unwrap();
        assert!((1..=30).contains(&ttl), "kept for the grace period only: {ttl}");
    }
    assert!(!grace_keys.is_empty());
}

#[tokio::test]
async fn outside_the_grace_period_a_second_use_revokes_the_family_in_redis() {
    let Some(redis) = Redis::for_test("outside_the_grace_period_a_second_use_revokes_the_family_in_redis")
    else {
        return;
    };
    let store = RedisRefreshStore::builder(&redis.url())
        .unwrap()
        .key_prefix(unique_prefix("grace-out"))
        .policy(RefreshPolicy::default().grace_period(Duration::from_secs(1)))
        .build()
        .unwrap();
    let login = store.issue("alice", &SenderConstraint::none()).await.unwrap();
    let next = store.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap();
    let rotated_at = now();
    eventually("the grace period to pass", PATIENCE, || async { (now() > rotated_at + 1).then_some(()) })
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
