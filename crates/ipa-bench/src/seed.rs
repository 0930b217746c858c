//! The seeded data: its volumes, the formulas of its ids (the same in Rust, in the seeding SQL
//! and in the pgbench scripts, so each can pick rows the others created), and the SQL that
//! writes it with `generate_series` in a few big statements.
//!
//! Shape: workflows belong to the benchmark user when `(i - 1) % 5 < 3` (60%) and to 49 seeded
//! members otherwise; each carries 1 to 4 tags from a vocabulary of 50 and metadata such as
//! `{"team": "team-17", "priority": 3, "region": "eu"}`; one in ten has 4 versions, one in three
//! 2, the others 1. Execution `j` runs workflow `1 + (j - 1) % W` (so every workflow has `E / W`
//! runs), was started by the workflow's owner, and is spread over the last 90 days and over the
//! final statuses and `paused` (never `pending` or `running`, which the engine would pick up).
//! Runs have 1 or 2 steps and 7 to 14 log lines (10.5 on average) of mixed levels.

use std::fmt::Write as _;

/// How much data the suite seeds and how long it measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Volumes {
    /// Workflows.
    pub workflows: u64,
    /// Executions (a multiple of `workflows`).
    pub executions: u64,
}

impl Volumes {
    /// `--size small`: for CI, seeded in seconds.
    pub const SMALL: Self = Self {
        workflows: 2_000,
        executions: 20_000,
    };
    /// The default: 100k workflows, 1M executions, 10.5M log lines.
    pub const DEFAULT: Self = Self {
        workflows: 100_000,
        executions: 1_000_000,
    };

    /// Runs per workflow.
    pub fn runs_per_workflow(&self) -> u64 {
        self.executions / self.workflows
    }

    /// Log lines seeded: `7 + j % 8` per execution `j`.
    pub fn log_lines(&self) -> u64 {
        (1..=self.executions).map(|j| 7 + j % 8).sum()
    }

    /// Workflow versions seeded.
    pub fn versions(&self) -> u64 {
        (1..=self.workflows).map(version_count).sum()
    }

    /// Workflows of the benchmark user.
    pub fn owned_workflows(&self) -> u64 {
        (1..=self.workflows).filter(|&i| is_owned(i)).count() as u64
    }

    /// Executions the benchmark user sees (those of its workflows).
    pub fn visible_executions(&self) -> u64 {
        self.owned_workflows() * self.runs_per_workflow()
    }

    /// Workflows `10 m + 1`: owned and active, the ones runs are started on.
    pub fn startable_workflows(&self) -> u64 {
        self.workflows / 10
    }
}

/// The seeded tables, each with its own id prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// Seeded members (not the benchmark user, who is created through the API).
    User,
    /// `workflows`.
    Workflow,
    /// `workflow_versions`: number `4 i + v - 1` for version `v` of workflow `i`.
    Version,
    /// `executions`.
    Execution,
    /// `execution_steps`: number `4 j + s` for step `s` of execution `j`.
    Step,
}

impl Table {
    fn prefix(self) -> &'static str {
        match self {
            Self::User => "10000000",
            Self::Workflow => "20000000",
            Self::Version => "30000000",
            Self::Execution => "40000000",
            Self::Step => "50000000",
        }
    }

    /// The id of row `n`.
    pub fn id(self, n: u64) -> String {
        format!("{}-0000-4000-8000-{n:012x}", self.prefix())
    }

    /// SQL computing the id of row `expr` (an integer expression).
    pub fn sql_id(self, expr: &str) -> String {
        format!(
            "('{}-0000-4000-8000-' || lpad(to_hex(({expr})::bigint), 12, '0'))::uuid",
            self.prefix()
        )
    }
}

/// Seeded members besides the benchmark user.
pub const MEMBERS: u64 = 49;

/// Whether workflow `i` (from 1) belongs to the benchmark user.
pub fn is_owned(i: u64) -> bool {
    (i - 1) % 5 < 3
}

/// The `k`-th (from 0) workflow of the benchmark user.
pub fn owned_workflow(k: u64) -> u64 {
    (k / 3) * 5 + k % 3 + 1
}

