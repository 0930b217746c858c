//! Webhook steps: the step's request rendered from its templates ([`render_request`]) when the
//! step is opened, then called through the engine's [`crate::outbound::OutboundClient`] under the
//! step's [`RetryPolicy`] ([`WebhookAttempts`]: each attempt a log line, waits and calls
//! interrupted at once by a cancel, a lost lease or a shutdown).

use std::time::{Duration, Instant};

use ipa_agent::AgentRepository;
use ipa_execution::{
    ClaimedRun, ExecutionStep, LogLevel, NewLogLine, RunChange, RunJournal, StepAction, StepChange,
    StepStatus, step_event,
};
use ipa_template::Templates;
use ipa_workflow::definition::{Step, WebhookStep};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::{Completion, Engine, Interrupt, Lost, Opening, Then, start_and_fail, wait_interrupt};
use crate::outbound::{OutboundFailure, OutboundRequest, OutboundResponse};
use crate::retry::{Attempts, RetryPolicy};

impl<J: RunJournal, A: AgentRepository> Engine<J, A> {
    /// Starts a webhook step, its request rendered.
    pub(super) fn open_webhook(
        &self,
        run: &ClaimedRun,
        index: usize,
        webhook: &WebhookStep,
        context: &Value,
        mut logs: Vec<NewLogLine>,
    ) -> Opening {
        let row = &run.steps[index];
        // The same key on every attempt, after a lost worker too: receivers can de-duplicate.
        let key = format!("{}:{}", run.lease.execution_id.as_uuid(), row.id.as_uuid());
        let request = match render_request(webhook, &self.templates, context, &key) {
            Ok(request) => request,
            Err(error) => return start_and_fail(index, row, error, logs),
        };
        // Header values may carry credentials: only their names are kept.
        let header_names: Vec<&str> = request
            .headers
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        let input = json!({
            "method": request.method.as_str(),
            "url": request.url,
            "headers": header_names,
            "body": request.body,
            "idempotency_key": key,
        });
        let max_attempts = RetryPolicy::of_step(&webhook.retry).max_attempts;
        let first_attempt = u32::try_from(row.retry_count).unwrap_or(0) + 1;
        logs.push(step_event(
            row,
            StepStatus::Running,
            format!("Step '{}' started", row.name),
            json!({"method": request.method.as_str(), "url": request.url, "max_attempts": max_attempts}),
        ));
        let started = StepChange {
            input: Some(input),
            ..StepChange::new(row.id, StepAction::Start, first_attempt)
        };
        Opening {
            change: RunChange::step(started, logs),
            then: Then::Webhook {
                index,
                request,
                first_attempt,
                max_attempts,
            },
        }
    }

    /// Calls a started webhook step, with its retries; answers its completion, unwritten, or
    /// `None` once it has written how the step failed or was interrupted.
    pub(super) async fn call_webhook(
        &self,
        turn: WebhookTurn<'_>,
    ) -> Result<Option<Completion>, Lost> {
        let step_timeout = turn
            .step
            .timeout_ms
            .map_or(self.options.default_step_timeout, Duration::from_millis);
        // A retried run gets the step's whole policy again; the recorded count goes on from the
        // attempts already made.
        RetryPolicy::of_step(&turn.webhook.retry)
            .run(WebhookAttempts {
                engine: self,
                turn,
                step_timeout,
                logs: Vec::new(),
                elapsed: 0,
                run_deadline_hit: false,
            })
            .await
    }
}

/// The attempts of a started webhook step: each one a log line, the lines so far committed
/// before each wait, and the call or the wait interrupted at once by a cancel, a lost lease or
/// a shutdown.
struct WebhookAttempts<'a, J, A> {
    engine: &'a Engine<J, A>,
    turn: WebhookTurn<'a>,
    /// An attempt's time limit when the run's leaves more.
    step_timeout: Duration,
    /// Log lines not yet committed.
    logs: Vec<NewLogLine>,
    /// How long the last attempt took, in milliseconds.
    elapsed: u64,
    /// Whether the last attempt's time limit was what was left of the run's.
    run_deadline_hit: bool,
}

impl<J: RunJournal, A: AgentRepository> WebhookAttempts<'_, J, A> {
    /// Whether `failure` is the run running out of time, which no retry can help.
    fn out_of_time(&self, failure: &OutboundFailure) -> bool {
        self.run_deadline_hit && matches!(failure, OutboundFailure::TimedOut(_))
    }

    /// The context of failed attempt `attempt`'s log line.
    fn detail(&self, attempt: u32, failure: &OutboundFailure) -> Value {
        let mut detail =
            json!({"attempt": attempt, "duration_ms": self.elapsed, "error": failure.to_string()});
        if let OutboundFailure::Status(response) = failure {
            detail["status_code"] = json!(response.status);
            // One line per attempt: each quotes the answer clipped; the failed step's output
            // keeps the last one whole.
            detail["response"] = crate::clip_value(&response.body);
        }
        detail
    }

    /// Records that `why` interrupted attempt `attempt`, `elapsed` ms into it.
    async fn interrupted(
        &self,
        why: Interrupt,
        attempt: u32,
        elapsed: u64,
    ) -> Result<Option<Completion>, Lost> {
        let WebhookTurn { run, row, .. } = self.turn;
        self.engine
            .interrupted(run, row, why, attempt, elapsed)
            .await?;
        Ok(None)
    }
}

