//! The workspace's dependency rules, checked against what Cargo actually resolves.
//!
//! `docs/architecture.md` states, in its `## Dependency rules` table, which crates each workspace
//! crate may depend on directly and which it must never reach through any chain of normal
//! dependencies. This test reads that table, asks `cargo metadata` (locked, offline, for the host
//! platform) for the resolved graph, and fails naming the crate and the dependency that breaks a
//! rule, so the document and the manifests cannot drift apart unnoticed. Dev-dependencies and
//! build-dependencies are not checked: they never reach what a crate's users link.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The heading of the table in `docs/architecture.md`.
const HEADING: &str = "## Dependency rules";

/// What one crate may depend on, as the table says.
#[derive(Debug, Default, PartialEq)]
struct Rule {
    /// Packages it may depend on directly; `None` for any (`*`).
    allowed: Option<BTreeSet<String>>,
    /// Packages it must not reach through normal dependencies, directly or not.
    unreachable: BTreeSet<String>,
}

/// The normal dependencies of every package, by package name, for one platform.
#[derive(Debug, Default)]
struct Graph {
    /// Direct normal dependencies of each package.
    dependencies: HashMap<String, BTreeSet<String>>,
    /// The workspace's own packages.
    members: BTreeSet<String>,
}

/// The backticked names of a table cell (`*` stands for any, `-` for none).
fn names(cell: &str) -> Option<BTreeSet<String>> {
    let cell = cell.trim();
    if cell == "*" {
        return None;
    }
    Some(
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

/// The rules in the table under [`HEADING`] of `document`: one row per crate, with the crate, the
/// crates it may depend on, and the crates it must not reach.
fn parse_rules(document: &str) -> Result<BTreeMap<String, Rule>, String> {
    let section = document
        .split_once(HEADING)
        .map(|(_, after)| after)
        .ok_or_else(|| format!("no `{HEADING}` section"))?;
    let rows = section
        .lines()
        .skip_while(|line| !line.trim_start().starts_with('|'))
        .take_while(|line| line.trim_start().starts_with('|'))
        // The header and the separator.
        .skip(2);
    let mut rules = BTreeMap::new();
    for row in rows {
        let cells: Vec<&str> = row.trim().trim_matches('|').split('|').collect();
        let [krate, allowed, unreachable] = cells.as_slice() else {
            return Err(format!("a row of `{HEADING}` does not have 3 cells: {row}"));
        };
        let krate = names(krate)
            .and_then(|names| names.into_iter().next())
            .ok_or_else(|| format!("a row of `{HEADING}` names no crate: {row}"))?;
        let rule = Rule {
            allowed: names(allowed),
            unreachable: names(unreachable).unwrap_or_default(),
        };
        if rules.insert(krate.clone(), rule).is_some() {
            return Err(format!("`{krate}` has two rows in `{HEADING}`"));
        }
    }
    if rules.is_empty() {
        return Err(format!("the `{HEADING}` table has no rows"));
    }
    Ok(rules)
}

/// The normal dependencies in `cargo metadata`'s output (format version 1).
fn parse_graph(metadata: &Value) -> Result<Graph, String> {
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata lists no packages")?;
    let name_of: HashMap<&str, &str> = packages
        .iter()
        .filter_map(|package| Some((package["id"].as_str()?, package["name"].as_str()?)))
        .collect();
    let name = |id: &Value| -> Result<String, String> {
        id.as_str()
            .and_then(|id| name_of.get(id))
            .map(|name| (*name).to_owned())
            .ok_or_else(|| format!("cargo metadata names an unknown package: {id}"))
    };
    let mut graph = Graph::default();
    for member in metadata["workspace_members"]
        .as_array()
        .ok_or("cargo metadata lists no workspace members")?
    {
        graph.members.insert(name(member)?);
    }
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .ok_or("cargo metadata has no resolved graph")?;
    for node in nodes {
        let mut normal = BTreeSet::new();
        for dependency in node["deps"].as_array().into_iter().flatten() {
            let kinds = dependency["dep_kinds"].as_array().into_iter().flatten();
            // `kind` is null for a normal dependency, "dev" or "build" otherwise.
            if kinds.into_iter().any(|kind| kind["kind"].is_null()) {
                normal.insert(name(&dependency["pkg"])?);
            }
        }
        graph
            .dependencies
            .entry(name(&node["id"])?)
            .or_default()
            .extend(normal);
    }
    Ok(graph)
}

/// The chain of normal dependencies from `from` to `to`, both included, if there is one.
fn path(graph: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    let mut came_from: HashMap<&str, &str> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(current) = queue.pop_front() {
        for next in graph.dependencies.get(current).into_iter().flatten() {
            if next == from || came_from.contains_key(next.as_str()) {
                continue;
            }
            came_from.insert(next, current);
            if next == to {
                let mut chain = vec![to.to_owned()];
                let mut at = to;
                while let Some(previous) = came_from.get(at) {
                    chain.push((*previous).to_owned());
                    at = previous;
                }
                chain.reverse();
                return Some(chain);
            }
            queue.push_back(next);
        }
    }
    None
}

/// Every broken rule, one message each, naming the crate and the dependency.
fn violations(rules: &BTreeMap<String, Rule>, graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    for member in &graph.members {
        if !rules.contains_key(member) {
            found.push(format!(
                "workspace crate `{member}` has no row in the `{HEADING}` table of \
                 docs/architecture.md; add one"
            ));
        }
    }
    for (krate, rule) in rules {
        let Some(direct) = graph.dependencies.get(krate) else {
            found.push(format!(
                "`{krate}` is in the `{HEADING}` table but not in the workspace"
            ));
            continue;
        };
        if let Some(allowed) = &rule.allowed {
            for dependency in direct.difference(allowed) {
                found.push(format!(
                    "`{krate}` depends on `{dependency}`, which the `{HEADING}` table of \
                     docs/architecture.md does not allow it"
                ));
            }
        }
        for forbidden in &rule.unreachable {
            if let Some(chain) = path(graph, krate, forbidden) {
                found.push(format!(
                    "`{krate}` must not depend on `{forbidden}`, but does: {}",
                    chain.join(" -> ")
                ));
            }
        }
    }
    found
}

/// The workspace's root directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The platform this test runs on, from `TARGET` when set, else `rustc -vV`.
fn host_triple() -> String {
    if let Ok(target) = std::env::var("TARGET")
        && !target.is_empty()
    {
        return target;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = Command::new(&rustc)
        .arg("-vV")
        .output()
        .unwrap_or_else(|error| panic!("cannot run `{rustc} -vV`: {error}"));
    assert!(output.status.success(), "`{rustc} -vV` failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("`{rustc} -vV` names no host"))
}

#[test]
fn the_workspace_keeps_its_dependency_rules() {
    let root = workspace_root();
    let document = std::fs::read_to_string(root.join("docs/architecture.md"))
        .unwrap_or_else(|error| panic!("cannot read docs/architecture.md: {error}"));
    let rules = parse_rules(&document).unwrap_or_else(|error| panic!("{error}"));

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "metadata",
            "--locked",
            "--offline",
            "--format-version",
            "1",
            "--filter-platform",
        ])
        .arg(host_triple())
        .output()
        .unwrap_or_else(|error| panic!("cannot run `{cargo} metadata`: {error}"));
    assert!(
        output.status.success(),
        "`cargo metadata` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("`cargo metadata` did not answer JSON: {error}"));
    let graph = parse_graph(&metadata).unwrap_or_else(|error| panic!("{error}"));

    let found = violations(&rules, &graph);
    assert!(
        found.is_empty(),
        "the dependency rules are broken:\n{}",
        found.join("\n")
    );
}

/// A table as docs/architecture.md writes it, with rows for `app`, `domain` and `web`.
const SYNTHETIC: &str = "\
# Architecture

## Dependency rules

Some words.

| Crate | May depend on | Must not reach |
| ----- | ------------- | -------------- |
| `domain` | `serde` | `tokio` |
| `web` | `domain`, `serde`, `poem` | `engine`, `reqwest` |
| `app` | * | - |

## Next section

| `not` | `a` | `rule` |
";

/// `cargo metadata`-shaped JSON for packages and their normal (`None`) or other dependencies.
fn synthetic_metadata(members: &[&str], edges: &[(&str, &str, Option<&str>)]) -> Value {
    let mut names: BTreeSet<&str> = members.iter().copied().collect();
    for (from, to, _) in edges {
        names.insert(from);
        names.insert(to);
    }
    let id = |name: &str| format!("path+file:///{name}#0.1.0");
    let nodes: Vec<Value> = names
        .iter()
        .map(|name| {
            let deps: Vec<Value> = edges
                .iter()
                .filter(|(from, _, _)| from == name)
                .map(|(_, to, kind)| {
                    serde_json::json!({
                        "name": to.replace('-', "_"),
                        "pkg": id(to),
                        "dep_kinds": [{"kind": kind, "target": null}],
                    })
                })
                .collect();
            serde_json::json!({"id": id(name), "deps": deps})
        })
        .collect();
    serde_json::json!({
        "packages": names.iter().map(|name| serde_json::json!({"id": id(name), "name": name})).collect::<Vec<_>>(),
        "workspace_members": members.iter().map(|name| id(name)).collect::<Vec<_>>(),
        "resolve": {"nodes": nodes},
    })
}

#[test]
fn the_table_is_read_from_its_section_only() {
    let rules = parse_rules(SYNTHETIC).unwrap();
    assert_eq!(rules.len(), 3);
    assert_eq!(
        rules["web"],
        Rule {
            allowed: Some(["domain", "serde", "poem"].map(str::to_owned).into()),
            unreachable: ["engine", "reqwest"].map(str::to_owned).into(),
        }
    );
    assert_eq!(rules["app"], Rule::default());
    assert!(parse_rules("# Architecture\n").is_err());
}

#[test]
fn a_graph_within_the_rules_passes() {
    let rules = parse_rules(SYNTHETIC).unwrap();
    let metadata = synthetic_metadata(
        &["app", "domain", "web"],
        &[
            ("app", "web", None),
            ("app", "engine", None),
            ("engine", "tokio", None),
            ("web", "domain", None),
            ("web", "poem", None),
            ("poem", "tokio", None),
            ("domain", "serde", None),
            // Not normal dependencies: not checked.
            ("domain", "tokio", Some("dev")),
            ("web", "reqwest", Some("build")),
        ],
    );
    let graph = parse_graph(&metadata).unwrap();
    assert_eq!(violations(&rules, &graph), Vec::<String>::new());
}

#[test]
fn a_forbidden_dependency_is_named_with_its_crate() {
    let rules = parse_rules(SYNTHETIC).unwrap();
    let metadata = synthetic_metadata(
        &["app", "domain", "web"],
        &[
            ("web", "domain", None),
            ("web", "engine", None),
            ("engine", "reqwest", None),
            ("domain", "serde", None),
            ("domain", "serde-tokio", None),
            ("serde-tokio", "tokio", None),
        ],
    );
    let graph = parse_graph(&metadata).unwrap();
    let found = violations(&rules, &graph);
    assert_eq!(
        found,
        vec![
            "`domain` depends on `serde-tokio`, which the `## Dependency rules` table of \
             docs/architecture.md does not allow it"
                .to_owned(),
            "`domain` must not depend on `tokio`, but does: domain -> serde-tokio -> tokio"
                .to_owned(),
            "`web` depends on `engine`, which the `## Dependency rules` table of \
             docs/architecture.md does not allow it"
                .to_owned(),
            "`web` must not depend on `engine`, but does: web -> engine".to_owned(),
            "`web` must not depend on `reqwest`, but does: web -> engine -> reqwest".to_owned(),
        ]
    );
}

#[test]
fn every_workspace_crate_needs_a_row() {
    let rules = parse_rules(SYNTHETIC).unwrap();
    let metadata = synthetic_metadata(&["app", "domain", "web", "newcomer"], &[]);
    let graph = parse_graph(&metadata).unwrap();
    let found = violations(&rules, &graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("`newcomer` has no row"), "{found:?}");
}
