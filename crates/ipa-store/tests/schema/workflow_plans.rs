//! The workflow list at scale: with 100,000 workflows, a selective tag filter, a selective
//! metadata filter and a name fragment are answered from their GIN indexes (`idx_workflows_tags`,
//! `idx_workflows_metadata`, the trigram index `idx_workflows_name_trgm`), checked on `EXPLAIN`
//! of the very SQL the repository runs, as a superuser and as an owner (whose row level security
//! adds `created_by = ...` to the plan).
//!
//! Under row level security PostgreSQL puts a query's own condition into an index scan only when
//! its operator is `LEAKPROOF` (the policy's conditions must run first otherwise), and neither
//! `@>` (`arraycontains`, `jsonb_contains`) nor `ILIKE` (`texticlike`) is leakproof out of the
//! box: a superuser marks them so in every database (`ipa_store::cluster::LEAKPROOF_FILTERS_SQL`, which the test template
//! receives too). Without that, every plan here is a sequential or `created_at` scan.

use std::time::Instant;

use ipa_kernel::{Actor, PageRequest, UserId};
use ipa_store::PgWorkflows;
use ipa_store::testing::TestDatabase;
use ipa_workflow::{Metadata, NameFragment, Tags, Workflow, WorkflowFilter, WorkflowRepository};
use sea_orm::ConnectionTrait;
use serde_json::json;
use uuid::Uuid;

use crate::support::{create_user, user};

/// How many workflows the table holds.
const WORKFLOWS: u32 = 100_000;
/// How many of them carry the rare tag and metadata: `n % 10000` is 0 (alice's) or 5001 (bob's).
const RARE: usize = 20;
const RARE_TAG: &str = "rare-tag";

/// Inserts [`WORKFLOWS`] workflows in one statement, alternating between `alice` (even `n`) and
/// `bob` (odd `n`), newest first by `n`: most carry common tags, one of a long tail of project
/// tags (as real tags are: a few common, many rare) and a team's metadata; [`RARE`] carry
/// [`RARE_TAG`] and `{"team": "needle"}`.
fn insert_workflows(alice: Uuid, bob: Uuid) -> String {
    format!(
        "INSERT INTO workflows \
           (name, description, created_by, status, tags, metadata, created_at, updated_at) \
         SELECT 'workflow ' || n, \
                CASE WHEN n % 4 = 0 THEN 'Nightly job number ' || n END, \
                CASE WHEN n % 2 = 0 THEN '{alice}'::uuid ELSE '{bob}'::uuid END, \
                (CASE WHEN n % 10 = 0 THEN 'archived' ELSE 'draft' END)::workflow_status, \
                CASE WHEN n % 10000 IN (0, 5001) THEN ARRAY['{RARE_TAG}', 'ops'] \
                     WHEN n % 97 = 0 THEN NULL \
                     ELSE (CASE n % 4 WHEN 0 THEN ARRAY['ops'] \
                                      WHEN 1 THEN ARRAY['ops', 'finance'] \
                                      WHEN 2 THEN ARRAY['finance'] \
                                      ELSE ARRAY['finance', 'ops', 'reporting'] END) \
                          || ('project-' || n % 1000) END, \
                CASE WHEN n % 10000 IN (0, 5001) THEN '{{\"team\": \"needle\", \"tier\": 0}}'::jsonb \
                     ELSE jsonb_build_object('team', 'team-' || n % 50, 'tier', n % 3) END, \
                now() - n * interval '1 minute', \
                now() - n * interval '1 minute' \
         FROM generate_series(1, {WORKFLOWS}) AS n"
    )
}

fn tag_filter() -> WorkflowFilter {
    WorkflowFilter {
        tags: Tags::parse(&[RARE_TAG.to_owned()]).unwrap(),
        ..WorkflowFilter::default()
    }
}

fn metadata_filter() -> WorkflowFilter {
    WorkflowFilter {
        metadata: Some(Metadata::parse(json!({"team": "needle"})).unwrap()),
        ..WorkflowFilter::default()
    }
}

/// `workflow 1234`: matches `workflow 1234` and `workflow 12340` to `workflow 12349`, 11 of the
/// 100,000 names, of which alice owns the 6 even ones.
fn name_filter() -> WorkflowFilter {
    WorkflowFilter {
        name: Some(NameFragment::parse("Workflow 1234").unwrap()),
        ..WorkflowFilter::default()
    }
}

fn is_rare(workflow: &Workflow) -> bool {
    workflow.tags.as_slice().iter().any(|tag| tag == RARE_TAG)
        && workflow.metadata.as_value()["team"] == "needle"
}