/// The `m`-th (from 0) workflow runs are started on: owned and active.
pub fn startable_workflow(m: u64) -> u64 {
    10 * m + 1
}

/// Versions of workflow `i`.
pub fn version_count(i: u64) -> u64 {
    if i.is_multiple_of(10) {
        4
    } else if i.is_multiple_of(3) {
        2
    } else {
        1
    }
}

/// The vocabulary of tags.
pub const TAGS: [&str; 50] = [
    "billing",
    "finance",
    "invoices",
    "payments",
    "refunds",
    "orders",
    "shipping",
    "inventory",
    "procurement",
    "suppliers",
    "hr",
    "onboarding",
    "payroll",
    "recruiting",
    "offboarding",
    "support",
    "tickets",
    "escalation",
    "sla",
    "feedback",
    "marketing",
    "campaigns",
    "leads",
    "newsletter",
    "social",
    "sales",
    "quotes",
    "contracts",
    "renewals",
    "crm",
    "it",
    "access",
    "provisioning",
    "backups",
    "monitoring",
    "security",
    "compliance",
    "audit",
    "gdpr",
    "risk",
    "legal",
    "documents",
    "approvals",
    "reporting",
    "analytics",
    "etl",
    "nightly",
    "customers",
    "partners",
    "internal",
];

/// The tags of workflow `i`: `1 + i % 4` distinct words of [`TAGS`].
pub fn tags_of(i: u64) -> Vec<&'static str> {
    (0..=(i % 4))
        .map(|j| TAGS[((i * 7 + j * 13) % 50) as usize])
        .collect()
}

/// Teams in the metadata.
pub const TEAMS: u64 = 40;

/// The SQL array literal of [`TAGS`].
pub fn tags_array_sql() -> String {
    let quoted: Vec<String> = TAGS.iter().map(|tag| format!("'{tag}'")).collect();
    format!("ARRAY[{}]", quoted.join(","))
}

/// The definition of seeded versions, published versions and engine runs' workflow: one webhook
/// step. No `:` is followed by a letter, which pgbench would read as a variable.
pub fn webhook_definition(url: &str) -> String {
    format!(
        r#"{{"steps": [{{"name": "notify", "type": "webhook", "request": {{"method": "POST", "url": "{url}", "body": {{"order": "{{{{ input.order_id }}}}"}}}}}}]}}"#
    )
}

/// A password hash for seeded members, who never sign in.
const MEMBER_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2VlZGVkLW1lbWJlcg$bm90LWEtcmVhbC1oYXNoLW5vdC1hLXJlYWwtaGFzaA";