impl<J: RunJournal, A: AgentRepository> Attempts for WebhookAttempts<'_, J, A> {
    type Success = OutboundResponse;
    type Outcome = Result<Option<Completion>, Lost>;

    async fn attempt(
        &mut self,
        attempt: u32,
    ) -> Result<Result<OutboundResponse, OutboundFailure>, Self::Outcome> {
        let mut timeout = self.step_timeout;
        self.run_deadline_hit = false;
        if let Some((deadline, _)) = self.turn.deadline {
            let left = deadline - OffsetDateTime::now_utc();
            let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
            if left < timeout {
                timeout = left;
                self.run_deadline_hit = true;
            }
        }
        let began = Instant::now();
        let result = tokio::select! {
            result = self.engine.client.call(&self.turn.request, timeout) => Ok(result),
            why = wait_interrupt(self.turn.interrupts.clone()) => Err(why),
        };
        self.elapsed = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(result) => Ok(result),
            Err(why) => Err(self.interrupted(why, attempt, self.elapsed).await),
        }
    }

    fn may_retry(&self, failure: &OutboundFailure, _wait: Duration) -> bool {
        // Out of the run's time, nothing is retried, whatever the step's policy.
        !self.out_of_time(failure)
    }

    async fn succeeded(&mut self, attempt: u32, response: OutboundResponse) -> Self::Outcome {
        let WebhookTurn {
            row, first_attempt, ..
        } = self.turn;
        let mut logs = std::mem::take(&mut self.logs);
        logs.push(NewLogLine::step(
            row.id,
            LogLevel::Info,
            format!("Attempt {attempt} succeeded: HTTP {}", response.status),
            json!({"attempt": attempt, "status_code": response.status, "duration_ms": self.elapsed, "bytes": response.bytes, "truncated": response.truncated}),
        ));
        logs.push(step_event(
            row,
            StepStatus::Completed,
            format!("Step '{}' completed", row.name),
            json!({"attempts": attempt}),
        ));
        let completed = StepChange {
            output: Some(response.body.clone()),
            ..StepChange::new(row.id, StepAction::Complete, first_attempt + attempt - 1)
        };
        Ok(Some(Completion {
            output: response.body,
            change: RunChange::step(completed, logs),
        }))
    }

    async fn retrying(
        &mut self,
        attempt: u32,
        failure: OutboundFailure,
        wait: Duration,
    ) -> Result<(), Self::Outcome> {
        let WebhookTurn {
            run,
            row,
            max_attempts,
            interrupts,
            ..
        } = self.turn;
        let delay = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let detail = self.detail(attempt, &failure);
        self.logs.push(NewLogLine::step(
            row.id,
            LogLevel::Warning,
            format!(
                "Attempt {attempt} of {max_attempts} failed: {failure}; retrying in {delay} ms"
            ),
            detail,
        ));
        match self
            .engine
            .commit(run, RunChange::logs(std::mem::take(&mut self.logs)))
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(Ok(None)),
            Err(lost) => return Err(Err(lost)),
        }
        let slept = tokio::select! {
            () = tokio::time::sleep(wait) => None,
            why = wait_interrupt(interrupts.clone()) => Some(why),
        };
        match slept {
            Some(why) => Err(self.interrupted(why, attempt, 0).await),
            None => Ok(()),
        }
    }

    async fn gave_up(&mut self, attempt: u32, failure: OutboundFailure) -> Self::Outcome {
        let WebhookTurn {
            run,
            step,
            row,
            first_attempt,
            max_attempts,
            deadline,
            ..
        } = self.turn;
        let out_of_time = self.out_of_time(&failure);
        let mut logs = std::mem::take(&mut self.logs);
        logs.push(NewLogLine::step(
            row.id,
            LogLevel::Error,
            format!("Attempt {attempt} of {max_attempts} failed: {failure}"),
            self.detail(attempt, &failure),
        ));
        let message = if out_of_time {
            let ms = deadline.map_or(0, |(_, ms)| ms);
            format!("the run exceeded its time limit of {ms} ms")
        } else if attempt > 1 {
            format!("{failure} (after {attempt} attempts)")
        } else {
            failure.to_string()
        };
        let failed = StepChange {
            output: match &failure {
                OutboundFailure::Status(response) => Some(response.body.clone()),
                _ => None,
            },
            error: Some(message.clone()),
            ..StepChange::new(row.id, StepAction::Fail, first_attempt + attempt - 1)
        };
        let error = format!("step '{}' failed: {message}", step.name.as_str());
        self.engine.fail_run(run, Some(failed), error, logs).await?;
        Ok(None)
    }
}

