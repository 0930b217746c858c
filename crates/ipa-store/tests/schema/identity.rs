//! The sign-in schema: the narrow lookup of an account before any actor exists, sessions that
//! hold only token hashes, and the attempts the throttle counts.

use ipa_kernel::{Actor, ClientInfo};
use ipa_store::testing::TestDatabase;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::support::{create_user, create_workflow, exec_as, scalar, scalar_as, state, user};

const CHECK_VIOLATION: &str = "23514";
const RLS_VIOLATION: &str = "42501";

fn anonymous() -> Actor {
    Actor::anonymous(ClientInfo::default())
}

/// Runs `sql` as nobody, with `setting` = `value` for the transaction, and returns its count.
async fn count_with(store: &ipa_store::Store, setting: &str, value: &str, sql: &str) -> i64 {
    let txn = store.begin(&anonymous()).await.unwrap();
    txn.connection()
        .execute_unprepared(&format!("SELECT set_config('{setting}', '{value}', true)"))
        .await
        .unwrap();
    let count = scalar(&txn, sql).await;
    txn.rollback().await.unwrap();
    count
}

/// Runs `sql` in a sign-in's context: the identifier being signed in with, from `address`.
async fn signing_in(
    store: &ipa_store::Store,
    identifier: &str,
    address: Option<&str>,
    sql: &str,
) -> Result<u64, sea_orm::DbErr> {
    let client = ClientInfo::new(address.map(|a| a.parse().unwrap()), None);
    let txn = store.begin(&Actor::anonymous(client)).await.unwrap();
    let conn = txn.connection();
    conn.execute_unprepared(&format!(
        "SELECT set_config('app.login_identifier', '{identifier}', true)"
    ))
    .await
    .unwrap();
    let outcome = conn.execute_unprepared(sql).await;
    txn.commit().await.ok();
    outcome.map(|result| result.rows_affected())
}

