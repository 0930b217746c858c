//! The workflow service: creating, reading, changing and deleting workflows, publishing versions
//! (with every problem of a definition found in one pass: structure, templates, references),
//! reading and comparing versions, and rolling back. Generic over the ports, so the same rules
//! run against PostgreSQL in production and against anything else a caller plugs in.

use ipa_kernel::{Actor, Page, PageRequest, StorageError, WorkflowId};
use serde_json::Value;

use crate::definition::{DefinitionCheck, InvalidDefinition, TemplateChecker, WorkflowDefinition};
use crate::error::{
    DeleteWorkflowError, PublishError, UpdateWorkflowError, VersionError, WorkflowQueryError,
};
use crate::ports::WorkflowRepository;
use crate::version::{ChangeSummary, NewVersion, VersionNumber, VersionSummary, WorkflowVersion};
use crate::workflow::{NewWorkflow, Workflow, WorkflowChanges, WorkflowFilter};

/// A version to publish, as the client sent it: the definition is checked by the service.
#[derive(Clone, Debug)]
pub struct PublishRequest {
    /// The definition document.
    pub definition: Value,
    /// What changed.
    pub change_summary: Option<ChangeSummary>,
    /// Whether it becomes current.
    pub make_current: bool,
}

/// Workflow operations over a repository `R` and a template compiler `T`.
#[derive(Debug)]
pub struct WorkflowService<R, T> {
    repository: R,
    templates: T,
}

impl<R: WorkflowRepository, T: TemplateChecker + Send + Sync> WorkflowService<R, T> {
    /// A service over these ports.
    pub fn new(repository: R, templates: T) -> Self {
        Self {
            repository,
            templates,
        }
    }

    /// Creates a draft workflow owned by the actor.
    pub async fn create(
        &self,
        actor: &Actor,
        workflow: &NewWorkflow,
    ) -> Result<Workflow, StorageError> {
        self.repository.create(actor, workflow).await
    }

    /// The workflow, if the actor may see it.
    pub async fn get(&self, actor: &Actor, id: WorkflowId) -> Result<Workflow, WorkflowQueryError> {
        self.repository
            .find(actor, id)
            .await?
            .ok_or(WorkflowQueryError::NotFound)
    }

    /// The workflows the actor may see that match `filter`, newest first.
    pub async fn list(
        &self,
        actor: &Actor,
        filter: &WorkflowFilter,
        page: PageRequest,
    ) -> Result<Page<Workflow>, StorageError> {
        self.repository.list(actor, filter, page).await
    }

    /// Changes a workflow's fields and status.
    pub async fn update(
        &self,
        actor: &Actor,
        id: WorkflowId,
        changes: &WorkflowChanges,
    ) -> Result<Workflow, UpdateWorkflowError> {
        self.repository.update(actor, id, changes).await
    }

    /// Deletes a workflow that no execution refers to.
    pub async fn delete(&self, actor: &Actor, id: WorkflowId) -> Result<(), DeleteWorkflowError> {
        self.repository.delete(actor, id).await
    }

    /// Checks a definition (structure, templates, the agents and approvers it names) and, when
    /// it has no problem, publishes it as the workflow's next version. A workflow the actor may
    /// not see is refused before its definition is looked at.
    pub async fn publish(
        &self,
        actor: &Actor,
        id: WorkflowId,
        request: &PublishRequest,
    ) -> Result<WorkflowVersion, PublishError> {
        if self.repository.find(actor, id).await?.is_none() {
            return Err(PublishError::NotFound);
        }
        let check = WorkflowDefinition::check(&request.definition, &self.templates);
        let agents: Vec<_> = check.agents.iter().map(|(id, _)| *id).collect();
        let users: Vec<_> = check.approvers.iter().map(|(id, _)| *id).collect();
        let states = self.repository.references(actor, &agents, &users).await?;
        let reference_problems = states.problems(&check);
        let DefinitionCheck {
            mut problems,
            omitted,
            definition,
            ..
        } = check;
        problems.extend(reference_problems);
        match definition {
            Some(definition) if problems.is_empty() => {
                let version = NewVersion {
                    definition,
                    change_summary: request.change_summary.clone(),
                    make_current: request.make_current,
                };
                self.repository.publish(actor, id, &version).await
            }
            _ => Err(InvalidDefinition::listing(problems, omitted).into()),
        }
    }

    /// The workflow's versions, highest number first.
    pub async fn versions(
        &self,
        actor: &Actor,
        id: WorkflowId,
        page: PageRequest<VersionNumber>,
    ) -> Result<Page<VersionSummary, VersionNumber>, WorkflowQueryError> {
        self.repository
            .versions(actor, id, page)
            .await?
            .ok_or(WorkflowQueryError::NotFound)
    }

    /// One version of the workflow.
    pub async fn version(
        &self,
        actor: &Actor,
        id: WorkflowId,
        number: VersionNumber,
    ) -> Result<WorkflowVersion, VersionError> {
        self.repository.version(actor, id, number).await
    }

    /// Two versions of the workflow, to compare.
    pub async fn version_pair(
        &self,
        actor: &Actor,
        id: WorkflowId,
        from: VersionNumber,
        to: VersionNumber,
    ) -> Result<(WorkflowVersion, WorkflowVersion), VersionError> {
        let from = self.repository.version(actor, id, from).await?;
        let to = self.repository.version(actor, id, to).await?;
        Ok((from, to))
    }

    /// Makes an earlier (or any existing) version current again.
    pub async fn rollback(
        &self,
        actor: &Actor,
        id: WorkflowId,
        number: VersionNumber,
    ) -> Result<Workflow, VersionError> {
        self.repository.rollback(actor, id, number).await
    }
}
