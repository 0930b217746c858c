//! The run list at scale: with 20,000 workflows and 200,000 runs, every documented filter of
//! `GET /executions` is planned without reading the whole `workflows` table, for an owner whose
//! visibility comes from the run policy's workflow arm (`executions_follow_workflow_or_trigger`),
//! and the policy still shows exactly the runs it should: an owner sees the runs of their
//! workflows whoever started them, and nobody else's.
//!
//! Before migration `m20251201_000017_listing_without_full_scans` the policy's `EXISTS` over
//! `workflows` sat under an OR, which PostgreSQL evaluates as a hashed subplan over every
//! workflow the caller may see, read by a sequential scan (workflows' own policy is an OR no
//! index serves): the plans of this test then held `Seq Scan on workflows`.

use ipa_execution::{ExecutionFilter, ExecutionRepository, ExecutionStatus};
use ipa_kernel::{Actor, PageLimit, PageRequest, UserId, WorkflowId};
use ipa_store::PgExecutions;
use ipa_store::testing::TestDatabase;
use sea_orm::ConnectionTrait;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::support::{create_user, scalar_as, user};

/// How many workflows the table holds, alternating between alice (even `n`) and bob (odd `n`).
const WORKFLOWS: u32 = 20_000;
/// How many runs: run `r` is of workflow `r % WORKFLOWS + 1`, started by the admin when
/// `r % ADMIN_EVERY = 0` and by the workflow's owner otherwise.
const RUNS: u32 = 200_000;
/// Every third run is the admin's; 3 does not divide `WORKFLOWS`, so each workflow has some.
const ADMIN_EVERY: u32 = 3;

/// One version per workflow, then the runs, in one script.
fn insert_rows(alice: Uuid, bob: Uuid, admin: Uuid) -> String {
    format!(
        "INSERT INTO workflows (name, created_by, created_at, updated_at) \
         SELECT 'workflow ' || n, \
                CASE WHEN n % 2 = 0 THEN '{alice}'::uuid ELSE '{bob}'::uuid END, \
                now() - n * interval '1 minute', now() - n * interval '1 minute' \
         FROM generate_series(1, {WORKFLOWS}) AS n; \
         INSERT INTO workflow_versions (workflow_id, version_number, definition, created_by) \
         SELECT id, 1, '{{\"steps\": []}}'::jsonb, created_by FROM workflows; \
         INSERT INTO executions (workflow_id, workflow_version_id, triggered_by, status, created_at) \
         SELECT v.workflow_id, v.id, \
                CASE WHEN r % {ADMIN_EVERY} = 0 THEN '{admin}'::uuid ELSE v.created_by END, \
                (CASE WHEN r % 100 = 0 THEN 'paused' ELSE 'completed' END)::execution_status, \
                now() - r * interval '1 second' \
         FROM generate_series(1, {RUNS}) AS r \
         JOIN workflows w ON w.name = 'workflow ' || (r % {WORKFLOWS} + 1) \
         JOIN workflow_versions v ON v.workflow_id = w.id"
    )
}

/// The id of workflow `workflow n`, read as a superuser.
async fn workflow_named(store: &ipa_store::Store, n: u32) -> WorkflowId {
    let sql = format!("SELECT id FROM workflows WHERE name = 'workflow {n}'");
    WorkflowId::from_uuid(scalar_as(store, &user(Uuid::new_v4(), true), &sql).await)
}

/// The number of runs of `filter` that `actor` lists, on one page large enough for them all.
async fn listed(executions: &PgExecutions, actor: &Actor, filter: &ExecutionFilter) -> usize {
    let page = PageRequest {
        after: None,
        limit: PageLimit::parse(Some(100)).unwrap(),
    };
    let page = executions.list(actor, filter, page).await.unwrap();
    assert!(page.next.is_none(), "{filter:?} as {actor:?}: a next page");
    page.items.len()
}

