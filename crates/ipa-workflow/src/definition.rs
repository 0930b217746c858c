//! The workflow definition: the steps a version runs, parsed from the JSON a client publishes.
//!
//! Parsing walks the whole document and reports *every* problem, each with the JSON pointer
//! (RFC 6901) of the offending member, rather than stopping at the first; a client fixes a
//! definition in one round trip. What parsing cannot decide alone (whether referenced agents and
//! approvers exist, whether templates compile) is checked by the publishing service through its
//! ports, and reported the same way.
//!
//! The work is bounded and linear in the document: a count past its limit (steps, approvers,
//! headers) is refused before its items are read, at most [`MAX_PROBLEMS`] problems are listed,
//! and each template learns which steps come before its own through one shared lookup rather
//! than a copy of their names.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Write as _};

use ipa_kernel::{AgentId, UserId};
use serde_json::{Map, Value};
use uuid::Uuid;

/// One thing wrong with a definition, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefinitionProblem {
    /// JSON pointer of the offending member (`""` is the whole document).
    pub pointer: String,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

/// A definition refused, with every problem found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the workflow definition has {} problem(s)", .0.len())]
pub struct InvalidDefinition(pub Vec<DefinitionProblem>);

impl InvalidDefinition {
    /// The refusal listing `problems`, of which at most [`MAX_PROBLEMS`] are kept; the rest, and
    /// `omitted` more found but never listed, are counted in one last problem (at `""`).
    pub fn listing(mut problems: Vec<DefinitionProblem>, omitted: usize) -> Self {
        let omitted = omitted + problems.len().saturating_sub(MAX_PROBLEMS);
        problems.truncate(MAX_PROBLEMS);
        if omitted > 0 {
            problems.push(DefinitionProblem {
                pointer: String::new(),
                message: format!("{omitted} more problems are not listed; fix these first"),
            });
        }
        Self(problems)
    }
}

/// The most steps a definition may have.
pub const MAX_STEPS: usize = 200;
/// The most approvers an approval step may list.
pub const MAX_APPROVERS: usize = 100;
/// The most headers a webhook step may send.
pub const MAX_HEADERS: usize = 32;
/// The most templates and conditions a definition may hold in all (strings without `{` are
/// plain text and not counted): each is compiled at publish, so their number bounds the work.
pub const MAX_TEMPLATES: usize = 2_000;
/// The most problems listed for one definition: past it a list helps nobody, and a document full
/// of mistakes would make a very large answer. One more problem says how many were left out.
pub const MAX_PROBLEMS: usize = 100;
/// The most attempts a retry policy may allow.
pub const MAX_ATTEMPTS: u64 = 10;
/// The longest timeout a step may have: 30 days.
pub const MAX_TIMEOUT_MS: u64 = 30 * 24 * 3600 * 1000;
/// The largest factor a retry's backoff may grow by (the smallest is 1: no growth).
pub const MAX_BACKOFF_FACTOR: f64 = 10.0;

/// A step's name: 1 to 64 of `a-z`, `0-9`, `_`. Templates refer to steps by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepName(String);

impl StepName {
    /// The longest step name.
    pub const MAX_CHARS: usize = 64;

    /// Accepts a valid step name.
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = (1..=Self::MAX_CHARS).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        valid.then(|| Self(raw.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The HTTP methods a webhook step may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl HttpMethod {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "GET" => Some(Self::Get),
            "POST" => Some(Self::Post),
            "PUT" => Some(Self::Put),
            "PATCH" => Some(Self::Patch),
            "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }

    /// The method's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// A text that is a template (rendered at run time against `input` and earlier steps), with the
/// pointer it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateSource {
    /// The template.
    pub source: String,
    /// Where it is in the definition.
    pub pointer: String,
}

/// Exponential backoff between attempts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Wait before the second attempt, in milliseconds.
    pub initial_ms: u64,
    /// Each wait is the previous one times this (1 to 10).
    pub factor: f64,
    /// The longest wait, in milliseconds.
    pub max_ms: u64,
}

/// How often and how patiently a step is retried.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, 1 to 10 (1: no retry).
    pub max_attempts: u8,
    /// The waits between attempts.
    pub backoff: Backoff,
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1 for the first): `initial_ms` times
    /// `factor` to the power `attempt - 1`, at most `max_ms`.
    pub fn delay_ms(&self, attempt: u32) -> u64 {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        // Float arithmetic saturates at infinity, which `min` turns back into `max_ms`; the cast
        // of a finite value no greater than `max_ms` is exact enough for milliseconds.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let delay =
            (self.initial_ms as f64 * self.factor.powi(exponent)).min(self.max_ms as f64) as u64;
        delay
    }
}

impl Default for RetryPolicy {
    /// One attempt.
    fn default() -> Self {
        Self {
            max_attempts: 1,
            backoff: Backoff {
                initial_ms: 1000,
                factor: 2.0,
                max_ms: 60_000,
            },
        }
    }
}

/// A webhook step: one HTTP call.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookStep {
    /// The method.
    pub method: HttpMethod,
    /// The URL template (`http` or `https`).
    pub url: TemplateSource,
    /// Header templates by name.
    pub headers: BTreeMap<String, TemplateSource>,
    /// The JSON body; its strings are templates.
    pub body: Option<Value>,
    /// The retry policy.
    pub retry: RetryPolicy,
}

/// An approval step: the run waits for a person's decision.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalStep {
    /// The message template shown to approvers.
    pub message: TemplateSource,
    /// Who may decide; empty means the workflow's owner or a superuser.
    pub approvers: Vec<UserId>,
}

/// An agent step: an LLM agent answers a prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentStep {
    /// The agent.
    pub agent_id: AgentId,
    /// The prompt template.
    pub prompt: TemplateSource,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    /// An HTTP call.
    Webhook(WebhookStep),
    /// A human decision.
    Approval(ApprovalStep),
    /// An LLM agent.
    Agent(AgentStep),
}

impl StepKind {
    /// The step type's label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Webhook(_) => "webhook",
            Self::Approval(_) => "approval",
            Self::Agent(_) => "agent",
        }
    }
}

