//! Workflows and their versions: create, list, read, change and delete workflows; publish, list,
//! read and compare versions; roll back. Users see only their own workflows and superusers see
//! all; another user's workflow is answered exactly like a missing one.

use ipa_kernel::{PageRequest, UserId, WorkflowId};
use ipa_workflow::{
    ChangeSummary, DefinitionProblem, DeleteWorkflowError, Description, LifecycleError, Metadata,
    NameFragment, NewWorkflow, PublishError, PublishRequest, Tags, UpdateWorkflowError,
    VersionError, VersionNumber, VersionSummary, Workflow, WorkflowChanges, WorkflowFilter,
    WorkflowName, WorkflowQueryError, WorkflowStatus, WorkflowValueError, WorkflowVersion,
};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ApiTags;
use crate::auth::BearerAuth;
use crate::error::{ApiError, Problem};
use crate::paging::{encode_cursor, keyset_cursor, page_request, page_request_with};
use crate::state::AppState;

mirror_enum!(
    /// Where a workflow is in its life: `draft` -> `active` | `archived`, `active` -> `archived`,
    /// `archived` -> `active`.
    StatusDto as "WorkflowStatus" <=> WorkflowStatus {
        /// Being written; cannot be run.
        Draft,
        /// Runnable; needs a current version.
        Active,
        /// Retired; kept for history.
        Archived,
    }
);

/// A workflow.
#[derive(Object)]
#[oai(rename = "Workflow")]
struct WorkflowView {
    /// The workflow's id.
    id: Uuid,
    /// Its name.
    name: String,
    /// What it is for.
    description: Option<String>,
    /// The user who created and owns it.
    owner_id: Uuid,
    /// Where it is in its life.
    status: StatusDto,
    /// The id of the version runs use by default.
    current_version_id: Option<Uuid>,
    /// The number of that version.
    current_version_number: Option<u32>,
    /// Its tags.
    tags: Vec<String>,
    /// Its metadata (a JSON object).
    metadata: Value,
    /// When it was created.
    created_at: OffsetDateTime,
    /// When it last changed.
    updated_at: OffsetDateTime,
}

impl From<Workflow> for WorkflowView {
    fn from(workflow: Workflow) -> Self {
        Self {
            id: workflow.id.as_uuid(),
            name: workflow.name.as_str().to_owned(),
            description: workflow.description.map(|text| text.as_str().to_owned()),
            owner_id: workflow.owner.as_uuid(),
            status: workflow.status.into(),
            current_version_id: workflow.current_version.map(|version| version.id.as_uuid()),
            current_version_number: workflow.current_version.map(|version| version.number.get()),
            tags: workflow.tags.as_slice().to_vec(),
            metadata: workflow.metadata.as_value().clone(),
            created_at: workflow.created_at,
            updated_at: workflow.updated_at,
        }
    }
}

/// A workflow version, without its definition.
#[derive(Object)]
#[oai(rename = "WorkflowVersionSummary")]
struct VersionSummaryView {
    /// The version's id.
    id: Uuid,
    /// The workflow it belongs to.
    workflow_id: Uuid,
    /// Its number: 1 for the first version, each next one plus 1.
    version_number: u32,
    /// What changed, in its author's words.
    change_summary: Option<String>,
    /// The user who published it.
    created_by: Uuid,
    /// When it was published.
    created_at: OffsetDateTime,
}

impl From<VersionSummary> for VersionSummaryView {
    fn from(summary: VersionSummary) -> Self {
        Self {
            id: summary.id.as_uuid(),
            workflow_id: summary.workflow_id.as_uuid(),
            version_number: summary.number.get(),
            change_summary: summary.change_summary.map(|text| text.as_str().to_owned()),
            created_by: summary.author.as_uuid(),
            created_at: summary.created_at,
        }
    }
}

