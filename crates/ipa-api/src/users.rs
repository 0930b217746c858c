//! User administration (superusers only): create, list, read, change and deactivate accounts,
//! and the account representation every endpoint returns.

use ipa_identity::{
    CreateUserError, Email, FullName, NewUser, Password, SearchPrefix, UpdateUserError, User,
    UserChanges, UserFilter, Username, ValueError,
};
use ipa_kernel::UserId;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ApiTags;
use crate::auth::{BearerAuth, query_error};
use crate::error::ApiError;
use crate::paging::{keyset_cursor, page_request};
use crate::state::AppState;

/// An account. Its password hash is never shown.
#[derive(Object)]
#[oai(rename = "User")]
pub struct UserView {
    /// The account's id.
    id: Uuid,
    /// Email address (lower case).
    email: String,
    /// Username.
    username: String,
    /// Full name, when given.
    full_name: Option<String>,
    /// Whether the account may sign in.
    is_active: bool,
    /// Whether the account administers the platform.
    is_superuser: bool,
    /// When the account was created.
    created_at: OffsetDateTime,
    /// When the account last changed.
    updated_at: OffsetDateTime,
    /// When the account last signed in.
    last_login_at: Option<OffsetDateTime>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email.as_str().to_owned(),
            username: user.username.as_str().to_owned(),
            full_name: user.full_name.map(|name| name.as_str().to_owned()),
            is_active: user.is_active,
            is_superuser: user.is_superuser,
            created_at: user.created_at,
            updated_at: user.updated_at,
            last_login_at: user.last_login_at,
        }
    }
}

/// A field's value refused by a value object: 422 pointing at the field.
pub(crate) fn value_error(error: &ValueError, pointer: &str) -> ApiError {
    ApiError::unprocessable("invalid_field", error.to_string(), pointer)
}

/// Parses an optional full name: absent leaves it, `null` or blank clears it.
fn optional_full_name(raw: Option<String>, pointer: &str) -> Result<Option<FullName>, ApiError> {
    match raw {
        Some(name) if !name.trim().is_empty() => FullName::parse(&name)
            .map(Some)
            .map_err(|error| value_error(&error, pointer)),
        _ => Ok(None),
    }
}

/// A full-name change: absent leaves the name, `null` or blank clears it.
pub(crate) fn parse_full_name(
    raw: MaybeUndefined<String>,
) -> Result<Option<Option<FullName>>, ApiError> {
    match raw {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(name) => optional_full_name(Some(name), "/full_name").map(Some),
    }
}

/// User administration.
pub struct UsersApi;

/// An account to create.
#[derive(Object)]
struct CreateUserRequest {
    /// Email address: name@domain.tld, at most 255 characters; stored in lower case.
    email: String,
    /// Username: 3 to 100 letters, digits, `.`, `_` or `-`.
    username: String,
    /// Full name (optional).
    full_name: Option<String>,
    /// Password: 8 to 128 characters.
    #[oai(write_only)]
    password: String,
    /// Whether the account administers the platform (default false).
    #[oai(default)]
    is_superuser: bool,
}

/// Changes to an account: a field left out, or sent as `null`, stays as it is,
/// unless its description says `null` clears it.
#[derive(Object)]
struct UpdateUserRequest {
    /// A new full name; `null` clears it.
    full_name: MaybeUndefined<String>,
    /// Activate or deactivate the account. Deactivating ends all of its sessions.
    is_active: Option<bool>,
    /// Grant or withdraw administration.
    is_superuser: Option<bool>,
}

/// One page of accounts.
#[derive(Object)]
struct UserPage {
    /// The accounts, newest first.
    items: Vec<UserView>,
    /// Pass as `cursor` to read the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<String>,
}

#[derive(ApiResponse)]
enum CreatedUser {
    /// The account was created.
    #[oai(status = 201)]
    Created(Json<UserView>),
}

#[derive(ApiResponse)]
enum OneUser {
    /// The account.
    #[oai(status = 200)]
    Found(Json<UserView>),
}

#[derive(ApiResponse)]
enum UserList {
    /// A page of accounts.
    #[oai(status = 200)]
    Page(Json<UserPage>),
}

fn new_user(body: CreateUserRequest) -> Result<(NewUser, Password), ApiError> {
    let email = Email::parse(&body.email).map_err(|error| value_error(&error, "/email"))?;
    let username =
        Username::parse(&body.username).map_err(|error| value_error(&error, "/username"))?;
    let full_name = optional_full_name(body.full_name, "/full_name")?;
    let password =
        Password::parse(body.password).map_err(|error| value_error(&error, "/password"))?;
    Ok((
        NewUser {
            email,
            username,
            full_name,
            is_superuser: body.is_superuser,
        },
        password,
    ))
}