/// One step of a definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Its unique name.
    pub name: StepName,
    /// A condition (an expression over `input` and earlier steps); a false one skips the step.
    pub when: Option<TemplateSource>,
    /// The step's own timeout, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// What it does.
    pub kind: StepKind,
}

/// A parsed, structurally valid definition. Keeps the document it came from, which is what is
/// stored and diffed.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowDefinition {
    steps: Vec<Step>,
    timeout_ms: Option<u64>,
    document: Value,
}

impl WorkflowDefinition {
    /// Parses a definition's structure, reporting every problem found. Templates are not
    /// compiled: [`WorkflowDefinition::check`] does that too.
    pub fn parse(document: &Value) -> Result<Self, InvalidDefinition> {
        let mut problems = Problems::default();
        let partial = parse_document(document, &mut problems);
        if problems.is_empty() {
            Ok(Self::from_partial(partial, document))
        } else {
            Err(problems.into_invalid())
        }
    }

    /// Parses a definition and compiles its templates and conditions with `templates`, finding
    /// every problem: those of the structure, and those of every template in the steps that
    /// parsed (each may refer to `input` and to steps before its own). Also lists every agent and
    /// approver the document names, so the caller can check them in the same answer.
    pub fn check(document: &Value, templates: &impl TemplateChecker) -> DefinitionCheck {
        let mut problems = Problems::default();
        let partial = parse_document(document, &mut problems);
        let mut uses = Vec::new();
        let mut agents = Vec::new();
        let mut approvers = Vec::new();
        let names = StepNames::new(
            partial
                .names
                .iter()
                .map(|name| name.as_ref().map(StepName::as_str)),
        );
        for (index, parts) in &partial.steps {
            let Some(kind) = &parts.kind else { continue };
            let earlier = names.before(*index);
            step_templates(*index, kind, parts.when.as_ref(), earlier, &mut uses);
            step_references(*index, kind, &mut agents, &mut approvers);
        }
        let compiled = uses.iter().filter(|use_| use_.is_compiled()).count();
        if compiled > MAX_TEMPLATES {
            // Counted before any is compiled: compiling is the costly part.
            problems.add(
                "/steps",
                format!(
                    "a workflow has at most {MAX_TEMPLATES} templates and conditions in all, \
                     this one has {compiled}"
                ),
            );
        } else {
            for template in &uses {
                if let Err(message) = templates.check(template) {
                    problems.add(&template.pointer, message);
                }
            }
        }
        let definition = problems
            .is_empty()
            .then(|| Self::from_partial(partial, document));
        DefinitionCheck {
            problems: problems.listed,
            omitted: problems.omitted,
            definition,
            agents,
            approvers,
        }
    }

    /// The definition of a document parsed without problems (every step's parts complete).
    fn from_partial(partial: Partial, document: &Value) -> Self {
        Self {
            steps: partial
                .steps
                .into_iter()
                .filter_map(|(_, parts)| parts.into_step())
                .collect(),
            timeout_ms: partial.timeout_ms,
            document: document.clone(),
        }
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The whole run's time limit, in milliseconds (`timeout_ms` at the top of the document):
    /// counted from the run's start, time spent paused or waiting for a decision included.
    pub fn timeout_ms(&self) -> Option<u64> {
        self.timeout_ms
    }

    /// The document as published.
    pub fn document(&self) -> &Value {
        &self.document
    }
}

/// What [`WorkflowDefinition::check`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct DefinitionCheck {
    /// The problems of structure and templates, at most [`MAX_PROBLEMS`].
    pub problems: Vec<DefinitionProblem>,
    /// How many more problems were found and not listed (see [`InvalidDefinition::listing`]).
    pub omitted: usize,
    /// The definition, when there were no problems.
    pub definition: Option<WorkflowDefinition>,
    /// Every agent named, with its pointer (from the steps that parsed).
    pub agents: Vec<(AgentId, String)>,
    /// Every approver named, with its pointer (from the steps that parsed).
    pub approvers: Vec<(UserId, String)>,
}

/// Compiles a template or condition and says whether it refers only to what it may.
pub trait TemplateChecker {
    /// `Ok` when `template` compiles and refers only to `input` and its earlier steps; otherwise
    /// a message a person can act on.
    fn check(&self, template: &TemplateCheck<'_>) -> Result<(), String>;
}

/// The valid step names of a definition, each with the position of the first step of that name,
/// so that whether a name is one of the steps before another is one lookup, whatever the number
/// of steps. Every template of a definition shares the one set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepNames<'a>(HashMap<&'a str, usize>);

impl<'a> StepNames<'a> {
    /// The names of a definition's steps in order, `None` for a step without a valid name.
    pub fn new(names: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut positions = HashMap::new();
        for (position, name) in names.into_iter().enumerate() {
            if let Some(name) = name {
                positions.entry(name).or_insert(position);
            }
        }
        Self(positions)
    }

    /// The steps before the one at `position`.
    pub fn before(&self, position: usize) -> EarlierSteps<'_> {
        EarlierSteps {
            names: self,
            position,
        }
    }
}

/// The steps before a given one, which its templates may refer to: a view of [`StepNames`],
/// cheap to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EarlierSteps<'a> {
    names: &'a StepNames<'a>,
    position: usize,
}

impl EarlierSteps<'_> {
    /// Whether a step named `name` comes before.
    pub fn contains(&self, name: &str) -> bool {
        self.names
            .0
            .get(name)
            .is_some_and(|position| *position < self.position)
    }
}

fn step_templates<'a>(
    index: usize,
    kind: &StepKind,
    when: Option<&TemplateSource>,
    earlier: EarlierSteps<'a>,
    uses: &mut Vec<TemplateCheck<'a>>,
) {
    let mut add = |kind, source: String, pointer: String| {
        uses.push(TemplateCheck {
            kind,
            source,
            pointer,
            earlier_steps: earlier,
        });
    };
    let mut template = |source: &TemplateSource| {
        add(
            TemplateKind::Template,
            source.source.clone(),
            source.pointer.clone(),
        );
    };
    match kind {
        StepKind::Webhook(webhook) => {
            template(&webhook.url);
            for header in webhook.headers.values() {
                template(header);
            }
        }
        StepKind::Approval(approval) => template(&approval.message),
        StepKind::Agent(agent) => template(&agent.prompt),
    }
    if let StepKind::Webhook(WebhookStep {
        body: Some(body), ..
    }) = kind
    {
        body_strings(
            body,
            &mut format!("/steps/{index}/request/body"),
            &mut |source, pointer| add(TemplateKind::Template, source.to_owned(), pointer),
        );
    }
    if let Some(when) = when {
        add(
            TemplateKind::Expression,
            when.source.clone(),
            when.pointer.clone(),
        );
    }
}

