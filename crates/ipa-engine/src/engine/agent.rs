//! Agent steps, as the worker loop sees them: opening one renders its prompt; running it hands
//! the conversation to [`crate::agent::AgentRunner`], commits the log lines it records as they
//! come, and races it against the step's and the run's time limits and the run's interrupts.

use std::time::{Duration, Instant};

use ipa_agent::AgentRepository;
use ipa_execution::{
    ClaimedRun, ExecutionStep, NewLogLine, RunChange, RunJournal, StepAction, StepChange,
    StepStatus, step_event,
};
use ipa_workflow::definition::{AgentStep, Step};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use super::{
    Completion, Engine, Interrupt, Lost, Opening, Progress, Then, start_and_fail, wait_interrupt,
};
use crate::agent::{Recorder, StepCall};

impl<J: RunJournal, A: AgentRepository> Engine<J, A> {
    /// Starts an agent step, its prompt rendered.
    pub(super) fn open_agent(
        &self,
        index: usize,
        row: &ExecutionStep,
        agent: &AgentStep,
        context: &Value,
        mut logs: Vec<NewLogLine>,
    ) -> Opening {
        let prompt = match self.templates.render(&agent.prompt.source, context) {
            Ok(prompt) => prompt,
            Err(error) => {
                let message = format!("its prompt could not be rendered: {}", error.message());
                return start_and_fail(index, row, message, logs);
            }
        };
        let attempt = u32::try_from(row.retry_count).unwrap_or(0) + 1;
        let agent_id = agent.agent_id.as_uuid();
        logs.push(step_event(
            row,
            StepStatus::Running,
            format!("Step '{}' started", row.name),
            json!({"agent_id": agent_id}),
        ));
        let started = StepChange {
            input: Some(json!({"agent_id": agent_id, "prompt": prompt})),
            ..StepChange::new(row.id, StepAction::Start, attempt)
        };
        Opening {
            change: RunChange::step(started, logs),
            then: Then::Agent {
                index,
                prompt,
                attempt,
            },
        }
    }

    /// Asks a started agent step's agent, committing its calls' log lines as they come; the
    /// step's `timeout_ms` bounds the whole conversation. Answers the step's completion,
    /// unwritten, or `None` once it has written how the step failed or was interrupted.
    pub(super) async fn ask_agent(&self, turn: AgentTurn<'_>) -> Result<Option<Completion>, Lost> {
        let AgentTurn {
            run,
            step,
            row,
            agent,
            prompt,
            attempt,
            progress,
            interrupts,
        } = turn;
        let deadline = progress.deadline;
        let context = json!({"input": run.input, "steps": progress.steps});
        let context = &context;
        // The step's own limit and the run's, whichever comes first.
        let now = Instant::now();
        let step_limit = step.timeout_ms.map(|ms| {
            (
                now + Duration::from_millis(ms),
                format!("the step exceeded its time limit of {ms} ms"),
            )
        });
        let run_limit = deadline.map(|(at, ms)| {
            let left = Duration::try_from(at - OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO);
            (
                now + left,
                format!("the run exceeded its time limit of {ms} ms"),
            )
        });
        let limit = match (step_limit, run_limit) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        let (sender, mut lines) = mpsc::unbounded_channel();
        let recorder = Recorder::new(row.id, sender);
        let call = StepCall {
            execution_id: run.lease.execution_id,
            step_name: &row.name,
            context,
            limit: limit.as_ref().map(|(at, _)| *at),
            recorder: &recorder,
        };
        let conversation = self.agents.run(agent.agent_id, prompt, &call);
        tokio::pin!(conversation);
        let expired = async {
            match &limit {
                Some((at, _)) => tokio::time::sleep_until((*at).into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        let began = Instant::now();
        let result = loop {
            tokio::select! {
                result = &mut conversation => break result,
                Some(line) = lines.recv() => {
                    let mut batch = vec![line];
                    while let Ok(line) = lines.try_recv() {
                        batch.push(line);
                    }
                    if !self.commit(run, RunChange::logs(batch)).await? {
                        return Ok(None);
                    }
                }
                () = &mut expired => {
                    break Err(limit.as_ref().map_or_else(String::new, |(_, why)| why.clone()));
                }
                why = wait_interrupt(interrupts.clone()) => {
                    let elapsed = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
                    self.interrupted(run, row, why, 1, elapsed).await?;
                    return Ok(None);
                }
            }
        };
        let mut logs = Vec::new();
        while let Ok(line) = lines.try_recv() {
            logs.push(line);
        }
        match result {
            Ok(output) => {
                logs.push(step_event(
                    row,
                    StepStatus::Completed,
                    format!("Step '{}' completed", row.name),
                    json!({"usage": output.get("usage")}),
                ));
                let completed = StepChange {
                    output: Some(output.clone()),
                    ..StepChange::new(row.id, StepAction::Complete, attempt)
                };
                Ok(Some(Completion {
                    output,
                    change: RunChange::step(completed, logs),
                }))
            }
            Err(message) => {
                let failed = StepChange {
                    error: Some(message.clone()),
                    ..StepChange::new(row.id, StepAction::Fail, attempt)
                };
                let error = format!("step '{}' failed: {message}", step.name.as_str());
                self.fail_run(run, Some(failed), error, logs).await?;
                Ok(None)
            }
        }
    }
}

/// A started agent step to ask.
pub(super) struct AgentTurn<'a> {
    pub(super) run: &'a ClaimedRun,
    pub(super) step: &'a Step,
    pub(super) row: &'a ExecutionStep,
    pub(super) agent: &'a AgentStep,
    pub(super) prompt: String,
    pub(super) attempt: u32,
    pub(super) progress: &'a Progress,
    pub(super) interrupts: &'a watch::Receiver<Option<Interrupt>>,
}