/// The seeding script, run by psql as the cluster's superuser: one transaction (so `now()` is the
/// same in every statement) with the audit and foreign key triggers skipped, then
/// `VACUUM (ANALYZE)`. `owner` is the benchmark user's id.
pub fn seed_sql(volumes: Volumes, owner: &str) -> String {
    let w = volumes.workflows;
    let e = volumes.executions;
    let member = |expr: &str| Table::User.sql_id(&format!("1 + ({expr}) % {MEMBERS}"));
    let owner_of = |i: &str| {
        format!(
            "CASE WHEN ({i} - 1) % 5 < 3 THEN '{owner}'::uuid ELSE {} END",
            member(i)
        )
    };
    let version_count =
        |i: &str| format!("(CASE WHEN {i} % 10 = 0 THEN 4 WHEN {i} % 3 = 0 THEN 2 ELSE 1 END)");
    let current_version =
        |i: &str| Table::Version.sql_id(&format!("4 * {i} + {} - 1", version_count(i)));
    let definition = webhook_definition("https://hooks.example/notify");
    let mut sql = String::new();
    let _ = writeln!(sql, "\\set ON_ERROR_STOP on");
    let _ = writeln!(sql, "BEGIN;");
    let _ = writeln!(sql, "SET LOCAL session_replication_role = replica;");
    // Members.
    let _ = writeln!(
        sql,
        "INSERT INTO users (id, email, username, full_name, hashed_password, is_active, is_superuser, created_at, updated_at)
SELECT {id}, 'member-' || u || '@bench.example', 'member-' || u, 'Member ' || u, '{MEMBER_HASH}', true, false,
       now() - interval '400 days', now() - interval '400 days'
  FROM generate_series(1, {MEMBERS}) u;",
        id = Table::User.sql_id("u"),
    );
    // Workflows: 365 days of them, oldest first.
    let _ = writeln!(
        sql,
        "INSERT INTO workflows (id, name, description, created_by, status, current_version_id, tags, metadata, created_at, updated_at)
SELECT {id}, 'Workflow ' || i, 'Seeded workflow number ' || i || ' of the benchmark.', {owner_of},
       (CASE WHEN i % 10 = 8 THEN 'draft' WHEN i % 10 = 9 THEN 'archived' ELSE 'active' END)::workflow_status,
       {current},
       ARRAY(SELECT ({tags})[1 + ((i * 7 + t * 13) % 50)] FROM generate_series(0, i % 4) t),
       jsonb_build_object('team', 'team-' || (i % {TEAMS}), 'priority', i % 5,
                          'region', (ARRAY['eu', 'us', 'apac'])[1 + i % 3]),
       now() - make_interval(secs => ({w} - i) * (31536000.0 / {w})),
       now() - make_interval(secs => ({w} - i) * (31536000.0 / {w}))
  FROM generate_series(1, {w}) i;",
        id = Table::Workflow.sql_id("i"),
        owner_of = owner_of("i"),
        current = current_version("i"),
        tags = tags_array_sql(),
    );
    // Versions.
    let _ = writeln!(
        sql,
        "INSERT INTO workflow_versions (id, workflow_id, version_number, definition, change_summary, created_by, created_at)
SELECT {id}, {wid}, v, '{definition}'::jsonb, 'Version ' || v, {owner_of},
       now() - make_interval(secs => ({w} - i) * (31536000.0 / {w})) + make_interval(secs => v * 60)
  FROM generate_series(1, {w}) i, LATERAL generate_series(1, {count}) v;",
        id = Table::Version.sql_id("4 * i + v - 1"),
        wid = Table::Workflow.sql_id("i"),
        owner_of = owner_of("i"),
        count = version_count("i"),
    );
    // Executions over the last 90 days, oldest first.
    let created = format!("now() - make_interval(secs => ({e} - j) * (7776000.0 / {e}))");
    let _ = writeln!(
        sql,
        "INSERT INTO executions (id, workflow_id, workflow_version_id, triggered_by, status, input_data, output_data,
                        error_message, started_at, completed_at, duration_ms, retry_count, metadata, created_at, updated_at)
SELECT {id}, {wid}, {current}, {owner_of}, s.status::execution_status,
       jsonb_build_object('order_id', j),
       CASE WHEN s.status = 'completed' THEN '{{\"notify\": {{\"ok\": true}}}}'::jsonb END,
       CASE s.status WHEN 'failed' THEN 'step ''notify'' failed: HTTP 502' WHEN 'cancelled' THEN 'cancelled' END,
       s.created + interval '40 ms',
       CASE WHEN s.status <> 'paused' THEN s.created + interval '40 ms' + make_interval(secs => (j % 2000) / 1000.0) END,
       CASE WHEN s.status <> 'paused' THEN j % 2000 END,
       CASE WHEN s.status = 'failed' THEN 1 ELSE 0 END,
       '{{}}'::jsonb, s.created, s.created + interval '1 second'
  FROM (SELECT j, 1 + (j - 1) % {w} AS i,
               CASE WHEN j % 100 < 80 THEN 'completed' WHEN j % 100 < 92 THEN 'failed'
                    WHEN j % 100 < 97 THEN 'cancelled' ELSE 'paused' END AS status,
               {created} AS created
          FROM generate_series(1, {e}) j) s;",
        id = Table::Execution.sql_id("j"),
        wid = Table::Workflow.sql_id("s.i"),
        current = current_version("s.i"),
        owner_of = owner_of("s.i"),
    );
    // Steps: one, or two for every third run.
    let _ = writeln!(
        sql,
        "INSERT INTO execution_steps (id, execution_id, step_name, step_index, step_type, status, input_data, output_data,
                             started_at, completed_at, duration_ms, retry_count, created_at, updated_at)
