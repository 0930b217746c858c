//! In-memory fakes of the workflow context's ports, for unit tests of the service's rules in
//! milliseconds, without a database.
//!
//! They keep the contracts the ports document and PostgreSQL enforces: a workflow is visible to
//! its owner and to superusers only, and one the actor may not see behaves as missing; changes go
//! through [`Workflow::apply`] under one lock, as the store applies them under a row lock;
//! version numbers are the highest plus one; lists are newest first in keyset pages. They do not
//! imitate what only the schema tests can show (row level security itself, concurrency between
//! processes, SQL plans).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ipa_kernel::{
    Actor, AgentId, Page, PageRequest, StorageError, UserId, WorkflowId, WorkflowVersionId,
};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::WorkflowStatus;
use crate::definition::{TemplateCheck, TemplateChecker};
use crate::error::{DeleteWorkflowError, PublishError, UpdateWorkflowError, VersionError};
use crate::ports::{AgentAvailability, ReferenceStates, WorkflowRepository};
use crate::version::{NewVersion, VersionNumber, VersionRef, VersionSummary, WorkflowVersion};
use crate::workflow::{NewWorkflow, Workflow, WorkflowChanges, WorkflowFilter};

/// Accepts every template except those containing `BAD`, which it refuses with a message naming
/// the template's pointer: enough to tell that the service asked and reported the answer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FakeTemplates;

impl TemplateChecker for FakeTemplates {
    fn check(&self, template: &TemplateCheck<'_>) -> Result<(), String> {
        if template.source.contains("BAD") {
            Err(format!("refused template at {}", template.pointer))
        } else {
            Ok(())
        }
    }
}

/// Everything the fake repository holds.
#[derive(Debug, Default)]
struct State {
    workflows: Vec<Workflow>,
    versions: Vec<WorkflowVersion>,
    agents: HashMap<AgentId, AgentAvailability>,
    users: HashMap<UserId, bool>,
    with_executions: HashSet<WorkflowId>,
    /// Calls to [`WorkflowRepository::references`] and [`WorkflowRepository::publish`], so a
    /// test can tell that a refusal came before the storage was asked.
    reference_lookups: usize,
    publishes: usize,
    /// The clock: every row is created one second after the previous, so lists have an order.
    now: Option<OffsetDateTime>,
}

impl State {
    fn tick(&mut self) -> OffsetDateTime {
        let next = self
            .now
            .map_or(OffsetDateTime::UNIX_EPOCH, |now| now + Duration::seconds(1));
        self.now = Some(next);
        next
    }

    fn visible(&self, actor: &Actor, id: WorkflowId) -> Option<usize> {
        self.workflows
            .iter()
            .position(|workflow| workflow.id == id && may_see(actor, workflow))
    }
}

fn may_see(actor: &Actor, workflow: &Workflow) -> bool {
    actor.is_superuser() || actor.user_id() == Some(workflow.owner)
}

/// `container` holds `contained` as PostgreSQL's `jsonb @>` says: objects by key, arrays by
/// element, scalars by equality.
fn json_contains(container: &Value, contained: &Value) -> bool {
    match (container, contained) {
        (Value::Object(outer), Value::Object(inner)) => inner.iter().all(|(key, value)| {
            outer
                .get(key)
                .is_some_and(|found| json_contains(found, value))
        }),
        (Value::Array(outer), Value::Array(inner)) => inner
            .iter()
            .all(|value| outer.iter().any(|found| json_contains(found, value))),
        _ => container == contained,
    }
}

fn matches(workflow: &Workflow, filter: &WorkflowFilter) -> bool {
    filter.status.is_none_or(|status| workflow.status == status)
        && filter
            .tags
            .as_slice()
            .iter()
            .all(|tag| workflow.tags.as_slice().contains(tag))
        && filter
            .metadata
            .as_ref()
            .is_none_or(|metadata| json_contains(workflow.metadata.as_value(), metadata.as_value()))
        && filter.name.as_ref().is_none_or(|fragment| {
            workflow
                .name
                .as_str()
                .to_lowercase()
                .contains(&fragment.as_str().to_lowercase())
        })
        && filter.owner.is_none_or(|owner| workflow.owner == owner)
}