fn step_references(
    index: usize,
    kind: &StepKind,
    agents: &mut Vec<(AgentId, String)>,
    approvers: &mut Vec<(UserId, String)>,
) {
    match kind {
        StepKind::Agent(agent) => agents.push((agent.agent_id, format!("/steps/{index}/agent_id"))),
        StepKind::Approval(approval) => {
            for (position, id) in approval.approvers.iter().enumerate() {
                approvers.push((*id, format!("/steps/{index}/approvers/{position}")));
            }
        }
        StepKind::Webhook(_) => {}
    }
}

impl TemplateCheck<'_> {
    /// Whether this needs compiling: every condition, and a template only when it has a `{`
    /// (anything else is plain text).
    pub fn is_compiled(&self) -> bool {
        self.kind == TemplateKind::Expression || self.source.contains('{')
    }
}

/// Whether a text is a template or a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateKind {
    /// Text with `{{ ... }}` placeholders.
    Template,
    /// A condition expression (a `when`), without braces.
    Expression,
}

/// A template or condition of a definition, with what it may refer to: `input` and the steps
/// named in `earlier_steps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateCheck<'a> {
    /// Template or condition.
    pub kind: TemplateKind,
    /// The text.
    pub source: String,
    /// Its JSON pointer in the definition.
    pub pointer: String,
    /// The steps before the one it belongs to.
    pub earlier_steps: EarlierSteps<'a>,
}

/// Calls `visit` with every string of a JSON body (object members and array items, not member
/// names) and its pointer. `pointer` is one buffer extended and cut back on the way, so the
/// walk costs the size of the body, not the size times its depth.
fn body_strings(value: &Value, pointer: &mut String, visit: &mut impl FnMut(&str, String)) {
    let length = pointer.len();
    match value {
        Value::String(text) => visit(text, pointer.clone()),
        Value::Array(items) => {
            for (position, item) in items.iter().enumerate() {
                let _ = write!(pointer, "/{position}");
                body_strings(item, pointer, visit);
                pointer.truncate(length);
            }
        }
        Value::Object(members) => {
            for (name, member) in members {
                pointer.push('/');
                pointer.push_str(&escape(name));
                body_strings(member, pointer, visit);
                pointer.truncate(length);
            }
        }
        _ => {}
    }
}

/// The problems found so far: the first [`MAX_PROBLEMS`], and how many more.
#[derive(Default)]
struct Problems {
    listed: Vec<DefinitionProblem>,
    omitted: usize,
}