/// A workflow version with its definition. Versions never change once published.
#[derive(Object)]
#[oai(rename = "WorkflowVersion")]
struct VersionView {
    /// The version's id.
    id: Uuid,
    /// The workflow it belongs to.
    workflow_id: Uuid,
    /// Its number.
    version_number: u32,
    /// The definition, exactly as published.
    definition: Value,
    /// What changed, in its author's words.
    change_summary: Option<String>,
    /// The user who published it.
    created_by: Uuid,
    /// When it was published.
    created_at: OffsetDateTime,
}

impl From<WorkflowVersion> for VersionView {
    fn from(version: WorkflowVersion) -> Self {
        let summary = VersionSummaryView::from(version.summary);
        Self {
            id: summary.id,
            workflow_id: summary.workflow_id,
            version_number: summary.version_number,
            definition: version.definition,
            change_summary: summary.change_summary,
            created_by: summary.created_by,
            created_at: summary.created_at,
        }
    }
}

/// A workflow to create. It starts as a draft without versions.
#[derive(Object)]
struct CreateWorkflowRequest {
    /// 1 to 255 characters after trimming.
    name: String,
    /// Free text, at most 10,000 characters.
    description: Option<String>,
    /// Up to 32 tags of 1 to 64 characters; trimmed, duplicates dropped.
    #[oai(default)]
    tags: Vec<String>,
    /// A JSON object of at most 64 KiB (default `{}`).
    metadata: Option<Value>,
}

/// Changes to a workflow: a field left out, or sent as `null`, stays as it is,
/// unless its description says `null` clears it.
#[derive(Object)]
struct UpdateWorkflowRequest {
    /// A new name.
    name: Option<String>,
    /// A new description; `null` clears it.
    description: MaybeUndefined<String>,
    /// A new status. Legal moves: draft -> active | archived, active -> archived,
    /// archived -> active; becoming active needs a current version.
    status: Option<StatusDto>,
    /// New tags, replacing the old ones.
    tags: Option<Vec<String>>,
    /// New metadata (a JSON object), replacing the old.
    metadata: Option<Value>,
}

/// A version to publish.
#[derive(Object)]
struct PublishVersionRequest {
    /// The workflow definition: `{"steps": [...]}`. Every problem is reported at once, each at
    /// its JSON pointer (under `/definition`).
    definition: Value,
    /// What changed, at most 2,000 characters.
    change_summary: Option<String>,
    /// Whether the new version becomes the workflow's current one (default true).
    #[oai(default = "default_publish")]
    publish: bool,
}

fn default_publish() -> bool {
    true
}

/// Which version to make current again.
#[derive(Object)]
struct RollbackRequest {
    /// The number of an existing version.
    version_number: u32,
}

/// One page of workflows.
#[derive(Object)]
struct WorkflowPage {
    /// The workflows, newest first.
    items: Vec<WorkflowView>,
    /// Pass as `cursor` to read the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<String>,
}

/// One page of versions.
#[derive(Object)]
struct VersionPage {
    /// The versions, highest number first.
    items: Vec<VersionSummaryView>,
    /// Pass as `cursor` to read the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<String>,
}

/// The difference between two versions' definitions.
#[derive(Object)]
struct VersionDiff {
    /// The version compared from.
    from_version: u32,
    /// The version compared to.
    to_version: u32,
    /// An RFC 6902 JSON Patch that turns the first definition into the second (empty when they
    /// are equal).
    patch: Value,
}

#[derive(ApiResponse)]
enum CreatedWorkflow {
    /// The workflow was created.
    #[oai(status = 201)]
    Created(Json<WorkflowView>),
}

#[derive(ApiResponse)]
enum OneWorkflow {
    /// The workflow.
    #[oai(status = 200)]
    Found(Json<WorkflowView>),
}

#[derive(ApiResponse)]
enum WorkflowList {
    /// A page of workflows.
    #[oai(status = 200)]
    Page(Json<WorkflowPage>),
}