pub(crate) fn create_error(error: CreateUserError) -> ApiError {
    match error {
        CreateUserError::Forbidden => ApiError::forbidden(error.to_string()),
        CreateUserError::Duplicate(field) => ApiError::conflict(
            &format!("duplicate_{}", field.name()),
            format!("A user with this {} already exists.", field.name()),
            Some(&format!("/{}", field.name())),
        ),
        CreateUserError::Storage(storage) => ApiError::storage(&storage),
        CreateUserError::Crypto(crypto) => ApiError::internal(&crypto),
    }
}

fn update_error(error: UpdateUserError) -> ApiError {
    match error {
        UpdateUserError::Forbidden => ApiError::forbidden(error.to_string()),
        UpdateUserError::NotFound => ApiError::not_found(error.to_string()),
        UpdateUserError::LastSuperuser => {
            ApiError::conflict("last_superuser", error.to_string(), None)
        }
        UpdateUserError::Storage(storage) => ApiError::storage(&storage),
    }
}

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Creates an account (superusers only). A taken email or username is a 409 naming the
    /// field.
    #[oai(path = "/users", method = "post", operation_id = "createUser")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<CreateUserRequest>,
    ) -> Result<CreatedUser, ApiError> {
        let actor = auth.0.actor();
        // Refused before the body is judged, so a non-superuser learns nothing from validation.
        if !actor.is_superuser() {
            return Err(create_error(CreateUserError::Forbidden));
        }
        let (user, password) = new_user(body.0)?;
        let created = state
            .identity
            .create_user(&actor, user, password)
            .await
            .map_err(create_error)?;
        Ok(CreatedUser::Created(Json(UserView::from(created))))
    }

    /// Lists accounts, newest first (superusers only).
    #[oai(path = "/users", method = "get", operation_id = "listUsers")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Only active (`true`) or only deactivated (`false`) accounts.
        active: Query<Option<bool>>,
        /// Only accounts whose email or username starts with this text.
        search: Query<Option<String>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<UserList, ApiError> {
        let page = page_request(limit.0, cursor.0)?;
        let filter = UserFilter {
            is_active: active.0,
            search_prefix: search.0.as_deref().and_then(SearchPrefix::parse),
        };
        let users = state
            .identity
            .list_users(&auth.0.actor(), &filter, page)
            .await
            .map_err(query_error)?;
        let next_cursor = users.next.map(keyset_cursor);
        Ok(UserList::Page(Json(UserPage {
            items: users.items.into_iter().map(UserView::from).collect(),
            next_cursor,
        })))
    }

    /// One account (superusers only).
    #[oai(path = "/users/:id", method = "get", operation_id = "getUser")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<Uuid>,
    ) -> Result<OneUser, ApiError> {
        let user = state
            .identity
            .get_user(&auth.0.actor(), UserId::from_uuid(id.0))
            .await
            .map_err(query_error)?;
        Ok(OneUser::Found(Json(UserView::from(user))))
    }

    /// Changes an account's full name, activity or administration (superusers only). The last
    /// active superuser cannot be deactivated or demoted.
    #[oai(path = "/users/:id", method = "patch", operation_id = "updateUser")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<Uuid>,
        body: Json<UpdateUserRequest>,
    ) -> Result<OneUser, ApiError> {
        let actor = auth.0.actor();
        if !actor.is_superuser() {
            return Err(update_error(UpdateUserError::Forbidden));
        }
        let body = body.0;
        let changes = UserChanges {
            full_name: parse_full_name(body.full_name)?,
            is_active: body.is_active,
            is_superuser: body.is_superuser,
        };
        let user = state
            .identity
            .update_user(&actor, UserId::from_uuid(id.0), &changes)
            .await
            .map_err(update_error)?;
        Ok(OneUser::Found(Json(UserView::from(user))))
    }

    /// Deactivates an account (superusers only): it can no longer sign in and its sessions end.
    /// The account and its history stay; `PATCH` with `is_active: true` restores it.
    #[oai(
        path = "/users/:id",
        method = "delete",
        operation_id = "deactivateUser"
    )]
    async fn deactivate(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<Uuid>,
    ) -> Result<OneUser, ApiError> {
        let user = state
            .identity
            .deactivate_user(&auth.0.actor(), UserId::from_uuid(id.0))
            .await
            .map_err(update_error)?;
        Ok(OneUser::Found(Json(UserView::from(user))))
    }
}