impl Problems {
    fn add(&mut self, pointer: &str, message: impl Into<String>) {
        if self.listed.len() < MAX_PROBLEMS {
            self.listed.push(DefinitionProblem {
                pointer: pointer.to_owned(),
                message: message.into(),
            });
        } else {
            self.omitted += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    fn into_invalid(self) -> InvalidDefinition {
        InvalidDefinition::listing(self.listed, self.omitted)
    }
}

/// Escapes a member name for a JSON pointer (RFC 6901: `~` as `~0`, `/` as `~1`).
fn escape(member: &str) -> String {
    member.replace('~', "~0").replace('/', "~1")
}

/// What parsing a document yields even when it has problems: the parts of each step that parsed,
/// by index, and every step's name where it is a valid one.
#[derive(Default)]
struct Partial {
    steps: Vec<(usize, StepParts)>,
    names: Vec<Option<StepName>>,
    timeout_ms: Option<u64>,
}

fn parse_document(document: &Value, problems: &mut Problems) -> Partial {
    let Some(object) = document.as_object() else {
        problems.add("", "a definition is a JSON object with a `steps` array");
        return Partial::default();
    };
    reject_unknown(object, "", &["steps", "timeout_ms"], problems);
    let timeout_ms = optional_duration(object, "", "timeout_ms", problems);
    let Some(steps) = object.get("steps") else {
        problems.add("/steps", "`steps` is required");
        return Partial::default();
    };
    let Some(steps) = steps.as_array() else {
        problems.add("/steps", "`steps` must be an array of steps");
        return Partial::default();
    };
    let mut parsed = Partial {
        timeout_ms,
        ..Partial::default()
    };
    if steps.is_empty() {
        problems.add("/steps", "a workflow needs at least one step");
    }
    if steps.len() > MAX_STEPS {
        // Refused on the count alone, before any step is read: reading on would make the work
        // and the answer grow with whatever a client sends.
        problems.add(
            "/steps",
            format!(
                "a workflow has at most {MAX_STEPS} steps, this one has {}",
                steps.len()
            ),
        );
        return parsed;
    }
    let mut seen = HashSet::new();
    for (index, step) in steps.iter().enumerate() {
        let pointer = format!("/steps/{index}");
        // Duplicates are reported even among steps with other problems.
        let name = step
            .get("name")
            .and_then(Value::as_str)
            .and_then(StepName::parse);
        if let Some(name) = &name
            && !seen.insert(name.clone())
        {
            problems.add(
                &format!("{pointer}/name"),
                format!("step name `{name}` is used more than once"),
            );
        }
        parsed.names.push(name);
        if let Some(parts) = parse_step(step, &pointer, problems) {
            parsed.steps.push((index, parts));
        }
    }
    parsed
}

fn reject_unknown(
    object: &Map<String, Value>,
    pointer: &str,
    known: &[&str],
    problems: &mut Problems,
) {
    for member in object.keys() {
        if !known.contains(&member.as_str()) {
            problems.add(
                &format!("{pointer}/{}", escape(member)),
                format!(
                    "unknown member `{member}`; expected one of: {}",
                    known.join(", ")
                ),
            );
        }
    }
}

/// What parsing one step yields: each part that parsed, even when another did not, so the
/// templates and references of a step with a bad name are still checked.
struct StepParts {
    name: Option<StepName>,
    when: Option<TemplateSource>,
    timeout_ms: Option<u64>,
    kind: Option<StepKind>,
}

impl StepParts {
    fn into_step(self) -> Option<Step> {
        Some(Step {
            name: self.name?,
            when: self.when,
            timeout_ms: self.timeout_ms,
            kind: self.kind?,
        })
    }
}

fn parse_step(value: &Value, pointer: &str, problems: &mut Problems) -> Option<StepParts> {
    let Some(object) = value.as_object() else {
        problems.add(pointer, "a step is a JSON object");
        return None;
    };
    let name = match object.get("name") {
        None => {
            problems.add(&format!("{pointer}/name"), "`name` is required");
            None
        }
        Some(name) => {
            let parsed = name.as_str().and_then(StepName::parse);
            if parsed.is_none() {
                problems.add(
                    &format!("{pointer}/name"),
                    "a step name has 1 to 64 characters of a-z, 0-9 and _",
                );
            }
            parsed
        }
    };
    let when = optional_text(object, pointer, "when", problems);
    let timeout_ms = optional_duration(object, pointer, "timeout_ms", problems);
    let common = ["name", "type", "when", "timeout_ms"];
    let kind = match object.get("type").map(Value::as_str) {
        None => {
            problems.add(
                &format!("{pointer}/type"),
                "`type` is required: webhook, approval or agent",
            );
            None
        }
        Some(Some("webhook")) => {
            reject_unknown(
                object,
                pointer,
                &[&common[..], &["request", "retry"]].concat(),
                problems,
            );
            parse_webhook(object, pointer, problems).map(StepKind::Webhook)
        }
        Some(Some("approval")) => {
            reject_unknown(
                object,
                pointer,
                &[&common[..], &["message", "approvers"]].concat(),
                problems,
            );
            parse_approval(object, pointer, problems).map(StepKind::Approval)
        }
        Some(Some("agent")) => {
            reject_unknown(
                object,
                pointer,
                &[&common[..], &["agent_id", "prompt"]].concat(),
                problems,
            );
            parse_agent(object, pointer, problems).map(StepKind::Agent)
        }
        Some(other) => {
            problems.add(
                &format!("{pointer}/type"),
                format!(
                    "unknown step type {}; expected webhook, approval or agent",
                    other.map_or_else(|| "(not a string)".to_owned(), |t| format!("`{t}`"))
                ),
            );
            None
        }
    };
    Some(StepParts {
        name,
        when,
        timeout_ms,
        kind,
    })
}

fn required_text(
    object: &Map<String, Value>,
    pointer: &str,
    member: &str,
    problems: &mut Problems,
) -> Option<TemplateSource> {
    let at = format!("{pointer}/{member}");
    match object.get(member) {
        None => {
            problems.add(&at, format!("`{member}` is required"));
            None
        }
        Some(Value::String(text)) if !text.trim().is_empty() => Some(TemplateSource {
            source: text.clone(),
            pointer: at,
        }),
        Some(_) => {
            problems.add(&at, format!("`{member}` must be a non-empty string"));
            None
        }
    }
}

fn optional_text(
    object: &Map<String, Value>,
    pointer: &str,
    member: &str,
    problems: &mut Problems,
) -> Option<TemplateSource> {
    match object.get(member) {
        None | Some(Value::Null) => None,
        Some(_) => required_text(object, pointer, member, problems),
    }
}

fn positive_integer(value: &Value) -> Option<u64> {
    value.as_u64().filter(|n| *n > 0)
}

fn optional_duration(
    object: &Map<String, Value>,
    pointer: &str,
    member: &str,
    problems: &mut Problems,
) -> Option<u64> {
    let value = object.get(member).filter(|value| !value.is_null())?;
    match positive_integer(value).filter(|ms| *ms <= MAX_TIMEOUT_MS) {
        Some(ms) => Some(ms),
        None => {
            problems.add(
                &format!("{pointer}/{member}"),
                format!("`{member}` must be a whole number of milliseconds from 1 to {MAX_TIMEOUT_MS} (30 days)"),
            );
            None
        }
    }
}

fn parse_webhook(
    object: &Map<String, Value>,
    pointer: &str,
    problems: &mut Problems,
) -> Option<WebhookStep> {
    let at = format!("{pointer}/request");
    let Some(request) = object.get("request") else {
        problems.add(
            &at,
            "a webhook step needs `request` {method, url, headers?, body?}",
        );
        return None;
    };
    let Some(request) = request.as_object() else {
        problems.add(
            &at,
            "`request` must be an object {method, url, headers?, body?}",
        );
        return None;
    };
    reject_unknown(
        request,
        &at,
        &["method", "url", "headers", "body"],
        problems,
    );
    let method = match request.get("method") {
        None => {
            problems.add(&format!("{at}/method"), "`method` is required");
            None
        }
        Some(method) => {
            let parsed = method.as_str().and_then(HttpMethod::parse);
            if parsed.is_none() {
                problems.add(
                    &format!("{at}/method"),
                    "`method` must be GET, POST, PUT, PATCH or DELETE",
                );
            }
            parsed
        }
    };
    let url = required_text(request, &at, "url", problems);
    if let Some(url) = &url {
        let lower = url.source.trim_start().to_ascii_lowercase();
        if !(lower.starts_with("http://")
            || lower.starts_with("https://")
            || lower.starts_with("{{"))
        {
            problems.add(&url.pointer, "`url` must be an http:// or https:// URL");
        }
    }
    let mut headers = BTreeMap::new();
    match request.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) if map.len() > MAX_HEADERS => problems.add(
            &format!("{at}/headers"),
            format!(
                "a webhook step sends at most {MAX_HEADERS} headers, this one has {}",
                map.len()
            ),
        ),
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let header_at = format!("{at}/headers/{}", escape(name));
                let valid_name = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !valid_name {
                    problems.add(
                        &header_at,
                        format!("`{name}` is not a valid HTTP header name"),
                    );
                }
                match value.as_str() {
                    Some(text) => {
                        headers.insert(
                            name.clone(),
                            TemplateSource {
                                source: text.to_owned(),
                                pointer: header_at,
                            },
                        );
                    }
                    None => problems.add(&header_at, "a header value must be a string"),
                }
            }
        }
        Some(_) => problems.add(
            &format!("{at}/headers"),
            "`headers` must be an object of strings",
        ),
    }
    let body = request.get("body").filter(|body| !body.is_null()).cloned();
    let retry = parse_retry(object, pointer, problems);
    Some(WebhookStep {
        method: method?,
        url: url?,
        headers,
        body,
        retry: retry?,
    })
}