#[derive(ApiResponse)]
enum DeletedWorkflow {
    /// The workflow and its versions are gone.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
enum CreatedVersion {
    /// The version was published.
    #[oai(status = 201)]
    Created(Json<VersionView>),
}

#[derive(ApiResponse)]
enum OneVersion {
    /// The version.
    #[oai(status = 200)]
    Found(Json<VersionView>),
}

#[derive(ApiResponse)]
enum VersionList {
    /// A page of versions.
    #[oai(status = 200)]
    Page(Json<VersionPage>),
}

#[derive(ApiResponse)]
enum DiffResponse {
    /// The difference.
    #[oai(status = 200)]
    Found(Json<VersionDiff>),
}

/// A workflow's field refused: 422 at its pointer.
fn field_error(error: &WorkflowValueError, pointer: &str) -> ApiError {
    let pointer = match error {
        WorkflowValueError::Tag(index) => format!("{pointer}/{index}"),
        _ => pointer.to_owned(),
    };
    ApiError::unprocessable("invalid_field", error.to_string(), &pointer)
}

fn parse_name(raw: &str) -> Result<WorkflowName, ApiError> {
    WorkflowName::parse(raw).map_err(|error| field_error(&error, "/name"))
}

fn parse_description(raw: &str) -> Result<Option<Description>, ApiError> {
    Description::parse(raw).map_err(|error| field_error(&error, "/description"))
}

fn parse_tags(raw: &[String]) -> Result<Tags, ApiError> {
    Tags::parse(raw).map_err(|error| field_error(&error, "/tags"))
}

fn parse_metadata(raw: Value) -> Result<Metadata, ApiError> {
    Metadata::parse(raw).map_err(|error| field_error(&error, "/metadata"))
}

fn version_not_found(message: String) -> ApiError {
    ApiError::NotFound(Json(crate::ErrorBody::new("version_not_found", message)))
}

fn workflow_not_found() -> ApiError {
    ApiError::not_found("No such workflow.")
}

fn query_error(error: &WorkflowQueryError) -> ApiError {
    match error {
        WorkflowQueryError::NotFound => workflow_not_found(),
        WorkflowQueryError::Storage(storage) => ApiError::storage(storage),
    }
}

fn version_error(error: &VersionError) -> ApiError {
    match error {
        VersionError::WorkflowNotFound => workflow_not_found(),
        VersionError::VersionNotFound(_) => version_not_found(format!(
            "{error}; list the workflow's versions to see which exist."
        )),
        VersionError::Storage(storage) => ApiError::storage(storage),
    }
}

fn lifecycle_error(error: &LifecycleError) -> ApiError {
    match error {
        LifecycleError::IllegalTransition { .. } => ApiError::conflict(
            "invalid_transition",
            format!(
                "{error}. Legal moves: draft -> active or archived, active -> archived, \
                 archived -> active."
            ),
            Some("/status"),
        ),
        LifecycleError::NoCurrentVersion => {
            ApiError::conflict("no_current_version", error.to_string(), Some("/status"))
        }
    }
}

/// A version number from a path: 0 and numbers beyond PostgreSQL's `integer` name no version.
fn path_version(raw: u32) -> Result<VersionNumber, ApiError> {
    VersionNumber::new(raw).ok_or_else(|| {
        version_not_found(format!(
            "Version numbers start at 1; there is no version {raw}."
        ))
    })
}

/// The cursor of a versions page: the last number shown.
fn encode_version_cursor(number: VersionNumber) -> String {
    encode_cursor(&format!("v{number}"))
}

fn version_page_request(
    limit: Option<u32>,
    cursor: Option<String>,
) -> Result<PageRequest<VersionNumber>, ApiError> {
    page_request_with(limit, cursor, |text| {
        VersionNumber::new(text.strip_prefix('v')?.parse().ok()?)
    })
}

fn invalid_definition(problems: Vec<DefinitionProblem>) -> ApiError {
    let count = problems.len();
    let problems: Vec<Problem> = problems
        .into_iter()
        .map(|problem| Problem {
            pointer: format!("/definition{}", problem.pointer),
            message: problem.message,
        })
        .collect();
    ApiError::problems(
        "invalid_definition",
        format!(
            "The definition has {count} problem(s); each is listed in `problems` with the JSON \
             pointer of its field. Fix them all and publish again."
        ),
        problems,
    )
}

fn metadata_filter(raw: Option<String>) -> Result<Option<Metadata>, ApiError> {
    raw.map(|text| {
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|value| Metadata::parse(value).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_filter",
                    "`metadata` must be a JSON object, such as {\"team\":\"billing\"}, matched \
                     by containment.",
                )
            })
    })
    .transpose()
}