/// A started webhook step to call.
pub(super) struct WebhookTurn<'a> {
    pub(super) run: &'a ClaimedRun,
    pub(super) step: &'a Step,
    pub(super) row: &'a ExecutionStep,
    pub(super) webhook: &'a WebhookStep,
    pub(super) request: OutboundRequest,
    pub(super) first_attempt: u32,
    pub(super) max_attempts: u32,
    pub(super) deadline: Option<(OffsetDateTime, u64)>,
    pub(super) interrupts: &'a watch::Receiver<Option<Interrupt>>,
}

/// Renders a webhook step's URL, headers and body against `context` (`{"input": ...,
/// "steps": {...}}`).
///
/// The body is JSON whose *strings* are templates, at any depth in arrays and objects; member
/// names are not templated, and other values (numbers, booleans, null) are sent as they are.
///
/// On failure, the message names the JSON pointer of the template that failed: the definition's
/// pointer for the URL and headers, and for the body (whose pointer in the definition is not
/// known here) the path inside it, as in `/body/items/0/name`.
pub fn render_request(
    step: &WebhookStep,
    templates: &Templates,
    context: &Value,
    idempotency_key: &str,
) -> Result<OutboundRequest, String> {
    let render = |source: &str, pointer: &str| {
        templates
            .render(source, context)
            .map_err(|error| format!("{pointer}: {}", error.message()))
    };
    let url = render(&step.url.source, &step.url.pointer)?;
    let headers = step
        .headers
        .iter()
        .map(|(name, value)| Ok((name.clone(), render(&value.source, &value.pointer)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let body = step
        .body
        .as_ref()
        .map(|body| render_body(body, "/body", &render))
        .transpose()?;
    Ok(OutboundRequest {
        method: step.method,
        url,
        headers,
        body,
        idempotency_key: Some(idempotency_key.to_owned()),
    })
}

/// `value` with every string rendered as a template; `pointer` is where `value` is in the body.
fn render_body(
    value: &Value,
    pointer: &str,
    render: &impl Fn(&str, &str) -> Result<String, String>,
) -> Result<Value, String> {
    Ok(match value {
        Value::String(source) => Value::String(render(source, pointer)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(position, item)| render_body(item, &format!("{pointer}/{position}"), render))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(name, member)| {
                    let pointer = format!("{pointer}/{}", escape(name));
                    Ok((name.clone(), render_body(member, &pointer, render)?))
                })
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Escapes a member name for a JSON pointer (RFC 6901: `~` as `~0`, `/` as `~1`).
fn escape(member: &str) -> String {
    member.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use ipa_workflow::definition::{HttpMethod, RetryPolicy, TemplateSource};

    use super::*;

    pub(crate) fn source(source: &str, pointer: &str) -> TemplateSource {
        TemplateSource {
            source: source.to_owned(),
            pointer: pointer.to_owned(),
        }
    }

    /// A POST webhook step to `url` with these headers and body, as a definition parses it.
    pub(crate) fn step(url: &str, headers: &[(&str, &str)], body: Option<Value>) -> WebhookStep {
        WebhookStep {
            method: HttpMethod::Post,
            url: source(url, "/steps/0/request/url"),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    let pointer = format!("/steps/0/request/headers/{name}");
                    ((*name).to_owned(), source(value, &pointer))
                })
                .collect::<BTreeMap<_, _>>(),
            body,
            retry: RetryPolicy::default(),
        }
    }

    /// A run's template context: an input with a base URL and a secret, and one earlier step.
    pub(crate) fn context(base: &str) -> Value {
        json!({
            "input": {"base": base, "token": "s3cret", "customer": {"name": "Ada"}, "qty": 3},
            "steps": {"lookup": {"output": {"id": 42}}}
        })
    }

    #[test]
    fn a_template_error_names_its_pointer() {
        let templates = Templates::new();
        let context = context("http://localhost");

        let error = render_request(
            &step("{{ input.missing }}", &[], None),
            &templates,
            &context,
            "k",
        )
        .unwrap_err();
        assert!(
            error.starts_with("/steps/0/request/url: the template could not be rendered"),
            "{error}"
        );

        let error = render_request(
            &step("{{ input.base }}", &[("X-Token", "{{ input.nope }}")], None),
            &templates,
            &context,
            "k",
        )
        .unwrap_err();
        assert!(
            error.starts_with("/steps/0/request/headers/X-Token: "),
            "{error}"
        );

        let body = json!({"items": [{"name": "{{ input.customer.nickname }}"}], "a/b": "{{ x }}"});
        let error = render_request(
            &step("{{ input.base }}", &[], Some(body)),
            &templates,
            &context,
            "k",
        )
        .unwrap_err();
        // serde_json's maps are sorted: `a/b` comes first, escaped.
        assert!(error.starts_with("/body/a~1b: "), "{error}");

        let body = json!({"items": [{"name": "{{ input.customer.nickname }}"}]});
        let error = render_request(
            &step("{{ input.base }}", &[], Some(body)),
            &templates,
            &context,
            "k",
        )
        .unwrap_err();
        assert!(
            error.starts_with("/body/items/0/name: the template could not be rendered"),
            "{error}"
        );
    }
}