/// A [`WorkflowRepository`] in memory.
#[derive(Debug, Default)]
pub(crate) struct FakeWorkflows {
    state: Mutex<State>,
}

impl FakeWorkflows {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an agent in the catalog.
    pub(crate) fn add_agent(&self, id: AgentId, availability: AgentAvailability) {
        self.state().agents.insert(id, availability);
    }

    /// Records a user, active or not.
    pub(crate) fn add_user(&self, id: UserId, active: bool) {
        self.state().users.insert(id, active);
    }

    /// Records that runs of `id` exist, so it cannot be deleted.
    pub(crate) fn add_execution_of(&self, id: WorkflowId) {
        self.state().with_executions.insert(id);
    }

    /// How many times references were looked up and versions written.
    pub(crate) fn storage_calls(&self) -> (usize, usize) {
        let state = self.state();
        (state.reference_lookups, state.publishes)
    }
}

impl WorkflowRepository for FakeWorkflows {
    async fn create(
        &self,
        actor: &Actor,
        workflow: &NewWorkflow,
    ) -> Result<Workflow, StorageError> {
        let owner = actor
            .user_id()
            .ok_or_else(|| StorageError::new("creating a workflow", "no acting user"))?;
        let mut state = self.state();
        let now = state.tick();
        let created = Workflow {
            id: WorkflowId::new_random(),
            name: workflow.name.clone(),
            description: workflow.description.clone(),
            owner,
            status: WorkflowStatus::Draft,
            current_version: None,
            tags: workflow.tags.clone(),
            metadata: workflow.metadata.clone(),
            created_at: now,
            updated_at: now,
        };
        state.workflows.push(created.clone());
        Ok(created)
    }

    async fn find(&self, actor: &Actor, id: WorkflowId) -> Result<Option<Workflow>, StorageError> {
        let state = self.state();
        Ok(state
            .visible(actor, id)
            .map(|index| state.workflows[index].clone()))
    }

    async fn list(
        &self,
        actor: &Actor,
        filter: &WorkflowFilter,
        page: PageRequest,
    ) -> Result<Page<Workflow>, StorageError> {
        let state = self.state();
        let mut rows: Vec<Workflow> = state
            .workflows
            .iter()
            .filter(|workflow| may_see(actor, workflow) && matches(workflow, filter))
            .filter(|workflow| {
                page.after.is_none_or(|after| {
                    (workflow.created_at, workflow.id.as_uuid()) < (after.created_at(), after.id())
                })
            })
            .cloned()
            .collect();
        rows.sort_by_key(|workflow| {
            std::cmp::Reverse((workflow.created_at, workflow.id.as_uuid()))
        });
        rows.truncate(usize::from(page.limit.get()) + 1);
        Ok(Page::from_overfetched(rows, page.limit, Workflow::keyset))
    }

    async fn update(
        &self,
        actor: &Actor,
        id: WorkflowId,
        changes: &WorkflowChanges,
    ) -> Result<Workflow, UpdateWorkflowError> {
        let mut state = self.state();
        let index = state
            .visible(actor, id)
            .ok_or(UpdateWorkflowError::NotFound)?;
        let mut changed = state.workflows[index].apply(changes)?;
        changed.updated_at = state.tick();
        state.workflows[index] = changed.clone();
        Ok(changed)
    }

    async fn delete(&self, actor: &Actor, id: WorkflowId) -> Result<(), DeleteWorkflowError> {
        let mut state = self.state();
        let index = state
            .visible(actor, id)
            .ok_or(DeleteWorkflowError::NotFound)?;
        if state.with_executions.contains(&id) {
            return Err(DeleteWorkflowError::HasExecutions);
        }
        state.workflows.remove(index);
        state
            .versions
            .retain(|version| version.summary.workflow_id != id);
        Ok(())
    }