#[tokio::test]
async fn every_run_filter_is_planned_without_reading_all_workflows_at_200k_runs() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let bob = create_user(&store, "bob").await;
    let admin = create_user(&store, "admin").await;

    // As the owner with the system's context, so the forced row level security lets the rows in.
    // The triggers (audit rows, a notification per run) would only slow the load; they are off
    // for this transaction only, which nothing else sees.
    let load = store.begin_maintenance().await.unwrap();
    load.connection()
        .execute_unprepared(&format!(
            "ALTER TABLE workflows DISABLE TRIGGER USER; \
             ALTER TABLE workflow_versions DISABLE TRIGGER USER; \
             ALTER TABLE executions DISABLE TRIGGER USER; {}; \
             ALTER TABLE workflows ENABLE TRIGGER USER; \
             ALTER TABLE workflow_versions ENABLE TRIGGER USER; \
             ALTER TABLE executions ENABLE TRIGGER USER",
            insert_rows(alice, bob, admin)
        ))
        .await
        .unwrap();
    load.commit().await.unwrap();
    // As after autovacuum: statistics, and a visibility map that allows index-only scans.
    for table in ["workflows", "workflow_versions", "executions"] {
        store
            .owner_connection()
            .execute_unprepared(&format!("VACUUM ANALYZE {table}"))
            .await
            .unwrap();
    }

    let executions = PgExecutions::new(store.clone());
    let as_alice = user(alice, false);
    let as_bob = user(bob, false);
    let as_admin = user(admin, true);

    // Workflow 2 is alice's; of its ten runs (r = 1, 20,001, ...) the admin started those with
    // r % ADMIN_EVERY = 0, which alice sees through the workflow arm of the policy alone. Bob
    // sees none of them.
    let hers = ExecutionFilter {
        workflow: Some(workflow_named(&store, 2).await),
        ..ExecutionFilter::default()
    };
    let runs_each = (RUNS / WORKFLOWS) as usize;
    assert_eq!(listed(&executions, &as_alice, &hers).await, runs_each);
    assert_eq!(listed(&executions, &as_admin, &hers).await, runs_each);
    assert_eq!(listed(&executions, &as_bob, &hers).await, 0);
    let started_by_admin = ExecutionFilter {
        triggered_by: Some(UserId::from_uuid(admin)),
        ..hers.clone()
    };
    let admins_in_hers = (0..RUNS / WORKFLOWS)
        .map(|k| 1 + k * WORKFLOWS)
        .filter(|r| r % ADMIN_EVERY == 0)
        .count();
    assert_eq!(admins_in_hers, 3, "the data has the shape the comments say");
    assert_eq!(
        listed(&executions, &as_alice, &started_by_admin).await,
        admins_in_hers
    );
    assert_eq!(listed(&executions, &as_bob, &started_by_admin).await, 0);

    let filters = [
        ("no filter", ExecutionFilter::default()),
        ("?workflow_id", hers.clone()),
        (
            "?status=paused",
            ExecutionFilter {
                status: Some(ExecutionStatus::Paused),
                ..ExecutionFilter::default()
            },
        ),
        (
            "?triggered_by",
            ExecutionFilter {
                triggered_by: Some(UserId::from_uuid(admin)),
                ..ExecutionFilter::default()
            },
        ),
        (
            "?created_after",
            ExecutionFilter {
                created_from: Some(OffsetDateTime::now_utc() - Duration::hours(1)),
                ..ExecutionFilter::default()
            },
        ),
        (
            "?created_before",
            ExecutionFilter {
                created_before: Some(OffsetDateTime::now_utc() - Duration::hours(50)),
                ..ExecutionFilter::default()
            },
        ),
    ];
    // Every plan is printed before any is judged, so one run shows them all.
    let mut full_scans = Vec::new();
    for (name, filter) in &filters {
        for (who, actor) in [("alice", &as_alice), ("a superuser", &as_admin)] {
            let plan = executions
                .explain_list(actor, filter, PageRequest::default())
                .await
                .unwrap();
            eprintln!("plan as {who} for {name}:\n{plan}\n");
            if plan.contains("Seq Scan on workflows") {
                full_scans.push(format!("{name} as {who}"));
            }
        }
    }
    assert!(
        full_scans.is_empty(),
        "these run lists read every workflow (plans above): {full_scans:?}"
    );
}
