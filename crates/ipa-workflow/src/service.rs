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

#[cfg(test)]
mod tests {
    //! The service's rules against the in-memory fakes of its ports ([`crate::fakes`]): what it
    //! decides itself (publishing checks everything in one pass, and only for a visible
    //! workflow; a missing workflow or version is its own error), not what PostgreSQL enforces.

    use ipa_kernel::{AgentId, ClientInfo, PageLimit, UserId};
    use serde_json::{Value, json};

    use super::*;
    use crate::WorkflowStatus;
    use crate::error::LifecycleError;
    use crate::fakes::{FakeTemplates, FakeWorkflows};
    use crate::ports::AgentAvailability;
    use crate::workflow::{Metadata, Tags, WorkflowName};

    type Service = WorkflowService<FakeWorkflows, FakeTemplates>;

    fn service() -> Service {
        WorkflowService::new(FakeWorkflows::default(), FakeTemplates)
    }

    fn someone() -> Actor {
        Actor::user(UserId::new_random(), false, ClientInfo::default())
    }

    fn superuser() -> Actor {
        Actor::user(UserId::new_random(), true, ClientInfo::default())
    }

    fn new_workflow(name: &str, tags: &[&str]) -> NewWorkflow {
        let tags: Vec<String> = tags.iter().map(|tag| (*tag).to_owned()).collect();
        NewWorkflow {
            name: WorkflowName::parse(name).unwrap(),
            description: None,
            tags: Tags::parse(&tags).unwrap(),
            metadata: Metadata::parse(json!({})).unwrap(),
        }
    }

    fn request(definition: Value, make_current: bool) -> PublishRequest {
        PublishRequest {
            definition,
            change_summary: None,
            make_current,
        }
    }

    fn approval(name: &str, message: &str) -> Value {
        json!({"name": name, "type": "approval", "message": message})
    }

    fn number(n: u32) -> VersionNumber {
        VersionNumber::new(n).unwrap()
    }

    /// A new draft workflow of `owner`'s.
    async fn draft(service: &Service, owner: &Actor) -> Workflow {
        service
            .create(owner, &new_workflow("w", &[]))
            .await
            .unwrap()
    }

    /// Publishes, as current, a version with one approval step showing `message`.
    async fn publish_approval(service: &Service, owner: &Actor, id: WorkflowId, message: &str) {
        let definition = json!({"steps": [approval("a", message)]});
        service
            .publish(owner, id, &request(definition, true))
            .await
            .unwrap();
    }