/// Records a failed attempt as a sign-in does: for its identifier, from its address.
async fn failed_attempt(store: &ipa_store::Store, identifier: &str, address: Option<&str>) {
    signing_in(
        store,
        identifier,
        address,
        &format!(
            "INSERT INTO login_attempts (identifier, ip_address, succeeded) \
             VALUES ('{identifier}', ipa_client_ip(), false)"
        ),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn signing_in_sees_only_the_account_it_names() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    create_user(&store, "bob").await;
    create_workflow(&store, alice, "invoices").await;
    let identifier = "app.login_identifier";

    // Emails are stored in lower case; the lookup lowers what was typed.
    assert_eq!(
        count_with(
            &store,
            identifier,
            "Alice@Example.com",
            "SELECT count(*) FROM users"
        )
        .await,
        1
    );
    assert_eq!(
        count_with(
            &store,
            identifier,
            "bob",
            "SELECT count(*) FROM users WHERE username = 'bob'"
        )
        .await,
        1
    );
    assert_eq!(
        count_with(&store, identifier, "nobody", "SELECT count(*) FROM users").await,
        0
    );
    assert_eq!(
        count_with(&store, identifier, "%", "SELECT count(*) FROM users").await,
        0,
        "no patterns"
    );
    // The lookup opens users only: nothing else of the account is visible.
    assert_eq!(
        count_with(
            &store,
            identifier,
            "alice",
            "SELECT count(*) FROM workflows"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn sessions_hold_only_a_token_hash_and_show_only_to_their_bearer_and_owner() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let bob = create_user(&store, "bob").await;
    let session = |owner: Uuid, hash_hex: &str| {
        format!(
            "INSERT INTO sessions (user_id, token_hash, idle_expires_at, expires_at) \
             VALUES ('{owner}', decode('{hash_hex}', 'hex'), now() + interval '30 minutes', now() + interval '1 day')"
        )
    };
    let alices_hash = "aa".repeat(32);
    exec_as(&store, &user(alice, false), &session(alice, &alices_hash))
        .await
        .unwrap();

    let too_short = exec_as(&store, &user(alice, false), &session(alice, "abcd")).await;
    assert_eq!(
        state(too_short),
        CHECK_VIOLATION,
        "a token hash is a SHA-256"
    );
    let for_someone_else =
        exec_as(&store, &user(alice, false), &session(bob, &"bb".repeat(32))).await;
    assert_eq!(
        state(for_someone_else),
        RLS_VIOLATION,
        "sessions are opened in one's own name"
    );

    let hash_setting = "app.session_token_hash";
    let count = "SELECT count(*) FROM sessions";
    assert_eq!(
        count_with(&store, hash_setting, &alices_hash, count).await,
        1,
        "the bearer finds it"
    );
    assert_eq!(
        count_with(&store, hash_setting, &"cc".repeat(32), count).await,
        0,
        "another token does not"
    );
    assert_eq!(
        count_with(&store, hash_setting, "", count).await,
        0,
        "no token, no session"
    );

    let txn = store.begin(&user(bob, false)).await.unwrap();
    let bobs_view: i64 = scalar(&txn, count).await;
    txn.rollback().await.unwrap();
    assert_eq!(bobs_view, 0, "Bob cannot see Alice's sessions");

    // Alice's logout revokes her session; the request role can revoke but never delete one.
    let revoke = "UPDATE sessions SET revoked_at = now()";
    exec_as(&store, &user(alice, false), revoke).await.unwrap();
    let deleted = exec_as(&store, &user(alice, false), "DELETE FROM sessions").await;
    assert_eq!(state(deleted), RLS_VIOLATION);
}

#[tokio::test]
async fn sign_in_attempts_are_written_for_the_identifier_signing_in_and_counted_per_identifier() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let address = Some("198.51.100.9");
    for _ in 0..3 {
        failed_attempt(&store, "ghost@example.com", address).await;
    }
    // As a sign-in does: recorded unsettled when admitted, settled once its password is right.
    signing_in(
        &store,
        "alice",
        address,
        "INSERT INTO login_attempts (identifier, ip_address, succeeded) \
         VALUES ('alice', ipa_client_ip(), NULL)",
    )
    .await
    .unwrap();
    signing_in(
        &store,
        "alice",
        address,
        "UPDATE login_attempts SET succeeded = true",
    )
    .await
    .unwrap();

    let failures = "SELECT count(*) FROM login_attempts WHERE NOT succeeded";
    assert_eq!(
        count_with(
            &store,
            "app.login_identifier",
            "ghost@example.com",
            failures
        )
        .await,
        3
    );
    assert_eq!(
        count_with(&store, "app.login_identifier", "alice", failures).await,
        0
    );
    assert_eq!(
        count_with(
            &store,
            "app.login_identifier",
            "",
            "SELECT count(*) FROM login_attempts"
        )
        .await,
        0
    );
    // Attempts are written only for the identifier being signed in with, from the request's
    // address, as failures; nobody writes them outside a sign-in.
    let insert = |identifier: &str, address: &str, succeeded: bool| {
        format!(
            "INSERT INTO login_attempts (identifier, ip_address, succeeded) \
             VALUES ('{identifier}', '{address}', {succeeded})"
        )
    };
    for (signing_in_as, sql) in [
        ("alice", insert("bob", "198.51.100.9", false)),
        ("alice", insert("alice", "192.0.2.1", false)),
        ("alice", insert("alice", "198.51.100.9", true)),
        ("", insert("alice", "198.51.100.9", false)),
    ] {
        let refused = signing_in(&store, signing_in_as, address, &sql).await;
        assert_eq!(
            state(refused.map(drop)),
            RLS_VIOLATION,
            "{signing_in_as}: {sql}"
        );
    }
    let erased = exec_as(&store, &anonymous(), "DELETE FROM login_attempts").await;
    assert_eq!(
        state(erased),
        RLS_VIOLATION,
        "attempts cannot be erased by the request role"
    );
}

fn session_sql(owner: Uuid, hash_hex: &str) -> String {
    format!(
        "INSERT INTO sessions (user_id, token_hash, idle_expires_at, expires_at) \
         VALUES ('{owner}', decode('{hash_hex}', 'hex'), now() + interval '30 minutes', now() + interval '1 day')"
    )
}

#[tokio::test]
async fn a_presented_token_sees_the_account_it_belongs_to_and_no_other() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    create_user(&store, "bob").await;
    let hash = "aa".repeat(32);
    exec_as(&store, &user(alice, false), &session_sql(alice, &hash))
        .await
        .unwrap();
    let setting = "app.session_token_hash";
    assert_eq!(
        count_with(&store, setting, &hash, "SELECT count(*) FROM users").await,
        1
    );
    assert_eq!(
        count_with(
            &store,
            setting,
            &hash,
            "SELECT count(*) FROM users WHERE username = 'alice'"
        )
        .await,
        1
    );
    assert_eq!(
        count_with(
            &store,
            setting,
            &"cc".repeat(32),
            "SELECT count(*) FROM users"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn deactivating_an_account_revokes_its_sessions_whatever_path_does_it() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let bob = create_user(&store, "bob").await;
    for (owner, hash) in [(alice, "a1"), (alice, "a2"), (bob, "b1")] {
        exec_as(
            &store,
            &user(owner, false),
            &session_sql(owner, &hash.repeat(32)),
        )
        .await
        .unwrap();
    }
    // Plain SQL, as an operator would run it: no application code involved.
    exec_as(
        &store,
        &Actor::system(),
        &format!("UPDATE users SET is_active = false WHERE id = '{alice}'"),
    )
    .await
    .unwrap();
    let alice_live: i64 = scalar_as(
        &store,
        &Actor::system(),
        &format!("SELECT count(*) FROM sessions WHERE user_id = '{alice}' AND revoked_at IS NULL"),
    )
    .await;
    let bob_live: i64 = scalar_as(
        &store,
        &Actor::system(),
        &format!("SELECT count(*) FROM sessions WHERE user_id = '{bob}' AND revoked_at IS NULL"),
    )
    .await;
    assert_eq!((alice_live, bob_live), (0, 1));
}

#[tokio::test]
async fn attempts_are_settled_once_and_only_for_the_identifier_signing_in() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    for identifier in ["alice", "bob"] {
        signing_in(
            &store,
            identifier,
            None,
            &format!(
                "INSERT INTO login_attempts (identifier, ip_address, succeeded) \
                 VALUES ('{identifier}', ipa_client_ip(), NULL)"
            ),
        )
        .await
        .unwrap();
    }
    let as_alice_signing_in = |sql: &'static str| {
        let store = store.clone();
        async move {
            let txn = store.begin(&anonymous()).await.unwrap();
            let conn = txn.connection();
            conn.execute_unprepared("SELECT set_config('app.login_identifier', 'alice', true)")
                .await
                .unwrap();
            let outcome = conn.execute_unprepared(sql).await;
            txn.commit().await.ok();
            outcome
        }
    };
    let marked = as_alice_signing_in("UPDATE login_attempts SET succeeded = true")
        .await
        .unwrap();
    assert_eq!(marked.rows_affected(), 1, "only Alice's attempt");
    let unmarked = as_alice_signing_in("UPDATE login_attempts SET succeeded = false")
        .await
        .unwrap();
    assert_eq!(
        unmarked.rows_affected(),
        0,
        "a settled attempt stays settled"
    );
    let rewritten = as_alice_signing_in("UPDATE login_attempts SET identifier = 'mallory'").await;
    assert_eq!(
        state(rewritten.map(|_| ())),
        RLS_VIOLATION,
        "no other column"
    );

    let attempts = db
        .rows("SELECT identifier, succeeded FROM login_attempts ORDER BY identifier")
        .await;
    assert_eq!(
        attempts,
        [
            serde_json::json!({"identifier": "alice", "succeeded": true}),
            serde_json::json!({"identifier": "bob", "succeeded": null})
        ]
    );
}

#[tokio::test]
async fn unsettled_attempts_count_only_while_they_may_be_in_progress() {
    use ipa_identity::{LoginIdentifier, SessionRepository, ThrottleCheck, ThrottlePolicy};

    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let sessions = ipa_store::PgSessions::new(store.clone());
    let client = ClientInfo::new(Some("198.51.100.7".parse().unwrap()), None);
    let policy = ThrottlePolicy::new(2, 50, time::Duration::minutes(15)).unwrap();
    let alice = LoginIdentifier::parse("alice").unwrap();
    // Attempts a failure of the platform left unsettled minutes ago: not the client's failures.
    for _ in 0..5 {
        signing_in(
            &store,
            "alice",
            Some("198.51.100.7"),
            "INSERT INTO login_attempts (identifier, ip_address, succeeded, attempted_at) \
             VALUES ('alice', ipa_client_ip(), NULL, now() - interval '3 minutes')",
        )
        .await
        .unwrap();
    }
    let admitted = |check: &ThrottleCheck| matches!(check, ThrottleCheck::Admitted(_));
    // Two attempts in progress count, so a third concurrent one is refused.
    for _ in 0..2 {
        let lookup = sessions
            .admit_attempt(&alice, &client, &policy)
            .await
            .unwrap();
        assert!(admitted(&lookup.check), "{:?}", lookup.check);
    }
    let third = sessions
        .admit_attempt(&alice, &client, &policy)
        .await
        .unwrap();
    assert!(!admitted(&third.check), "{:?}", third.check);
}

#[tokio::test]
async fn the_throttle_learns_when_the_address_failed_never_which_identifiers_it_tried() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    for (identifier, address) in [
        ("a", "198.51.100.9"),
        ("b", "198.51.100.9"),
        ("c", "203.0.113.5"),
    ] {
        failed_attempt(&store, identifier, Some(address)).await;
    }
    // A sign-in as "d" from an address others failed from: the nth most recent failure's time,
    // and no row of theirs.
    let as_d_from = |address: &'static str, sql: String| {
        let store = store.clone();
        async move {
            let txn = store
                .begin(&Actor::anonymous(ClientInfo::new(
                    Some(address.parse().unwrap()),
                    None,
                )))
                .await
                .unwrap();
            txn.connection()
                .execute_unprepared("SELECT set_config('app.login_identifier', 'd', true)")
                .await
                .unwrap();
            let value: bool = scalar(&txn, &sql).await;
            txn.rollback().await.unwrap();
            value
        }
    };
    let found = |nth: i64| format!("SELECT ipa_address_failure_at(900, {nth}, 60) IS NOT NULL");
    assert!(as_d_from("198.51.100.9", found(2)).await);
    assert!(!as_d_from("198.51.100.9", found(3)).await);
    assert!(as_d_from("203.0.113.5", found(1)).await);
    assert!(!as_d_from("203.0.113.5", found(2)).await);
    assert!(!as_d_from("192.0.2.1", found(1)).await);
    assert!(
        as_d_from(
            "198.51.100.9",
            "SELECT count(*) = 0 FROM login_attempts".to_owned()
        )
        .await,
        "other identifiers' attempts stay hidden"
    );
    // Outside a sign-in the function answers nothing.
    let outside: Option<String> = scalar_as(
        &store,
        &Actor::anonymous(ClientInfo::new(Some("198.51.100.9".parse().unwrap()), None)),
        "SELECT ipa_address_failure_at(900, 1, 60)::text",
    )
    .await;
    assert_eq!(outside, None);
}

