//! The migrations themselves: every one reverts cleanly, and re-applying gives the same catalog.

use ipa_store::schema::{self, NotReady};
use ipa_store::testing::TestDatabase;
use sea_orm::TryGetable;

use crate::support::rows_as_owner;

/// A description of every object of the public schema that a migration could create, in a stable
/// order, free of OIDs and anything else that legitimately differs between two builds.
const CATALOG: &str = r#"
SELECT 'relation ' || c.relname || ' kind=' || c.relkind::text || ' rls=' || c.relrowsecurity
       || ' force=' || c.relforcerowsecurity || ' acl=' || coalesce(c.relacl::text, '')
       || coalesce(' bound=' || pg_get_expr(c.relpartbound, c.oid), '')
  FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || conrelid::regclass || '.' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'trigger ' || tgrelid::regclass || '.' || tgname || ' ' || pg_get_triggerdef(oid)
  FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text NOT LIKE 'pg_%'
UNION ALL
SELECT 'policy ' || tablename || '.' || policyname || ' ' || permissive || ' ' || cmd || ' '
       || roles::text || ' using=' || coalesce(qual, '') || ' check=' || coalesce(with_check, '')
  FROM pg_policies WHERE schemaname = 'public'
UNION ALL
SELECT 'function ' || p.proname || ' ' || pg_get_function_identity_arguments(p.oid) || ' '
       || md5(pg_get_functiondef(p.oid))
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'type ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
  FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
 WHERE t.typnamespace = 'public'::regnamespace GROUP BY t.typname
UNION ALL
SELECT 'view ' || matviewname || ' ' || md5(definition) FROM pg_matviews WHERE schemaname = 'public'
ORDER BY 1
"#;

async fn catalog(store: &ipa_store::Store) -> Vec<String> {
    rows_as_owner(store, CATALOG)
        .await
        .iter()
        .map(|row| String::try_get_by_index(row, 0).unwrap())
        .collect()
}

#[tokio::test]
async fn up_down_up_leaves_an_identical_catalog() {
    let db = TestDatabase::empty().await;
    let store = db.store().await;

    schema::migrate_up(&store, None).await.unwrap();
    let first = catalog(&store).await;
    assert!(
        first.len() > 200,
        "the schema looks too small: {} objects",
        first.len()
    );

    let applied = migration::migration_names().len() as u32;
    schema::migrate_down(&store, applied).await.unwrap();
    let emptied = catalog(&store).await;
    let leftovers: Vec<&String> = emptied
        .iter()
        .filter(|object| !object.contains("seaql_migrations"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "down left objects behind: {leftovers:#?}"
    );

    schema::migrate_up(&store, None).await.unwrap();
    let second = catalog(&store).await;
    assert_eq!(
        first, second,
        "re-applying the migrations built a different schema"
    );
}

#[tokio::test]
async fn every_migration_reverts_one_step_at_a_time() {
    let db = TestDatabase::empty().await;
    let store = db.store().await;
    let names = migration::migration_names();
    schema::migrate_up(&store, None).await.unwrap();
    for step in (0..names.len()).rev() {
        schema::migrate_down(&store, 1)
            .await
            .unwrap_or_else(|err| panic!("down of {}: {err}", names[step]));
        let states = schema::migration_states(&store).await.unwrap();
        assert_eq!(states.iter().filter(|s| s.applied).count(), step);
    }
}

#[tokio::test]
async fn readiness_reports_pending_migrations_by_name() {
    let db = TestDatabase::empty().await;
    let store = db.store().await;
    match schema::readiness(&store).await {
        Err(NotReady::PendingMigrations(pending)) => {
            assert_eq!(pending, migration::migration_names())
        }
        other => panic!("an empty database should be not ready, got {other:?}"),
    }
    schema::migrate_up(&store, Some(2)).await.unwrap();
    match schema::readiness(&store).await {
        Err(NotReady::PendingMigrations(pending)) => {
            assert_eq!(pending.len(), migration::migration_names().len() - 2)
        }
        other => panic!("a half-migrated database should be not ready, got {other:?}"),
    }
    schema::migrate_fresh(&store).await.unwrap();
    assert_eq!(schema::readiness(&store).await, Ok(()));
}