    fn pointers(error: PublishError) -> Vec<String> {
        match error {
            PublishError::Invalid(invalid) => invalid.0.into_iter().map(|p| p.pointer).collect(),
            other => panic!("expected an invalid definition, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_workflow_is_seen_by_its_owner_and_superusers_only() {
        let service = service();
        let (owner, stranger) = (someone(), someone());
        let created = service
            .create(&owner, &new_workflow("invoices", &[]))
            .await
            .unwrap();
        assert_eq!(created.status, WorkflowStatus::Draft);
        assert_eq!(service.get(&owner, created.id).await.unwrap(), created);
        assert_eq!(
            service.get(&superuser(), created.id).await.unwrap(),
            created
        );
        assert!(matches!(
            service.get(&stranger, created.id).await,
            Err(WorkflowQueryError::NotFound)
        ));
    }

    #[tokio::test]
    async fn publishing_to_an_invisible_workflow_is_refused_before_the_definition_is_read() {
        let service = service();
        let (owner, stranger) = (someone(), someone());
        let workflow = draft(&service, &owner).await;
        // A definition full of problems: had it been checked, the answer would list them.
        let error = service
            .publish(&stranger, workflow.id, &request(json!({"steps": 7}), true))
            .await
            .unwrap_err();
        assert!(matches!(error, PublishError::NotFound), "{error:?}");
        assert_eq!(service.repository.storage_calls(), (0, 0));
    }

    #[tokio::test]
    async fn a_definition_is_refused_with_every_problem_of_structure_templates_and_references() {
        let service = service();
        let owner = someone();
        let workflow = draft(&service, &owner).await;
        let (deprecated, missing) = (AgentId::new_random(), AgentId::new_random());
        let (deactivated, unknown) = (UserId::new_random(), UserId::new_random());
        service
            .repository
            .add_agent(deprecated, AgentAvailability::Deprecated);
        service.repository.add_user(deactivated, false);
        let definition = json!({"steps": [
            {"name": "ask", "type": "agent", "agent_id": deprecated.to_string(), "prompt": "fine"},
            {"name": "ask_again", "type": "agent", "agent_id": missing.to_string(), "prompt": "BAD"},
            {"name": "approve", "type": "approval", "message": "ok",
             "approvers": [deactivated.to_string(), unknown.to_string()]},
            {"name": "Not A Name", "type": "approval", "message": "ok"},
        ]});
        let error = service
            .publish(&owner, workflow.id, &request(definition, true))
            .await
            .unwrap_err();
        let mut found = pointers(error);
        found.sort();
        assert_eq!(
            found,
            [
                "/steps/0/agent_id",
                "/steps/1/agent_id",
                "/steps/1/prompt",
                "/steps/2/approvers/0",
                "/steps/2/approvers/1",
                "/steps/3/name",
            ]
        );
        // The references were looked up once, and nothing was written.
        assert_eq!(service.repository.storage_calls(), (1, 0));
        let current = service.get(&owner, workflow.id).await.unwrap();
        assert_eq!(current.current_version, None);
    }

    #[tokio::test]
    async fn versions_are_numbered_in_order_and_become_current_only_when_asked() {
        let service = service();
        let owner = someone();
        let approver = UserId::new_random();
        let agent = AgentId::new_random();
        service.repository.add_user(approver, true);
        service
            .repository
            .add_agent(agent, AgentAvailability::Usable);
        let workflow = draft(&service, &owner).await;
        let first = json!({"steps": [
            {"name": "ask", "type": "agent", "agent_id": agent.to_string(), "prompt": "hi"},
            {"name": "approve", "type": "approval", "message": "ok",
             "approvers": [approver.to_string()]},
        ]});
        let one = service
            .publish(&owner, workflow.id, &request(first.clone(), true))
            .await
            .unwrap();
        let two = service
            .publish(
                &owner,
                workflow.id,
                &request(json!({"steps": [approval("a", "two")]}), false),
            )
            .await
            .unwrap();
        assert_eq!(
            (one.summary.number, two.summary.number),
            (number(1), number(2))
        );
        assert_eq!(one.definition, first);
        let current = service.get(&owner, workflow.id).await.unwrap();
        assert_eq!(current.current_version.map(|v| v.number), Some(number(1)));

        let listed = service
            .versions(&owner, workflow.id, PageRequest::default())
            .await
            .unwrap();
        let numbers: Vec<_> = listed.items.iter().map(|v| v.number).collect();
        assert_eq!(numbers, [number(2), number(1)]);
        let (from, to) = service
            .version_pair(&owner, workflow.id, number(1), number(2))
            .await
            .unwrap();
        assert_eq!(
            (from.summary.id, to.summary.id),
            (one.summary.id, two.summary.id)
        );
    }

    #[tokio::test]
    async fn a_missing_workflow_and_a_missing_version_are_told_apart() {
        let service = service();
        let owner = someone();
        let workflow = draft(&service, &owner).await;
        publish_approval(&service, &owner, workflow.id, "x").await;
        assert!(matches!(
            service.version_pair(&owner, workflow.id, number(1), number(9)).await,
            Err(VersionError::VersionNotFound(n)) if n == number(9)
        ));
        assert!(matches!(
            service.version(&someone(), workflow.id, number(1)).await,
            Err(VersionError::WorkflowNotFound)
        ));
        assert!(matches!(
            service
                .versions(&someone(), workflow.id, PageRequest::default())
                .await,
            Err(WorkflowQueryError::NotFound)
        ));
        assert!(matches!(
            service.rollback(&owner, workflow.id, number(2)).await,
            Err(VersionError::VersionNotFound(n)) if n == number(2)
        ));
    }

    #[tokio::test]
    async fn rolling_back_makes_an_earlier_version_current_again() {
        let service = service();
        let owner = someone();
        let workflow = draft(&service, &owner).await;
        for message in ["one", "two", "three"] {
            publish_approval(&service, &owner, workflow.id, message).await;
        }
        let rolled = service
            .rollback(&owner, workflow.id, number(1))
            .await
            .unwrap();
        assert_eq!(rolled.current_version.map(|v| v.number), Some(number(1)));
        let read = service.get(&owner, workflow.id).await.unwrap();
        assert_eq!(read.current_version, rolled.current_version);
    }

    #[tokio::test]
    async fn a_workflow_becomes_active_only_with_a_current_version() {
        let service = service();
        let owner = someone();
        let workflow = draft(&service, &owner).await;
        let activate = WorkflowChanges {
            status: Some(WorkflowStatus::Active),
            ..WorkflowChanges::default()
        };
        assert!(matches!(
            service.update(&owner, workflow.id, &activate).await,
            Err(UpdateWorkflowError::Lifecycle(
                LifecycleError::NoCurrentVersion
            ))
        ));
        publish_approval(&service, &owner, workflow.id, "x").await;
        let active = service
            .update(&owner, workflow.id, &activate)
            .await
            .unwrap();
        assert_eq!(active.status, WorkflowStatus::Active);
        let back_to_draft = WorkflowChanges {
            status: Some(WorkflowStatus::Draft),
            ..WorkflowChanges::default()
        };
        assert!(matches!(
            service.update(&owner, workflow.id, &back_to_draft).await,
            Err(UpdateWorkflowError::Lifecycle(
                LifecycleError::IllegalTransition { .. }
            ))
        ));
        assert!(matches!(
            service.update(&someone(), workflow.id, &activate).await,
            Err(UpdateWorkflowError::NotFound)
        ));
    }

    #[tokio::test]
    async fn a_workflow_with_runs_is_kept_and_one_without_is_deleted() {
        let service = service();
        let owner = someone();
        let kept = service
            .create(&owner, &new_workflow("kept", &[]))
            .await
            .unwrap();
        let gone = service
            .create(&owner, &new_workflow("gone", &[]))
            .await
            .unwrap();
        service.repository.add_execution_of(kept.id);
        assert!(matches!(
            service.delete(&owner, kept.id).await,
            Err(DeleteWorkflowError::HasExecutions)
        ));
        assert!(matches!(
            service.delete(&someone(), gone.id).await,
            Err(DeleteWorkflowError::NotFound)
        ));
        service.delete(&owner, gone.id).await.unwrap();
        assert!(matches!(
            service.get(&owner, gone.id).await,
            Err(WorkflowQueryError::NotFound)
        ));
        assert!(service.get(&owner, kept.id).await.is_ok());
    }

    #[tokio::test]
    async fn lists_hold_the_actors_matching_workflows_newest_first_in_pages() {
        let service = service();
        let (owner, other) = (someone(), someone());
        for n in 0..5 {
            let tags: &[&str] = if n % 2 == 0 { &["billing"] } else { &[] };
            service
                .create(&owner, &new_workflow(&format!("Invoice {n}"), tags))
                .await
                .unwrap();
        }
        service
            .create(&other, &new_workflow("Invoice of another", &["billing"]))
            .await
            .unwrap();
        let billing = WorkflowFilter {
            tags: Tags::parse(&["billing".to_owned()]).unwrap(),
            ..WorkflowFilter::default()
        };
        let first = PageRequest {
            after: None,
            limit: PageLimit::parse(Some(2)).unwrap(),
        };
        let page = service.list(&owner, &billing, first).await.unwrap();
        let names: Vec<_> = page
            .items
            .iter()
            .map(|w| w.name.as_str().to_owned())
            .collect();
        assert_eq!(names, ["Invoice 4", "Invoice 2"]);
        let rest = PageRequest {
            after: page.next,
            ..first
        };
        let page = service.list(&owner, &billing, rest).await.unwrap();
        let names: Vec<_> = page
            .items
            .iter()
            .map(|w| w.name.as_str().to_owned())
            .collect();
        assert_eq!(
            (names.as_slice(), page.next),
            (["Invoice 0".to_owned()].as_slice(), None)
        );
        let everyone = service
            .list(&superuser(), &billing, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(everyone.items.len(), 4);
    }
}