/// Runs `sql` as the schema's owner with the system actor's context, and commits.
async fn as_owner(store: &ipa_store::Store, sql: &str) {
    let txn = store.begin_maintenance().await.unwrap();
    txn.connection().execute_unprepared(sql).await.unwrap();
    txn.commit().await.unwrap();
}

#[tokio::test]
async fn remembered_tokens_are_forgotten_as_soon_as_their_session_or_account_changes() {
    use ipa_identity::{SessionLifetimes, SessionRepository, TokenDigest};
    use ipa_store::{Notifications, PgSessions, SESSIONS_CHANNEL, SessionCache};
    use std::time::{Duration, Instant};

    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let start_session = |token: u8, lasts: &'static str| {
        let store = store.clone();
        async move {
            exec_as(
                &store,
                &Actor::system(),
                &format!(
                    "INSERT INTO sessions (user_id, token_hash, idle_expires_at, expires_at) \
                     VALUES ('{alice}', decode(repeat('{token:02x}', 32), 'hex'), \
                             now() + interval '{lasts}', now() + interval '{lasts}')"
                ),
            )
            .await
            .unwrap();
        }
    };
    start_session(0xab, "1 hour").await;
    let notifications = Notifications::listen(&store, &[SESSIONS_CHANNEL]);
    let began = Instant::now();
    while notifications.listening_epoch().is_none() {
        assert!(began.elapsed() < Duration::from_secs(10), "never listened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A period far longer than the test: only an announcement (or the session's end) can make a
    // remembered token fail within it.
    let cached = PgSessions::new(store.clone())
        .with_cache(SessionCache::new(Duration::from_secs(60), &notifications));
    let uncached = PgSessions::new(store.clone());
    let lifetimes = SessionLifetimes::default();
    // Whether `token` authenticates, and as a superuser or not.
    let authenticate = |sessions: &PgSessions, token: u8| {
        let sessions = sessions.clone();
        async move {
            sessions
                .authenticate(
                    &TokenDigest::from_bytes([token; 32]),
                    &ClientInfo::new(None, None),
                    lifetimes,
                )
                .await
                .unwrap()
                .map(|principal| (principal.user_id.as_uuid(), principal.is_superuser))
        }
    };
    // How long until `token` stops authenticating through the cache (at most 5 s).
    let refused_after = |token: u8| {
        let cached = cached.clone();
        async move {
            let began = Instant::now();
            while authenticate(&cached, token).await.is_some() {
                assert!(
                    began.elapsed() < Duration::from_secs(5),
                    "still honoured 5 s after the change"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            began.elapsed()
        }
    };
    assert_eq!(authenticate(&cached, 0xab).await, Some((alice, false)));

    // Deactivated without any announcement (the announcing trigger and the one revoking the
    // account's sessions disabled): the database refuses the token, the cache still honours it,
    // which shows it is remembered.
    let unannounced = |active: bool| {
        format!(
            "ALTER TABLE users DISABLE TRIGGER users_announce_change; \
             ALTER TABLE users DISABLE TRIGGER revoke_sessions_on_deactivation; \
             UPDATE users SET is_active = {active} WHERE id = '{alice}'; \
             ALTER TABLE users ENABLE TRIGGER revoke_sessions_on_deactivation; \
             ALTER TABLE users ENABLE TRIGGER users_announce_change"
        )
    };
    as_owner(&store, &unannounced(false)).await;
    assert_eq!(authenticate(&uncached, 0xab).await, None);
    assert_eq!(authenticate(&cached, 0xab).await, Some((alice, false)));
    as_owner(&store, &unannounced(true)).await;

    // Announced: a promotion (the remembered principal carries the flag), a revocation, a
    // deactivation.
    as_owner(
        &store,
        &format!("UPDATE users SET is_superuser = true WHERE id = '{alice}'"),
    )
    .await;
    let began = Instant::now();
    while authenticate(&cached, 0xab).await != Some((alice, true)) {
        assert!(began.elapsed() < Duration::from_secs(5), "never promoted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    as_owner(&store, "UPDATE sessions SET revoked_at = now()").await;
    refused_after(0xab).await;
    start_session(0xcd, "1 hour").await;
    assert_eq!(authenticate(&cached, 0xcd).await, Some((alice, true)));
    as_owner(
        &store,
        &format!("UPDATE users SET is_active = false WHERE id = '{alice}'"),
    )
    .await;
    refused_after(0xcd).await;

    // A session that ends before the period does: honoured until its end, not after.
    as_owner(
        &store,
        &format!("UPDATE users SET is_active = true WHERE id = '{alice}'"),
    )
    .await;
    start_session(0xef, "1 second").await;
    assert_eq!(authenticate(&cached, 0xef).await, Some((alice, true)));
    let ended = refused_after(0xef).await;
    assert!(ended > Duration::from_millis(500), "ended after {ended:?}");
}
