//! The store behind a pooler in transaction mode: settings carry any text intact, a failed
//! transaction ends as it does on a session of its own, and no prepared statement is left on a
//! server connection once its transaction has committed.

use ipa_kernel::{Actor, ClientInfo, UserAgent, UserId};
use ipa_store::testing::{TestDatabase, test_pooler};
use ipa_store::{DatabaseTarget, PoolOptions, Pooling, Store};
use sea_orm::sqlx::{Connection, Executor, Row, postgres::PgConnection};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use crate::support::scalar;

/// A store over `db` in `pooling`, straight to PostgreSQL.
async fn store_in(db: &TestDatabase, pooling: Pooling) -> Store {
    let target = match pooling {
        Pooling::Session => DatabaseTarget::direct(db.owner_url()),
        Pooling::Transaction => DatabaseTarget::pooled(db.owner_url(), db.owner_url(), pooling),
    };
    Store::connect_to(&target, PoolOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn client_text_reaches_the_transaction_settings_intact() {
    let db = TestDatabase::migrated().await;
    let hostile = r"it's E'\x41' \\ $$; SELECT 1; -- 日本 'quoted'";
    for pooling in [Pooling::Session, Pooling::Transaction] {
        let store = store_in(&db, pooling).await;
        let id = Uuid::new_v4();
        let actor = Actor::user(
            UserId::from_uuid(id),
            false,
            ClientInfo::new(
                Some("2001:db8::7".parse().unwrap()),
                UserAgent::parse(hostile),
            ),
        );
        let txn = store.begin(&actor).await.unwrap();
        let agent: String = scalar(&txn, "SELECT current_setting('app.user_agent')").await;
        let user: String = scalar(&txn, "SELECT current_setting('app.current_user_id')").await;
        let ip: String = scalar(&txn, "SELECT current_setting('app.client_ip')").await;
        let role: String = scalar(&txn, "SELECT current_user::text").await;
        txn.commit().await.unwrap();
        assert_eq!(agent, hostile, "{pooling:?}");
        assert_eq!(user, id.to_string(), "{pooling:?}");
        assert_eq!(ip, "2001:db8::7", "{pooling:?}");
        assert_eq!(role, migration::APP_ROLE, "{pooling:?}");
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_failed_transaction_ends_alike_with_and_without_transaction_pooling() {
    let db = TestDatabase::migrated().await;
    for pooling in [Pooling::Session, Pooling::Transaction] {
        let store = store_in(&db, pooling).await;
        let txn = store.begin(&Actor::system()).await.unwrap();
        let failed = txn
            .connection()
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 / $1::int",
                [0.into()],
            ))
            .await;
        assert!(failed.is_err(), "{pooling:?}");
        // PostgreSQL answers COMMIT of a failed transaction by rolling it back, without error.
        txn.commit().await.unwrap();
        let txn = store.begin(&Actor::system()).await.unwrap();
        let two: i32 = scalar(&txn, "SELECT 2").await;
        assert_eq!(two, 2, "{pooling:?}");
        txn.rollback().await.unwrap();
        store.close().await.unwrap();
    }
}

/// Runs only with `IPA_TEST_POOLER` (`.ci/run` starts PgBouncer for it): committed
/// transactions of several clients, prepared statements and all, leave the pooler's server
/// connections without a prepared statement.
#[tokio::test]
async fn no_prepared_statement_outlives_its_transaction_behind_the_pooler() {
    let Some(pooler) = test_pooler() else {
        eprintln!("IPA_TEST_POOLER is not set: nothing to check without a pooler");
        return;
    };
    let db = TestDatabase::migrated().await;
    let target = db.target();
    assert_eq!(target.pooling(), Pooling::Transaction);
    let store = db.store().await;
    let mut work = tokio::task::JoinSet::new();
    for n in 0..40 {
        let store = store.clone();
        work.spawn(async move {
            let txn = store.begin(&Actor::system()).await.unwrap();
            for k in 0..3 {
                let row = txn
                    .connection()
                    .query_one_raw(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "SELECT $1::int + $2::int AS sum, count(*) AS users FROM users",
                        [n.into(), k.into()],
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                let sum: i32 = row.try_get("", "sum").unwrap();
                assert_eq!(sum, n + k);
            }
            txn.commit().await.unwrap();
        });
    }
    while let Some(done) = work.join_next().await {
        done.unwrap();
    }
    store.close().await.unwrap();

    // Two clients each holding a transaction hold two server connections: with the pool of two
    // the tests use, every one there is.
    let mut first = PgConnection::connect(target.url()).await.unwrap();
    let mut second = PgConnection::connect(target.url()).await.unwrap();
    let mut seen = Vec::new();
    for connection in [&mut first, &mut second] {
        connection.execute("BEGIN").await.unwrap();
        // The simple protocol: the check itself prepares nothing.
        let row = connection
            .fetch_one("SELECT pg_backend_pid()::text, count(*)::text FROM pg_prepared_statements")
            .await
            .unwrap();
        let pid: String = row.get(0);
        let count: String = row.get(1);
        seen.push((pid, count));
    }
    for connection in [&mut first, &mut second] {
        connection.execute("ROLLBACK").await.unwrap();
    }
    let _ = first.close().await;
    let _ = second.close().await;
    assert_ne!(
        seen[0].0, seen[1].0,
        "two server connections through {pooler}"
    );
    for (pid, count) in &seen {
        assert_eq!(
            count, "0",
            "server connection {pid} keeps prepared statements"
        );
    }
}