/// Workflows and versions.
pub struct WorkflowsApi;

#[OpenApi(tag = "ApiTags::Workflows")]
impl WorkflowsApi {
    /// Creates a draft workflow owned by the caller.
    #[oai(path = "/workflows", method = "post", operation_id = "createWorkflow")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<CreateWorkflowRequest>,
    ) -> Result<CreatedWorkflow, ApiError> {
        let body = body.0;
        let workflow = NewWorkflow {
            name: parse_name(&body.name)?,
            description: match &body.description {
                Some(text) => parse_description(text)?,
                None => None,
            },
            tags: parse_tags(&body.tags)?,
            metadata: match body.metadata {
                Some(metadata) => parse_metadata(metadata)?,
                None => Metadata::default(),
            },
        };
        let created = state
            .workflows
            .create(&auth.0.actor(), &workflow)
            .await
            .map_err(|error| ApiError::storage(&error))?;
        Ok(CreatedWorkflow::Created(Json(created.into())))
    }

    /// Lists the caller's workflows (a superuser's: everyone's), newest first. Every filter
    /// given must hold.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/workflows", method = "get", operation_id = "listWorkflows")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Only this status.
        status: Query<Option<StatusDto>>,
        /// Only workflows carrying every one of these tags (repeat the parameter:
        /// `tags=a&tags=b`).
        #[oai(default)]
        tags: Query<Vec<String>>,
        /// Only workflows whose metadata contains this JSON object, e.g. `{"team":"billing"}`.
        metadata: Query<Option<String>>,
        /// Only workflows whose name contains this text, in any case.
        name: Query<Option<String>>,
        /// Only this owner's workflows (useful to superusers; others only see their own).
        owner_id: Query<Option<Uuid>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<WorkflowList, ApiError> {
        let page = page_request(limit.0, cursor.0)?;
        let filter = WorkflowFilter {
            status: status.0.map(WorkflowStatus::from),
            tags: Tags::parse(&tags.0).map_err(|error| {
                ApiError::bad_request("invalid_filter", format!("`tags`: {error}"))
            })?,
            metadata: metadata_filter(metadata.0)?,
            name: name
                .0
                .map(|text| {
                    NameFragment::parse(&text).map_err(|error| {
                        ApiError::bad_request("invalid_filter", format!("`name`: {error}"))
                    })
                })
                .transpose()?,
            owner: owner_id.0.map(UserId::from_uuid),
        };
        let workflows = state
            .workflows
            .list(&auth.0.actor(), &filter, page)
            .await
            .map_err(|error| ApiError::storage(&error))?;
        let next_cursor = workflows.next.map(keyset_cursor);
        Ok(WorkflowList::Page(Json(WorkflowPage {
            items: workflows
                .items
                .into_iter()
                .map(WorkflowView::from)
                .collect(),
            next_cursor,
        })))
    }

    /// One workflow.
    #[oai(path = "/workflows/:id", method = "get", operation_id = "getWorkflow")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The workflow's id.
        id: Path<Uuid>,
    ) -> Result<OneWorkflow, ApiError> {
        let workflow = state
            .workflows
            .get(&auth.0.actor(), WorkflowId::from_uuid(id.0))
            .await
            .map_err(|error| query_error(&error))?;
        Ok(OneWorkflow::Found(Json(workflow.into())))
    }

    /// Changes a workflow's name, description, tags, metadata or status. An illegal status move
    /// is a 409 naming both ends.
    #[oai(
        path = "/workflows/:id",
        method = "patch",
        operation_id = "updateWorkflow"
    )]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The workflow's id.
        id: Path<Uuid>,
        body: Json<UpdateWorkflowRequest>,
    ) -> Result<OneWorkflow, ApiError> {
        let body = body.0;
        let changes = WorkflowChanges {
            name: body.name.as_deref().map(parse_name).transpose()?,
            description: match body.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(text) => Some(parse_description(&text)?),
            },
            status: body.status.map(WorkflowStatus::from),
            tags: body.tags.as_deref().map(parse_tags).transpose()?,
            metadata: body.metadata.map(parse_metadata).transpose()?,
        };
        let workflow = state
            .workflows
            .update(&auth.0.actor(), WorkflowId::from_uuid(id.0), &changes)
            .await
            .map_err(|error| match error {
                UpdateWorkflowError::NotFound => workflow_not_found(),
                UpdateWorkflowError::Lifecycle(lifecycle) => lifecycle_error(&lifecycle),
                UpdateWorkflowError::Storage(storage) => ApiError::storage(&storage),
            })?;
        Ok(OneWorkflow::Found(Json(workflow.into())))
    }

    /// Deletes a workflow and its versions. A workflow that has executions is history and cannot
    /// be deleted (409): archive it instead.
    #[oai(
        path = "/workflows/:id",
        method = "delete",
        operation_id = "deleteWorkflow"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The workflow's id.
        id: Path<Uuid>,
    ) -> Result<DeletedWorkflow, ApiError> {
        state
            .workflows
            .delete(&auth.0.actor(), WorkflowId::from_uuid(id.0))
            .await
            .map_err(|error| match error {
                DeleteWorkflowError::NotFound => workflow_not_found(),
                DeleteWorkflowError::HasExecutions => ApiError::conflict(
                    "workflow_has_executions",
                    "Executions refer to this workflow, so it cannot be deleted; archive it \
                     instead (PATCH with {\"status\": \"archived\"}).",
                    None,
                ),
                DeleteWorkflowError::Storage(storage) => ApiError::storage(&storage),
            })?;
        Ok(DeletedWorkflow::Deleted)
    }

    /// Publishes the workflow's next version (numbered one above the highest). The definition is
    /// checked whole: its structure, its templates (which may use `input.*` and earlier steps'
    /// `steps.<name>.*`), and the agents and approvers it names; the problems are listed in one
    /// 422 (at most 100, then one counting the rest). A definition of more than 200 steps is
    /// refused on its count alone. The version becomes current unless `publish` is false.
    #[oai(
        path = "/workflows/:id/versions",
        method = "post",
        operation_id = "publishWorkflowVersion"
    )]
    async fn publish(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The workflow's id.
        id: Path<Uuid>,
        body: Json<PublishVersionRequest>,
    ) -> Result<CreatedVersion, ApiError> {
        let body = body.0;
        let change_summary = match &body.change_summary {
            Some(text) => ChangeSummary::parse(text).map_err(|error| {
                ApiError::unprocessable("invalid_field", error.to_string(), "/change_summary")
            })?,
            None => None,
        };
        let request = PublishRequest {
            definition: body.definition,
            change_summary,
            make_current: body.publish,
        };
        let version = state
            .workflows
            .publish(&auth.0.actor(), WorkflowId::from_uuid(id.0), &request)
            .await
            .map_err(|error| match error {
                PublishError::NotFound => workflow_not_found(),
                PublishError::Invalid(invalid) => invalid_definition(invalid.0),
                PublishError::Storage(storage) => ApiError::storage(&storage),
            })?;
        Ok(CreatedVersion::Created(Json(version.into())))
    }

    /// Lists the workflow's versions, highest number first (without definitions).
    #[oai(
        path = "/workflows/:id/versions",
        method = "get",
        operation_id = "listWorkflowVersions"
    )]
    async fn versions(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The workflow's id.
        id: Path<Uuid>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<VersionList, ApiError> {
        let page = version_page_request(limit.0, cursor.0)?;
        let versions = state
            .workflows
            .versions(&auth.0.actor(), WorkflowId::from_uuid(id.0), page)
            .await
            .map_err(|error| query_error(&error))?;
        let next_cursor = versions.next.map(encode_version_cursor);
        Ok(VersionList::Page(Json(VersionPage {
            items: versions
                .items
                .into_iter()
                .map(VersionSummaryView::from)
                .collect(),
            next_cursor,
        })))
    }

    /// One version of the workflow, with its definition.
    #[oai(
        path = "/workflows/:id/versions/:number",
        method = "get",
        operation_id = "getWorkflowVersion"
    )]
    async fn version(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The workflow's id.
        id: Path<Uuid>,
        /// The version's number.
        number: Path<u32>,
    ) -> Result<OneVersion, ApiError> {
        let id = WorkflowId::from_uuid(id.0);
        let number = path_version(number.0)?;
        let version = state
            .workflows
            .version(&auth.0.actor(), id, number)
            .await
            .map_err(|error| version_error(&error))?;
        Ok(OneVersion::Found(Json(version.into())))
    }

    /// The difference between two versions' definitions, as an RFC 6902 JSON Patch from the
    /// first to the second.
    #[oai(
        path = "/workflows/:id/versions/:from/diff/:to",
        method = "get",
        operation_id = "diffWorkflowVersions"
    )]
    async fn diff(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The workflow's id.
        id: Path<Uuid>,
        /// The version to compare from.
        from: Path<u32>,
        /// The version to compare to.
        to: Path<u32>,
    ) -> Result<DiffResponse, ApiError> {
        let id = WorkflowId::from_uuid(id.0);
        let (from_number, to_number) = (path_version(from.0)?, path_version(to.0)?);
        let (from_version, to_version) = state
            .workflows
            .version_pair(&auth.0.actor(), id, from_number, to_number)
            .await
            .map_err(|error| version_error(&error))?;
        let patch = json_patch::diff(&from_version.definition, &to_version.definition);
        let patch = serde_json::to_value(&patch).map_err(|error| ApiError::internal(&error))?;
        Ok(DiffResponse::Found(Json(VersionDiff {
            from_version: from_number.get(),
            to_version: to_number.get(),
            patch,
        })))
    }

    /// Makes an existing version the workflow's current one again. Audited with the current
    /// version before and after.
    #[oai(
        path = "/workflows/:id/rollback",
        method = "post",
        operation_id = "rollbackWorkflow"
    )]
    async fn rollback(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The workflow's id.
        id: Path<Uuid>,
        body: Json<RollbackRequest>,
    ) -> Result<OneWorkflow, ApiError> {
        let id = WorkflowId::from_uuid(id.0);
        let number = VersionNumber::new(body.0.version_number).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_field",
                "Version numbers start at 1.",
                "/version_number",
            )
        })?;
        let workflow = state
            .workflows
            .rollback(&auth.0.actor(), id, number)
            .await
            .map_err(|error| match error {
                VersionError::VersionNotFound(_) => ApiError::unprocessable(
                    "version_not_found",
                    format!("{error}; list the workflow's versions to see which exist."),
                    "/version_number",
                ),
                other => version_error(&other),
            })?;
        Ok(OneWorkflow::Found(Json(workflow.into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_cursors_round_trip_and_refuse_anything_else() {
        let number = VersionNumber::new(7).unwrap();
        let page = version_page_request(None, Some(encode_version_cursor(number))).unwrap();
        assert_eq!(page.after, Some(number));
        assert!(version_page_request(None, Some("bm9wZQ".into())).is_err());
        assert!(version_page_request(None, Some(encode_cursor("v0"))).is_err());
        assert_eq!(ipa_kernel::PageLimit::DEFAULT, page.limit.get());
    }
}