SELECT {id}, {eid}, (ARRAY['notify', 'confirm'])[k + 1], k, 'webhook',
       (CASE WHEN j % 100 < 80 THEN 'completed' WHEN j % 100 < 97 AND k = (CASE WHEN j % 3 = 0 THEN 1 ELSE 0 END) THEN 'failed'
             WHEN j % 100 < 97 THEN 'completed' ELSE 'pending' END)::step_status,
       '{{\"method\": \"POST\", \"url\": \"https://hooks.example/notify\"}}'::jsonb,
       CASE WHEN j % 100 < 80 THEN '{{\"ok\": true}}'::jsonb END,
       {created} + interval '40 ms', {created} + interval '60 ms', 20, 0, {created}, {created}
  FROM generate_series(1, {e}) j, LATERAL generate_series(0, CASE WHEN j % 3 = 0 THEN 1 ELSE 0 END) k;",
        id = Table::Step.sql_id("4 * j + k"),
        eid = Table::Execution.sql_id("j"),
    );
    // Log lines, 7 to 14 per run, 10 ms apart from the run's creation.
    let _ = writeln!(
        sql,
        "INSERT INTO execution_logs (execution_id, execution_step_id, level, message, context, created_at)
SELECT {eid}, CASE WHEN k = 0 OR k = 6 + j % 8 THEN NULL ELSE {sid} END,
       (ARRAY['info', 'debug', 'info', 'info', 'warning', 'info', 'info', 'debug', 'info', 'error'])[1 + (j * 3 + k) % 10]::log_level,
       CASE WHEN k = 0 THEN 'Execution running' WHEN k = 6 + j % 8 THEN 'Execution finished'
            ELSE 'Step ''notify'' attempt ' || k || ': HTTP ' || (CASE WHEN (j + k) % 7 = 0 THEN 502 ELSE 200 END) END,
       jsonb_build_object('attempt', k, 'duration_ms', (j * k) % 900, 'status_code', CASE WHEN (j + k) % 7 = 0 THEN 502 ELSE 200 END),
       {created} + make_interval(secs => k / 100.0)
  FROM generate_series(1, {e}) j, LATERAL generate_series(0, 6 + j % 8) k;",
        eid = Table::Execution.sql_id("j"),
        sid = Table::Step.sql_id("4 * j"),
    );
    let _ = writeln!(sql, "COMMIT;");
    let _ = writeln!(
        sql,
        "VACUUM (ANALYZE) users, workflows, workflow_versions, executions, execution_steps, execution_logs;"
    );
    sql
}

/// Where the runs written apart from the seed are numbered, far above the seeded executions'
/// numbers and apart from each other (each engine row adds `10,000,000 x` its index).
pub mod numbering {
    /// pgbench's pending runs of the engine phase.
    pub const PGBENCH_PENDING: u64 = 1_000_000_000_000;
    /// The run the ingestion phase writes its lines to.
    pub const INGEST_RUN: u64 = 2_000_000_000_000;
    /// The engine phase's backlogs.
    pub const BACKLOG: u64 = 3_000_000_000_000;
    /// The distance between two engine rows' ranges.
    pub const PER_ROW: u64 = 10_000_000;
}