fn parse_retry(
    object: &Map<String, Value>,
    pointer: &str,
    problems: &mut Problems,
) -> Option<RetryPolicy> {
    let at = format!("{pointer}/retry");
    let retry = match object.get("retry") {
        None | Some(Value::Null) => return Some(RetryPolicy::default()),
        Some(Value::Object(retry)) => retry,
        Some(_) => {
            problems.add(&at, "`retry` must be an object {max_attempts, backoff}");
            return None;
        }
    };
    reject_unknown(retry, &at, &["max_attempts", "backoff"], problems);
    let max_attempts = match retry.get("max_attempts") {
        None => Some(RetryPolicy::default().max_attempts),
        Some(value) => {
            let parsed = value
                .as_u64()
                .filter(|n| (1..=MAX_ATTEMPTS).contains(n))
                .and_then(|n| u8::try_from(n).ok());
            if parsed.is_none() {
                problems.add(
                    &format!("{at}/max_attempts"),
                    format!("`max_attempts` must be a whole number from 1 to {MAX_ATTEMPTS}"),
                );
            }
            parsed
        }
    };
    let defaults = RetryPolicy::default().backoff;
    let backoff = match retry.get("backoff") {
        None | Some(Value::Null) => Some(defaults),
        Some(Value::Object(backoff)) => {
            let backoff_at = format!("{at}/backoff");
            reject_unknown(
                backoff,
                &backoff_at,
                &["initial_ms", "factor", "max_ms"],
                problems,
            );
            let initial_ms = match backoff.get("initial_ms") {
                None => Some(defaults.initial_ms),
                Some(value) => {
                    let parsed = positive_integer(value).filter(|ms| *ms <= MAX_TIMEOUT_MS);
                    if parsed.is_none() {
                        problems.add(
                            &format!("{backoff_at}/initial_ms"),
                            "`initial_ms` must be a positive whole number of milliseconds",
                        );
                    }
                    parsed
                }
            };
            let factor = match backoff.get("factor") {
                None => Some(defaults.factor),
                Some(value) => {
                    let parsed = value
                        .as_f64()
                        .filter(|f| (1.0..=MAX_BACKOFF_FACTOR).contains(f));
                    if parsed.is_none() {
                        problems.add(
                            &format!("{backoff_at}/factor"),
                            "`factor` must be a number from 1 to 10",
                        );
                    }
                    parsed
                }
            };
            let max_ms = match backoff.get("max_ms") {
                None => Some(defaults.max_ms.max(initial_ms.unwrap_or(0))),
                Some(value) => {
                    let parsed = positive_integer(value).filter(|ms| *ms <= MAX_TIMEOUT_MS);
                    match (parsed, initial_ms) {
                        (Some(max), Some(initial)) if max < initial => {
                            problems.add(
                                &format!("{backoff_at}/max_ms"),
                                "`max_ms` must not be less than `initial_ms`",
                            );
                            None
                        }
                        (None, _) => {
                            problems.add(
                                &format!("{backoff_at}/max_ms"),
                                "`max_ms` must be a positive whole number of milliseconds",
                            );
                            None
                        }
                        (parsed, _) => parsed,
                    }
                }
            };
            Some(Backoff {
                initial_ms: initial_ms?,
                factor: factor?,
                max_ms: max_ms?,
            })
        }
        Some(_) => {
            problems.add(
                &format!("{at}/backoff"),
                "`backoff` must be an object {initial_ms, factor, max_ms}",
            );
            None
        }
    };
    Some(RetryPolicy {
        max_attempts: max_attempts?,
        backoff: backoff?,
    })
}

fn parse_uuid(value: &Value) -> Option<Uuid> {
    value.as_str().and_then(|text| Uuid::try_parse(text).ok())
}

fn parse_approval(
    object: &Map<String, Value>,
    pointer: &str,
    problems: &mut Problems,
) -> Option<ApprovalStep> {
    let message = required_text(object, pointer, "message", problems);
    let mut approvers = Vec::new();
    match object.get("approvers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ids)) if ids.len() > MAX_APPROVERS => problems.add(
            &format!("{pointer}/approvers"),
            format!(
                "an approval step lists at most {MAX_APPROVERS} approvers, this one lists {}",
                ids.len()
            ),
        ),
        Some(Value::Array(ids)) => {
            let mut seen = HashSet::new();
            for (position, id) in ids.iter().enumerate() {
                match parse_uuid(id) {
                    Some(uuid) if seen.insert(uuid) => {
                        approvers.push(UserId::from_uuid(uuid));
                    }
                    Some(_) => problems.add(
                        &format!("{pointer}/approvers/{position}"),
                        "this approver is listed twice",
                    ),
                    None => problems.add(
                        &format!("{pointer}/approvers/{position}"),
                        "an approver is a user id (a UUID)",
                    ),
                }
            }
        }
        Some(_) => problems.add(
            &format!("{pointer}/approvers"),
            "`approvers` must be an array of user ids",
        ),
    }
    Some(ApprovalStep {
        message: message?,
        approvers,
    })
}