/// Lists the first page with `filter` as `actor` and checks it holds exactly the rare workflows
/// `actor` may see: `expected` of them, each owned by `owner` when given.
async fn assert_lists_rare_rows(
    workflows: &PgWorkflows,
    actor: &Actor,
    filter: &WorkflowFilter,
    expected: usize,
    owner: Option<UserId>,
) {
    let page = workflows
        .list(actor, filter, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), expected, "{filter:?} as {actor:?}");
    assert!(page.next.is_none(), "{filter:?} as {actor:?}: a next page");
    assert!(
        page.items.iter().all(is_rare),
        "{filter:?} as {actor:?}: a common workflow was listed"
    );
    if let Some(owner) = owner {
        assert!(
            page.items.iter().all(|workflow| workflow.owner == owner),
            "{filter:?} as {actor:?}: another owner's workflow was listed"
        );
    }
    let mut ids: Vec<Uuid> = page.items.iter().map(|w| w.id.as_uuid()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        expected,
        "{filter:?} as {actor:?}: repeated rows"
    );
}

#[tokio::test]
async fn rare_tag_metadata_and_name_filters_use_their_gin_indexes_at_100k_workflows() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let bob = create_user(&store, "bob").await;
    let admin = create_user(&store, "admin").await;

    // As the owner with the system's context, so the forced row level security lets the rows in.
    // The audit trigger would add one audit row per workflow and most of the time (about 8 of
    // 10 seconds); it is off for this transaction only, which nothing else sees.
    let started = Instant::now();
    let load = store.begin_maintenance().await.unwrap();
    load.connection()
        .execute_unprepared(&format!(
            "ALTER TABLE workflows DISABLE TRIGGER workflow_audit_trigger; {}; \
             ALTER TABLE workflows ENABLE TRIGGER workflow_audit_trigger",
            insert_workflows(alice, bob)
        ))
        .await
        .unwrap();
    load.commit().await.unwrap();
    let inserted = started.elapsed();
    store
        .owner_connection()
        .execute_unprepared("ANALYZE workflows")
        .await
        .unwrap();
    eprintln!(
        "inserted {WORKFLOWS} workflows in {inserted:?}, analyzed in {:?}",
        started.elapsed() - inserted
    );

    let workflows = PgWorkflows::new(store.clone());
    let superuser = user(admin, true);
    let as_alice = user(alice, false);
    let alice_id = UserId::from_uuid(alice);

    // The filters find exactly the rare rows, and an owner only their own share of them.
    for filter in [tag_filter(), metadata_filter()] {
        assert_lists_rare_rows(&workflows, &superuser, &filter, RARE, None).await;
        assert_lists_rare_rows(&workflows, &as_alice, &filter, RARE / 2, Some(alice_id)).await;
    }

    // The name filter finds its eleven rows, in any case, and an owner only their six.
    let by_name = |actor| {
        let workflows = &workflows;
        async move {
            let page = workflows
                .list(actor, &name_filter(), PageRequest::default())
                .await
                .unwrap();
            page.items.len()
        }
    };
    assert_eq!(by_name(&superuser).await, 11);
    assert_eq!(by_name(&as_alice).await, 6);

    // Every plan is printed before any is judged, so one run shows them all.
    let mut unserved = Vec::new();
    for (filter, index) in [
        (tag_filter(), "idx_workflows_tags"),
        (metadata_filter(), "idx_workflows_metadata"),
        (name_filter(), "idx_workflows_name_trgm"),
    ] {
        for (who, actor) in [("a superuser", &superuser), ("alice", &as_alice)] {
            let plan = workflows
                .explain_list(actor, &filter, PageRequest::default())
                .await
                .unwrap();
            eprintln!("plan as {who} for {filter:?}:\n{plan}\n");
            if !plan.contains(&format!("Bitmap Index Scan on {index}")) {
                unserved.push(format!("{index} as {who}"));
            }
        }
    }
    assert!(
        unserved.is_empty(),
        "not served by a Bitmap Index Scan on the GIN index: {unserved:?} (plans above); are \
         arraycontains, jsonb_contains and texticlike LEAKPROOF in this database? (see the module's \
         documentation)"
    );
}

#[tokio::test]
async fn the_server_can_tell_whether_filters_are_leakproof() {
    let marked = TestDatabase::migrated().await;
    let store = marked.store().await;
    assert!(
        ipa_store::schema::filters_are_leakproof(&store)
            .await
            .unwrap()
    );
    store.close().await.unwrap();
    // A database nobody provisioned has PostgreSQL's defaults.
    let plain = TestDatabase::empty().await;
    let store = plain.store().await;
    assert!(
        !ipa_store::schema::filters_are_leakproof(&store)
            .await
            .unwrap()
    );
    store.close().await.unwrap();
}