/// SQL inserting `count` pending one-step runs of `workflow`'s current version, started by
/// `owner`, for pgbench's engine equivalent to claim (ids numbered from `first`, far above the
/// seeded ones). Runs as the superuser with triggers skipped, like the seed; `analyze` refreshes
/// the planner's statistics after it (pgbench's prepared plans are made once, on them), and is
/// left out where workers are already polling, which would claim during it.
pub fn pending_runs_sql(
    workflow: &str,
    owner: &str,
    first: u64,
    count: u64,
    analyze: bool,
) -> String {
    let last = first + count - 1;
    format!(
        "\\set ON_ERROR_STOP on
BEGIN;
SET LOCAL session_replication_role = replica;
INSERT INTO executions (id, workflow_id, workflow_version_id, triggered_by, status, input_data, metadata, created_at, updated_at)
SELECT {eid}, w.id, w.current_version_id, '{owner}'::uuid, 'pending', jsonb_build_object('order_id', j), '{{}}',
       now() + make_interval(secs => (j - {first}) / 1000000.0), now()
  FROM workflows w, generate_series({first}, {last}) j WHERE w.id = '{workflow}'::uuid;
INSERT INTO execution_steps (id, execution_id, step_name, step_index, step_type, status)
SELECT {sid}, {eid}, 'notify', 0, 'webhook', 'pending' FROM generate_series({first}, {last}) j;
COMMIT;
{analyze}",
        eid = Table::Execution.sql_id("j"),
        sid = Table::Step.sql_id("4 * j"),
        analyze = if analyze { "ANALYZE executions;\n" } else { "" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_of_their_table() {
        assert_eq!(
            Table::Workflow.id(255),
            "20000000-0000-4000-8000-0000000000ff"
        );
        assert_eq!(Table::User.id(1), "10000000-0000-4000-8000-000000000001");
        for table in [
            Table::User,
            Table::Workflow,
            Table::Version,
            Table::Execution,
            Table::Step,
        ] {
            let id = table.id(1_000_000_000);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
        assert_eq!(
            Table::Execution.sql_id("j"),
            "('40000000-0000-4000-8000-' || lpad(to_hex((j)::bigint), 12, '0'))::uuid"
        );
    }

    #[test]
    fn owned_workflows_are_enumerated_exactly() {
        let owned: Vec<u64> = (0..9).map(owned_workflow).collect();
        assert_eq!(owned, vec![1, 2, 3, 6, 7, 8, 11, 12, 13]);
        assert!(owned.iter().all(|&i| is_owned(i)));
        assert!(!is_owned(4) && !is_owned(5) && !is_owned(10));
        let small = Volumes::SMALL;
        assert_eq!(small.owned_workflows(), 1_200);
        // The last owned workflow is within the seeded ones, the next is beyond.
        assert!(owned_workflow(small.owned_workflows() - 1) <= small.workflows);
        assert!(owned_workflow(small.owned_workflows()) > small.workflows);
    }

    #[test]
    fn startable_workflows_are_owned_and_active() {
        for m in 0..Volumes::SMALL.startable_workflows() {
            let i = startable_workflow(m);
            assert!(is_owned(i), "{i}");
            assert!(!matches!(i % 10, 8 | 9), "{i}");
            assert!(i <= Volumes::SMALL.workflows);
        }
    }

    #[test]
    fn volumes_match_the_issue() {
        // 2,500 whole cycles of 7 to 14 lines (84 each).
        assert_eq!(Volumes::SMALL.log_lines(), 210_000);
        let full = Volumes::DEFAULT;
        assert!(full.workflows >= 100_000 && full.executions >= 1_000_000);
        assert_eq!(full.log_lines(), 10_500_000);
        assert_eq!(full.executions % full.workflows, 0);
        assert_eq!(Volumes::SMALL.executions % Volumes::SMALL.workflows, 0);
        // Deep enough for a page 10,000 pages of 50 deep.
        assert!(full.visible_executions() > 10_000 * 50);
    }

    #[test]
    fn tags_are_distinct_words_of_the_vocabulary() {
        for i in 1..500 {
            let tags = tags_of(i);
            assert_eq!(tags.len() as u64, 1 + i % 4);
            let mut unique = tags.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), tags.len(), "{tags:?}");
        }
        let mut vocabulary = TAGS.to_vec();
        vocabulary.sort_unstable();
        vocabulary.dedup();
        assert_eq!(vocabulary.len(), 50);
    }

    #[test]
    fn definitions_hold_no_pgbench_variables() {
        let definition = webhook_definition("http://127.0.0.1:4000/hook");
        let parsed: serde_json::Value = serde_json::from_str(&definition).unwrap();
        assert_eq!(
            parsed["steps"][0]["request"]["url"],
            "http://127.0.0.1:4000/hook"
        );
        let bytes = definition.as_bytes();
        for (at, byte) in bytes.iter().enumerate() {
            if *byte == b':' {
                let next = bytes.get(at + 1).copied().unwrap_or(b' ');
                assert!(!next.is_ascii_alphabetic(), "{definition}");
            }
        }
    }
}