    async fn references(
        &self,
        _actor: &Actor,
        agents: &[AgentId],
        users: &[UserId],
    ) -> Result<ReferenceStates, StorageError> {
        let mut state = self.state();
        state.reference_lookups += 1;
        Ok(ReferenceStates {
            agents: agents
                .iter()
                .filter_map(|id| state.agents.get(id).map(|found| (*id, *found)))
                .collect(),
            users: users
                .iter()
                .filter_map(|id| state.users.get(id).map(|active| (*id, *active)))
                .collect(),
        })
    }

    async fn publish(
        &self,
        actor: &Actor,
        id: WorkflowId,
        version: &NewVersion,
    ) -> Result<WorkflowVersion, PublishError> {
        let mut state = self.state();
        state.publishes += 1;
        let index = state.visible(actor, id).ok_or(PublishError::NotFound)?;
        let author = actor
            .user_id()
            .ok_or_else(|| StorageError::new("publishing a version", "no acting user"))?;
        let highest = state
            .versions
            .iter()
            .filter(|existing| existing.summary.workflow_id == id)
            .map(|existing| existing.summary.number.get())
            .max()
            .unwrap_or(0);
        let number = VersionNumber::new(highest + 1)
            .ok_or_else(|| StorageError::new("publishing a version", "version numbers ran out"))?;
        let created_at = state.tick();
        let published = WorkflowVersion {
            summary: VersionSummary {
                id: WorkflowVersionId::new_random(),
                workflow_id: id,
                number,
                change_summary: version.change_summary.clone(),
                author,
                created_at,
            },
            definition: version.definition.document().clone(),
        };
        if version.make_current {
            let workflow = &mut state.workflows[index];
            workflow.current_version = Some(VersionRef {
                id: published.summary.id,
                number,
            });
            workflow.updated_at = created_at;
        }
        state.versions.push(published.clone());
        Ok(published)
    }

    async fn versions(
        &self,
        actor: &Actor,
        id: WorkflowId,
        page: PageRequest<VersionNumber>,
    ) -> Result<Option<Page<VersionSummary, VersionNumber>>, StorageError> {
        let state = self.state();
        if state.visible(actor, id).is_none() {
            return Ok(None);
        }
        let mut rows: Vec<VersionSummary> = state
            .versions
            .iter()
            .map(|version| version.summary.clone())
            .filter(|summary| summary.workflow_id == id)
            .filter(|summary| page.after.is_none_or(|after| summary.number < after))
            .collect();
        rows.sort_by_key(|summary| std::cmp::Reverse(summary.number));
        rows.truncate(usize::from(page.limit.get()) + 1);
        Ok(Some(Page::from_overfetched(rows, page.limit, |summary| {
            summary.number
        })))
    }

    async fn version(
        &self,
        actor: &Actor,
        id: WorkflowId,
        number: VersionNumber,
    ) -> Result<WorkflowVersion, VersionError> {
        let state = self.state();
        state
            .visible(actor, id)
            .ok_or(VersionError::WorkflowNotFound)?;
        state
            .versions
            .iter()
            .find(|version| version.summary.workflow_id == id && version.summary.number == number)
            .cloned()
            .ok_or(VersionError::VersionNotFound(number))
    }

    async fn rollback(
        &self,
        actor: &Actor,
        id: WorkflowId,
        number: VersionNumber,
    ) -> Result<Workflow, VersionError> {
        let mut state = self.state();
        let index = state
            .visible(actor, id)
            .ok_or(VersionError::WorkflowNotFound)?;
        let target = state
            .versions
            .iter()
            .find(|version| version.summary.workflow_id == id && version.summary.number == number)
            .map(|version| version.summary.id)
            .ok_or(VersionError::VersionNotFound(number))?;
        let now = state.tick();
        let workflow = &mut state.workflows[index];
        workflow.current_version = Some(VersionRef { id: target, number });
        workflow.updated_at = now;
        Ok(workflow.clone())
    }
}
