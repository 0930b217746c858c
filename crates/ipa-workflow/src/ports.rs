//! What the workflow context needs from the outside world: somewhere to keep workflows and their
//! versions, and what it must know about the agents and users a definition names. Infrastructure
//! implements these (`ipa-store`); template compilation is the [`crate::TemplateChecker`] port.
//!
//! Every method takes the [`Actor`] it acts for: the storage enforces visibility itself, so a
//! workflow the actor may not see is indistinguishable from a missing one.

use std::collections::HashMap;
use std::future::Future;

use ipa_kernel::{Actor, AgentId, Page, PageRequest, StorageError, UserId, WorkflowId};

use crate::definition::{DefinitionCheck, DefinitionProblem};
use crate::error::{DeleteWorkflowError, PublishError, UpdateWorkflowError, VersionError};
use crate::version::{NewVersion, VersionNumber, VersionSummary, WorkflowVersion};
use crate::workflow::{NewWorkflow, Workflow, WorkflowChanges, WorkflowFilter};

/// Whether an existing agent may be used by a new version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentAvailability {
    /// Active or inactive: it may be used.
    Usable,
    /// Deprecated: kept for the versions that use it, refused for new ones.
    Deprecated,
}

/// What storage knows about the agents and users a definition names. Absent ids do not exist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReferenceStates {
    /// The existing agents among those asked about.
    pub agents: HashMap<AgentId, AgentAvailability>,
    /// The existing users among those asked about, with whether each is active.
    pub users: HashMap<UserId, bool>,
}

impl ReferenceStates {
    /// The problems of `check`'s references: agents that do not exist or are deprecated,
    /// approvers that do not exist or are deactivated.
    pub fn problems(&self, check: &DefinitionCheck) -> Vec<DefinitionProblem> {
        let mut problems = Vec::new();
        for (agent, pointer) in &check.agents {
            let message = match self.agents.get(agent) {
                None => format!("agent {agent} does not exist"),
                Some(AgentAvailability::Deprecated) => {
                    format!("agent {agent} is deprecated; choose another agent")
                }
                Some(AgentAvailability::Usable) => continue,
            };
            problems.push(DefinitionProblem {
                pointer: pointer.clone(),
                message,
            });
        }
        for (user, pointer) in &check.approvers {
            let message = match self.users.get(user) {
                None => format!("user {user} does not exist"),
                Some(false) => format!("user {user} is deactivated and cannot approve"),
                Some(true) => continue,
            };
            problems.push(DefinitionProblem {
                pointer: pointer.clone(),
                message,
            });
        }
        problems
    }
}

/// Where workflows and their versions are kept.
pub trait WorkflowRepository: Send + Sync + 'static {
    /// Creates a draft workflow owned by the actor.
    fn create(
        &self,
        actor: &Actor,
        workflow: &NewWorkflow,
    ) -> impl Future<Output = Result<Workflow, StorageError>> + Send;

    /// The workflow with `id`, if the actor may see it.
    fn find(
        &self,
        actor: &Actor,
        id: WorkflowId,
    ) -> impl Future<Output = Result<Option<Workflow>, StorageError>> + Send;

    /// Workflows the actor may see that match `filter`, newest first.
    fn list(
        &self,
        actor: &Actor,
        filter: &WorkflowFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Workflow>, StorageError>> + Send;

    /// Applies `changes` under a lock on the workflow, through [`Workflow::apply`], so concurrent
    /// changes cannot combine into an illegal state.
    fn update(
        &self,
        actor: &Actor,
        id: WorkflowId,
        changes: &WorkflowChanges,
    ) -> impl Future<Output = Result<Workflow, UpdateWorkflowError>> + Send;

    /// Deletes a workflow and its versions, unless executions refer to it.
    fn delete(
        &self,
        actor: &Actor,
        id: WorkflowId,
    ) -> impl Future<Output = Result<(), DeleteWorkflowError>> + Send;

    /// Which of `agents` and `users` exist, and whether they may be used.
    fn references(
        &self,
        actor: &Actor,
        agents: &[AgentId],
        users: &[UserId],
    ) -> impl Future<Output = Result<ReferenceStates, StorageError>> + Send;

    /// Writes the workflow's next version (the highest number plus one, serialised per workflow
    /// so concurrent publishers get distinct, gapless numbers) and makes it current if asked.
    fn publish(
        &self,
        actor: &Actor,
        id: WorkflowId,
        version: &NewVersion,
    ) -> impl Future<Output = Result<WorkflowVersion, PublishError>> + Send;

    /// The workflow's versions, highest number first; `None` when the workflow is not visible.
    fn versions(
        &self,
        actor: &Actor,
        id: WorkflowId,
        page: PageRequest<VersionNumber>,
    ) -> impl Future<Output = Result<Option<Page<VersionSummary, VersionNumber>>, StorageError>> + Send;

    /// One version of the workflow.
    fn version(
        &self,
        actor: &Actor,
        id: WorkflowId,
        number: VersionNumber,
    ) -> impl Future<Output = Result<WorkflowVersion, VersionError>> + Send;

    /// Makes an existing version current again.
    fn rollback(
        &self,
        actor: &Actor,
        id: WorkflowId,
        number: VersionNumber,
    ) -> impl Future<Output = Result<Workflow, VersionError>> + Send;
}