fn parse_agent(
    object: &Map<String, Value>,
    pointer: &str,
    problems: &mut Problems,
) -> Option<AgentStep> {
    let at = format!("{pointer}/agent_id");
    let agent_id = match object.get("agent_id") {
        None => {
            problems.add(&at, "`agent_id` is required");
            None
        }
        Some(value) => {
            let parsed = parse_uuid(value).map(AgentId::from_uuid);
            if parsed.is_none() {
                problems.add(&at, "`agent_id` must be an agent id (a UUID)");
            }
            parsed
        }
    };
    let prompt = required_text(object, pointer, "prompt", problems);
    Some(AgentStep {
        agent_id: agent_id?,
        prompt: prompt?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn backoff_grows_by_its_factor_up_to_its_ceiling() {
        let backoff = Backoff {
            initial_ms: 100,
            factor: 2.0,
            max_ms: 1000,
        };
        let delays: Vec<u64> = (1..=6).map(|attempt| backoff.delay_ms(attempt)).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.delay_ms(u32::MAX), 1000);
    }

    #[test]
    fn a_run_may_have_a_time_limit() {
        let mut document = example();
        document["timeout_ms"] = json!(60000);
        let definition = WorkflowDefinition::parse(&document).unwrap();
        assert_eq!(definition.timeout_ms(), Some(60000));
        document["timeout_ms"] = json!(0);
        let problems = WorkflowDefinition::parse(&document).unwrap_err().0;
        assert_eq!(problems[0].pointer, "/timeout_ms");
    }

    fn example() -> Value {
        json!({
            "steps": [
                {"name": "fetch_order", "type": "webhook",
                 "request": {"method": "GET", "url": "https://erp.example/orders/{{ input.order_id }}", "headers": {}, "body": null},
                 "retry": {"max_attempts": 3, "backoff": {"initial_ms": 500, "factor": 2.0, "max_ms": 30000}},
                 "timeout_ms": 10000},
                {"name": "manager_approval", "type": "approval", "message": "Refund {{ steps.fetch_order.output.amount }}?",
                 "approvers": ["8f0c6a52-5a43-4a7c-9a53-0d6f3b1f9a10"], "timeout_ms": 86400000,
                 "when": "steps.fetch_order.output.amount > 100"},
                {"name": "draft_reply", "type": "agent", "agent_id": "0b9d1c1e-7b0f-4a53-8a43-7f1f7c7d2e11",
                 "prompt": "Write to the customer about order {{ input.order_id }}"}
            ]
        })
    }

    fn pointers(document: &Value) -> Vec<String> {
        match WorkflowDefinition::parse(document) {
            Ok(_) => Vec::new(),
            Err(InvalidDefinition(problems)) => problems
                .into_iter()
                .map(|problem| problem.pointer)
                .collect(),
        }
    }

    /// The names among those of the tests' definitions that `earlier` contains, in order.
    fn earlier_names(earlier: EarlierSteps<'_>) -> Vec<String> {
        [
            "first",
            "third",
            "fetch_order",
            "manager_approval",
            "draft_reply",
        ]
        .into_iter()
        .filter(|name| earlier.contains(name))
        .map(str::to_owned)
        .collect()
    }

    /// Accepts every template, noting each one's pointer, kind and earlier steps.
    #[derive(Default)]
    struct Recorder(std::cell::RefCell<Vec<(String, TemplateKind, Vec<String>)>>);

    impl TemplateChecker for Recorder {
        fn check(&self, template: &TemplateCheck<'_>) -> Result<(), String> {
            self.0.borrow_mut().push((
                template.pointer.clone(),
                template.kind,
                earlier_names(template.earlier_steps),
            ));
            Ok(())
        }
    }

    #[test]
    fn the_documented_example_parses() {
        let definition = WorkflowDefinition::parse(&example()).unwrap();
        let steps = definition.steps();
        assert_eq!(steps.len(), 3);
        let StepKind::Webhook(webhook) = &steps[0].kind else {
            panic!("webhook expected")
        };
        assert_eq!(webhook.method, HttpMethod::Get);
        assert_eq!(webhook.retry.max_attempts, 3);
        assert_eq!(webhook.retry.backoff.max_ms, 30_000);
        assert_eq!(steps[1].when.as_ref().unwrap().pointer, "/steps/1/when");
        assert_eq!(steps[2].kind.label(), "agent");
        let recorder = Recorder::default();
        let check = WorkflowDefinition::check(&example(), &recorder);
        assert_eq!(check.definition.as_ref(), Some(&definition));
        assert_eq!(check.agents[0].1, "/steps/2/agent_id");
        assert_eq!(check.approvers[0].1, "/steps/1/approvers/0");
        // The last step's templates may refer to both earlier steps.
        let templates = recorder.0.into_inner();
        assert_eq!(
            templates.last().unwrap().2,
            ["fetch_order", "manager_approval"]
        );
        assert_eq!(templates[2].1, TemplateKind::Expression);
        assert_eq!(templates[2].0, "/steps/1/when");
        assert_eq!(definition.document(), &example());
    }

    /// Refuses any text containing `BAD`, and says which steps it could see.
    struct Picky;

    impl TemplateChecker for Picky {
        fn check(&self, template: &TemplateCheck<'_>) -> Result<(), String> {
            if template.source.contains("BAD") {
                Err(format!(
                    "bad; earlier: {}",
                    earlier_names(template.earlier_steps).join(",")
                ))
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn checking_finds_template_and_reference_problems_beside_structural_ones() {
        let agent = "0b9d1c1e-7b0f-4a53-8a43-7f1f7c7d2e11";
        let document = json!({"steps": [
            {"name": "first", "type": "webhook",
             "request": {"method": "POST", "url": "https://x.example",
                         "body": {"a/b": ["ok", "BAD"]}}},
            {"name": "Bad Name", "type": "agent", "agent_id": agent, "prompt": "BAD",
             "when": "fine"},
            {"name": "third", "type": "approval", "message": "BAD",
             "approvers": ["3c1f1f3e-1b1a-4a53-8a43-7f1f7c7d2e11"]}
        ]});
        let check = WorkflowDefinition::check(&document, &Picky);
        let found: Vec<(&str, &str)> = check
            .problems
            .iter()
            .map(|problem| (problem.pointer.as_str(), problem.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "/steps/1/name",
                    "a step name has 1 to 64 characters of a-z, 0-9 and _"
                ),
                ("/steps/0/request/body/a~1b/1", "bad; earlier: "),
                ("/steps/1/prompt", "bad; earlier: first"),
                // The step with a bad name is not one later steps can refer to.
                ("/steps/2/message", "bad; earlier: first"),
            ]
        );
        assert_eq!(check.definition, None);
        assert_eq!(check.agents[0].1, "/steps/1/agent_id");
        assert_eq!(check.approvers[0].1, "/steps/2/approvers/0");

        let valid = json!({"steps": [{"name": "only", "type": "approval", "message": "fine"}]});
        let check = WorkflowDefinition::check(&valid, &Picky);
        assert!(check.problems.is_empty());
        assert_eq!(check.definition, WorkflowDefinition::parse(&valid).ok());
    }

    #[test]
    fn every_problem_is_reported_with_its_pointer() {
        let document = json!({
            "steps": [
                {"name": "Bad Name", "type": "webhook",
                 "request": {"method": "FETCH", "url": "ftp://x", "headers": {"X-Ok": 1}},
                 "retry": {"max_attempts": 11, "backoff": {"initial_ms": 0, "factor": 0.5, "max_ms": 0}},
                 "timeout_ms": -5},
                {"name": "wait", "type": "approval", "approvers": ["nope"]},
                {"name": "wait", "type": "agent", "agent_id": "also-nope", "prompt": ""},
                {"name": "mystery", "type": "teleport"},
                {"name": "extra", "type": "agent", "agent_id": "0b9d1c1e-7b0f-4a53-8a43-7f1f7c7d2e11",
                 "prompt": "hi", "colour": "blue"}
            ],
            "version": 2
        });
        let mut found = pointers(&document);
        found.sort();
        let mut expected = vec![
            "/version",
            "/steps/0/name",
            "/steps/0/timeout_ms",
            "/steps/0/request/method",
            "/steps/0/request/url",
            "/steps/0/request/headers/X-Ok",
            "/steps/0/retry/max_attempts",
            "/steps/0/retry/backoff/initial_ms",
            "/steps/0/retry/backoff/factor",
            "/steps/0/retry/backoff/max_ms",
            "/steps/1/message",
            "/steps/1/approvers/0",
            "/steps/2/name",
            "/steps/2/agent_id",
            "/steps/2/prompt",
            "/steps/3/type",
            "/steps/4/colour",
        ];
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn duplicate_names_point_at_the_second_use() {
        let document = json!({"steps": [
            {"name": "a", "type": "agent", "agent_id": "0b9d1c1e-7b0f-4a53-8a43-7f1f7c7d2e11", "prompt": "x"},
            {"name": "a", "type": "agent", "agent_id": "0b9d1c1e-7b0f-4a53-8a43-7f1f7c7d2e11", "prompt": "y"}
        ]});
        assert_eq!(pointers(&document), ["/steps/1/name"]);
    }

    /// A definition of `count` approval steps, each one's message using the step before.
    fn approvals(count: usize) -> Value {
        let steps: Vec<Value> = (0..count)
            .map(|index| {
                json!({"name": format!("s{index}"), "type": "approval",
                       "message": format!("After {{{{ steps.s{} }}}}?", index.saturating_sub(1))})
            })
            .collect();
        json!({ "steps": steps })
    }

    #[test]
    fn too_many_steps_are_refused_before_any_is_read() {
        let document = approvals(100_000);
        let recorder = Recorder::default();
        let check = WorkflowDefinition::check(&document, &recorder);
        assert_eq!(
            check.problems,
            [DefinitionProblem {
                pointer: "/steps".to_owned(),
                message: "a workflow has at most 200 steps, this one has 100000".to_owned(),
            }]
        );
        assert_eq!(check.omitted, 0);
        assert!(recorder.0.borrow().is_empty(), "no template was checked");
        assert!(check.agents.is_empty() && check.approvers.is_empty());
        assert_eq!(pointers(&document), ["/steps"]);
        // The limit itself is accepted, every template checked once.
        let recorder = Recorder::default();
        let check = WorkflowDefinition::check(&approvals(MAX_STEPS), &recorder);
        assert!(check.problems.is_empty(), "{:?}", check.problems);
        assert_eq!(recorder.0.borrow().len(), MAX_STEPS);
        assert_eq!(pointers(&approvals(MAX_STEPS + 1)), ["/steps"]);
    }

    #[test]
    fn too_many_templates_are_refused_before_any_is_compiled() {
        let body = |count: usize| -> Value {
            (0..count)
                .map(|index| (format!("k{index}"), json!("{{ input.a }}")))
                .collect::<serde_json::Map<String, Value>>()
                .into()
        };
        let document = |count: usize| {
            json!({"steps": [
                {"name": "call", "type": "webhook",
                 "request": {"method": "POST", "url": "https://example.com/hook", "body": body(count)}}
            ]})
        };
        // The URL is plain text: only the body's templates count.
        let recorder = Recorder::default();
        let check = WorkflowDefinition::check(&document(MAX_TEMPLATES), &recorder);
        assert!(check.problems.is_empty(), "{:?}", check.problems);
        assert_eq!(recorder.0.borrow().len(), MAX_TEMPLATES + 1);

        let recorder = Recorder::default();
        let check = WorkflowDefinition::check(&document(MAX_TEMPLATES + 1), &recorder);
        assert_eq!(
            check.problems,
            [DefinitionProblem {
                pointer: "/steps".to_owned(),
                message: "a workflow has at most 2000 templates and conditions in all, this one \
                          has 2001"
                    .to_owned(),
            }]
        );
        assert!(recorder.0.borrow().is_empty(), "no template was compiled");
    }

    #[test]
    fn the_problems_listed_are_capped_and_the_rest_counted() {
        let steps: Vec<Value> = (0..150)
            .map(|index| json!({"name": format!("s{index}"), "type": "teleport"}))
            .collect();
        let document = json!({ "steps": steps });
        let problems = WorkflowDefinition::parse(&document).unwrap_err().0;
        assert_eq!(problems.len(), MAX_PROBLEMS + 1);
        assert_eq!(problems[99].pointer, "/steps/99/type");
        let last = problems.last().unwrap();
        assert_eq!(last.pointer, "");
        assert_eq!(
            last.message,
            "50 more problems are not listed; fix these first"
        );
        let check = WorkflowDefinition::check(&document, &Picky);
        assert_eq!(check.problems.len(), MAX_PROBLEMS);
        assert_eq!(check.omitted, 50);
        // Problems added later (those of references) are capped alike.
        let more = vec![
            DefinitionProblem {
                pointer: "/steps/0/agent_id".to_owned(),
                message: "missing".to_owned(),
            };
            5
        ];
        let mut listed = check.problems;
        listed.extend(more);
        let refusal = InvalidDefinition::listing(listed, check.omitted).0;
        assert_eq!(refusal.len(), MAX_PROBLEMS + 1);
        assert_eq!(
            refusal.last().unwrap().message,
            "55 more problems are not listed; fix these first"
        );
        let few = InvalidDefinition::listing(refusal[..3].to_vec(), 0).0;
        assert_eq!(few.len(), 3);
    }

    #[test]
    fn approvers_and_headers_past_their_limits_are_one_problem_each() {
        let many: Vec<String> = (0..100_000)
            .map(|index| format!("00000000-0000-4000-8000-{index:012x}"))
            .collect();
        let headers: serde_json::Map<String, Value> = (0..10_000)
            .map(|index| (format!("X-H{index}"), json!("v")))
            .collect();
        let document = json!({"steps": [
            {"name": "ask", "type": "approval", "message": "ok?", "approvers": many},
            {"name": "call", "type": "webhook",
             "request": {"method": "GET", "url": "https://x.example", "headers": headers}}
        ]});
        let problems = WorkflowDefinition::parse(&document).unwrap_err().0;
        let found: Vec<(&str, &str)> = problems
            .iter()
            .map(|problem| (problem.pointer.as_str(), problem.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "/steps/0/approvers",
                    "an approval step lists at most 100 approvers, this one lists 100000"
                ),
                (
                    "/steps/1/request/headers",
                    "a webhook step sends at most 32 headers, this one has 10000"
                ),
            ]
        );
        let at_limit: Vec<&String> = many.iter().take(MAX_APPROVERS).collect();
        let document = json!({"steps": [
            {"name": "ask", "type": "approval", "message": "ok?", "approvers": at_limit}]});
        let definition = WorkflowDefinition::parse(&document).unwrap();
        let StepKind::Approval(approval) = &definition.steps()[0].kind else {
            panic!("approval expected")
        };
        assert_eq!(approval.approvers.len(), MAX_APPROVERS);
    }

    #[test]
    fn earlier_steps_are_those_before_the_first_use_of_a_name() {
        let names = StepNames::new([Some("a"), None, Some("b"), Some("a")]);
        assert!(!names.before(0).contains("a"));
        assert!(names.before(1).contains("a"));
        assert!(!names.before(2).contains("b"));
        assert!(names.before(3).contains("b"));
        assert!(!names.before(4).contains("c"));
    }

    #[test]
    fn body_pointers_follow_nesting() {
        let document = json!({"steps": [{"name": "call", "type": "webhook",
            "request": {"method": "POST", "url": "https://x.example",
                        "body": {"a": [{"b/c": "BAD"}, "fine", ["BAD"]], "d": "BAD"}}}]});
        let check = WorkflowDefinition::check(&document, &Picky);
        let found: Vec<&str> = check
            .problems
            .iter()
            .map(|problem| problem.pointer.as_str())
            .collect();
        assert_eq!(
            found,
            [
                "/steps/0/request/body/a/0/b~1c",
                "/steps/0/request/body/a/2/0",
                "/steps/0/request/body/d"
            ]
        );
    }

    #[test]
    fn the_document_must_have_steps() {
        assert_eq!(pointers(&json!([])), [""]);
        assert_eq!(pointers(&json!({})), ["/steps"]);
        assert_eq!(pointers(&json!({"steps": []})), ["/steps"]);
        assert_eq!(pointers(&json!({"steps": {}})), ["/steps"]);
        assert_eq!(pointers(&json!({"steps": [1]})), ["/steps/0"]);
        assert_eq!(
            pointers(&json!({"steps": [{"name": "x"}]})),
            ["/steps/0/type"]
        );
    }

    #[test]
    fn pointers_escape_member_names() {
        let document = json!({"steps": [{"name": "a", "type": "agent",
            "agent_id": "0b9d1c1e-7b0f-4a53-8a43-7f1f7c7d2e11", "prompt": "x", "a/b~c": 1}]});
        assert_eq!(pointers(&document), ["/steps/0/a~1b~0c"]);
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z_ /~]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("steps".to_owned()),
                        Just("name".to_owned()),
                        Just("type".to_owned()),
                        Just("request".to_owned()),
                        "[a-z_/~]{1,8}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// The member a pointer names exists, or at least its parent does (a missing required member).
    fn resolves(document: &Value, pointer: &str) -> bool {
        if document.pointer(pointer).is_some() {
            return true;
        }
        match pointer.rsplit_once('/') {
            Some((parent, _)) => document.pointer(parent).is_some(),
            None => false,
        }
    }

    proptest! {
        #[test]
        fn any_document_is_parsed_or_refused_with_pointers_into_it(document in arbitrary_json()) {
            if let Err(InvalidDefinition(problems)) = WorkflowDefinition::parse(&document) {
                prop_assert!(!problems.is_empty());
                for problem in problems {
                    prop_assert!(resolves(&document, &problem.pointer), "{} in {}", problem.pointer, document);
                    prop_assert!(!problem.message.is_empty());
                }
            }
        }

        #[test]
        fn valid_steps_with_unique_names_always_parse(names in prop::collection::btree_set("[a-z0-9_]{1,64}", 1..20)) {
            let steps: Vec<Value> = names.iter().map(|name| json!({
                "name": name, "type": "approval", "message": "Go ahead?"
            })).collect();
            let definition = WorkflowDefinition::parse(&json!({"steps": steps})).unwrap();
            prop_assert_eq!(definition.steps().len(), names.len());
        }

        #[test]
        fn invalid_step_names_are_pointed_at(name in "[^a-z0-9_]{1,8}|[a-z]{65,70}") {
            let document = json!({"steps": [{"name": name, "type": "approval", "message": "ok?"}]});
            prop_assert_eq!(pointers(&document), vec!["/steps/0/name".to_owned()]);
        }

        #[test]
        fn attempts_outside_one_to_ten_are_refused(attempts in prop_oneof![Just(0u64), 11u64..1000]) {
            let document = json!({"steps": [{"name": "call", "type": "webhook",
                "request": {"method": "POST", "url": "https://example.org"},
                "retry": {"max_attempts": attempts}}]});
            prop_assert_eq!(pointers(&document), vec!["/steps/0/retry/max_attempts".to_owned()]);
        }
    }
}
