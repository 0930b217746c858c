//! Are the checks of client documents linear in the document's size, and do they stop at their
//! limits? Builds workflow definitions of 1,000, 10,000 and 100,000 small steps and group agent
//! configurations of 1,000, 10,000 and 100,000 participants (all past their limits, as a hostile
//! client would send them), then times what the API does with such a body: parse the JSON text,
//! then run the domain's check (the definition check with the real template engine, the agent
//! configuration parser). Prints, for each, the time and the growth of the heap's peak over what
//! was allocated before the check began (the JSON text itself excluded). Linear checks show both
//! growing at most ten-fold per row; checks that stop at their limit barely grow at all. A third
//! document, one webhook step whose body holds 1,000 to 100,000 templates, shows the cost of
//! compiling templates up to the 2,000 a definition may hold, and of refusing more.
//!
//! Run with `cargo bench -p tests --bench document_checks` (or `just bench-checks`); set
//! `DOCUMENT_CHECKS_SIZES` (e.g. `1000,10000`) to choose the sizes, and `DOCUMENT_CHECKS_KINDS`
//! (`definition`, `body`, `group`, or all of them, the default) to choose the documents.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use ipa_agent::{AgentConfiguration, AgentType, SecretInput};
use ipa_template::Templates;
use ipa_workflow::WorkflowDefinition;
use peak_alloc::PeakAlloc;
use serde_json::Value;

/// The system allocator, counting the bytes in use and their peak.
#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// What one check cost.
struct Cost {
    time: Duration,
    peak_growth: usize,
    problems: usize,
}

/// Runs `check` on `text`, measuring the time and the peak growth of the heap from the moment it
/// starts; `check` answers how many problems it found.
fn measure(text: &str, check: impl Fn(&str) -> usize) -> Cost {
    // One unmeasured run first, so that lazily built state (the template engine's, the
    // allocator's) does not count.
    check(text);
    let base = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    let started = Instant::now();
    let problems = check(text);
    let time = started.elapsed();
    let peak_growth = ALLOCATOR.peak_usage().saturating_sub(base);
    Cost {
        time,
        peak_growth,
        problems,
    }
}

/// A definition of `steps` approval steps, each one's message using the step before it.
fn definition(steps: usize) -> String {
    let steps: Vec<Value> = (0..steps)
        .map(|index| {
            let message = if index == 0 {
                "Go ahead with {{ input.order }}?".to_owned()
            } else {
                format!("Go ahead after {{{{ steps.s{}.output }}}}?", index - 1)
            };
            serde_json::json!({"name": format!("s{index}"), "type": "approval", "message": message})
        })
        .collect();
    serde_json::json!({ "steps": steps }).to_string()
}

/// A definition of one webhook step whose JSON body holds `strings` templates (within the step
/// limit, each one compiled).
fn webhook_body(strings: usize) -> String {
    let body: Vec<String> = (0..strings)
        .map(|index| format!("{{{{ input.a{index} }}}}"))
        .collect();
    serde_json::json!({"steps": [{"name": "call", "type": "webhook",
        "request": {"method": "POST", "url": "https://example.org/hook", "body": body}}]})
    .to_string()
}

/// A group agent's configuration with `participants` distinct agent ids.
fn group(participants: usize) -> String {
    let ids: Vec<String> = (0..participants)
        .map(|index| format!("00000000-0000-4000-8000-{index:012x}"))
        .collect();
    serde_json::json!({
        "participants": ids,
        "provider": {"type": "openai", "api_key": {"env": "OPENAI_API_KEY"}}
    })
    .to_string()
}

fn check_definition(templates: &Templates, text: &str) -> usize {
    let document: Value = serde_json::from_str(text).unwrap();
    WorkflowDefinition::check(&document, templates)
        .problems
        .len()
}

fn check_group(text: &str) -> usize {
    let document: Value = serde_json::from_str(text).unwrap();
    match AgentConfiguration::parse(AgentType::Autogen, &document, &mut SecretInput::from_json) {
        Ok(_) => 0,
        Err(problems) => problems.len(),
    }
}

fn row(what: &str, count: usize, body: usize, cost: &Cost) {
    println!(
        "| {what:<11} | {count:>7} | {:>10.1} KiB | {:>10.2} ms | {:>10.1} KiB | {:>8} |",
        body as f64 / 1024.0,
        cost.time.as_secs_f64() * 1e3,
        cost.peak_growth as f64 / 1024.0,
        cost.problems,
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::var("DOCUMENT_CHECKS_SIZES")
        .ok()
        .map(|sizes| {
            sizes
                .split(',')
                .map(|size| size.trim().parse().expect("DOCUMENT_CHECKS_SIZES: numbers"))
                .collect()
        })
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    let kinds = std::env::var("DOCUMENT_CHECKS_KINDS").unwrap_or_default();
    let wanted = |kind: &str| kinds.is_empty() || kinds.split(',').any(|k| k.trim() == kind);
    let templates = Templates::new();
    println!("document checks (JSON parse + domain check; peak = heap growth while checking):");
    println!(
        "| {:<11} | {:>7} | {:>14} | {:>13} | {:>14} | {:>8} |",
        "document", "items", "body", "time", "peak memory", "problems"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|",
        "-".repeat(13),
        "-".repeat(9),
        "-".repeat(16),
        "-".repeat(15),
        "-".repeat(16),
        "-".repeat(10)
    );
    for &steps in sizes.iter().filter(|_| wanted("definition")) {
        let text = definition(steps);
        let cost = measure(&text, |text| check_definition(&templates, text));
        row("definition", steps, text.len(), &cost);
    }
    for &strings in sizes.iter().filter(|_| wanted("body")) {
        let text = webhook_body(strings);
        let cost = measure(&text, |text| check_definition(&templates, text));
        row("body", strings, text.len(), &cost);
    }
    for &participants in sizes.iter().filter(|_| wanted("group")) {
        let text = group(participants);
        let cost = measure(&text, check_group);
        row("group agent", participants, text.len(), &cost);
    }
}
