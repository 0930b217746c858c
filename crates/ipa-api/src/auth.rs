//! Authentication: the bearer security scheme every protected operation declares, the client
//! information every request's actor carries, and the sign-in, sign-out and own-profile
//! endpoints.

use std::net::IpAddr;

use ipa_identity::{
    AuthenticateError, ChangeProfileError, Password, PasswordChange, Principal, ProfileChanges,
    SignInError, UserQueryError,
};
use ipa_kernel::{ClientInfo, UserAgent};
use poem::Request;
use poem::web::Data;
use poem_openapi::auth::Bearer;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme};
use time::OffsetDateTime;

use crate::ApiTags;
use crate::error::ApiError;
use crate::state::AppState;
use crate::users::{UserView, parse_full_name, value_error};

/// A bearer token from `POST /auth/login`, sent as `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "authenticate")]
pub struct BearerAuth(pub Principal);

async fn authenticate(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| poem::Error::from(missing_state()))?;
    state
        .identity
        .authenticate(&bearer.token, client_info(req))
        .await
        .map_err(|error| {
            poem::Error::from(match error {
                AuthenticateError::InvalidToken => {
                    ApiError::unauthorized("invalid_token", error.to_string())
                }
                AuthenticateError::Storage(storage) => ApiError::storage(&storage),
            })
        })
}

fn missing_state() -> ApiError {
    ApiError::internal(&std::io::Error::other(
        "the application state is not attached to the request",
    ))
}

/// The client a request came from: its address (IPv4-mapped addresses as IPv4) and its
/// user agent, cleaned.
pub fn client_info(req: &Request) -> ClientInfo {
    let ip = req
        .remote_addr()
        .as_socket_addr()
        .map(|addr| addr.ip().to_canonical())
        .filter(|ip: &IpAddr| !ip.is_unspecified());
    let user_agent = req
        .headers()
        .get(poem::http::header::USER_AGENT)
        .and_then(|value| UserAgent::parse(&String::from_utf8_lossy(value.as_bytes())));
    ClientInfo::new(ip, user_agent)
}

/// Sign-in, sign-out and the signed-in user's own account.
pub struct AuthApi;

/// Credentials to sign in with.
#[derive(Object)]
struct LoginRequest {
    /// The account's email address (any case) or username.
    identifier: String,
    /// The account's password.
    #[oai(write_only)]
    password: String,
}

/// A new session.
#[derive(Object)]
struct LoginResponse {
    /// The bearer token. It is shown only now: store it safely.
    access_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// When the session ends unless used before (each use pushes it forward).
    idle_expires_at: OffsetDateTime,
    /// When the session ends whatever happens.
    expires_at: OffsetDateTime,
    /// The signed-in account.
    user: UserView,
}

#[derive(ApiResponse)]
enum LoginResult {
    /// Signed in.
    #[oai(status = 200)]
    SignedIn(Json<LoginResponse>),
}

#[derive(ApiResponse)]
enum LogoutResult {
    /// The session is ended; its token no longer works.
    #[oai(status = 204)]
    SignedOut,
}

#[derive(ApiResponse)]
enum MeResult {
    /// The signed-in account.
    #[oai(status = 200)]
    Me(Json<UserView>),
}

/// Changes to one's own account: a field left out, or sent as `null`, stays as it is, unless its
/// description says `null` clears it. A password change needs the current password and ends
/// every other session of the account.
#[derive(Object)]
struct UpdateMeRequest {
    /// A new full name; `null` clears it.
    full_name: MaybeUndefined<String>,
    /// The current password, required with `new_password`.
    #[oai(write_only)]
    current_password: Option<String>,
    /// A new password: 8 to 128 characters.
    #[oai(write_only)]
    new_password: Option<String>,
}

fn sign_in_error(error: SignInError) -> ApiError {
    match error {
        SignInError::InvalidCredentials => {
            ApiError::unauthorized("invalid_credentials", error.to_string())
        }
        SignInError::BlankIdentifier => ApiError::unprocessable(
            "invalid_field",
            "Give the email address or username of the account to sign in to.",
            "/identifier",
        ),
        SignInError::Throttled {
            retry_after_seconds,
        } => ApiError::too_many_requests(
            format!(
                "Too many failed sign-ins for this account or from this address; retry in {retry_after_seconds} seconds."
            ),
            retry_after_seconds,
        ),
        SignInError::Storage(storage) => ApiError::storage(&storage),
        SignInError::Crypto(crypto) => ApiError::internal(&crypto),
    }
}

fn profile_error(error: ChangeProfileError) -> ApiError {
    match error {
        ChangeProfileError::WrongCurrentPassword => ApiError::unprocessable(
            "wrong_current_password",
            "The current password is wrong.",
            "/current_password",
        ),
        ChangeProfileError::NotFound => account_gone(),
        ChangeProfileError::Storage(storage) => ApiError::storage(&storage),
        ChangeProfileError::Crypto(crypto) => ApiError::internal(&crypto),
    }
}

/// The answer when the signed-in account vanished after its token was checked (a race with its
/// deactivation, which ends its sessions): the token no longer stands for anyone.
fn account_gone() -> ApiError {
    ApiError::unauthorized(
        "invalid_token",
        "The signed-in account no longer exists or is deactivated; sign in again.",
    )
}

pub(crate) fn query_error(error: UserQueryError) -> ApiError {
    match error {
        UserQueryError::Forbidden => ApiError::forbidden(error.to_string()),
        UserQueryError::NotFound => ApiError::not_found(error.to_string()),
        UserQueryError::Storage(storage) => ApiError::storage(&storage),
    }
}

fn profile_changes(body: UpdateMeRequest) -> Result<ProfileChanges, ApiError> {
    let full_name = parse_full_name(body.full_name)?;
    let password = match (body.current_password, body.new_password) {
        (None, None) => None,
        (Some(current), Some(new)) => Some(PasswordChange {
            current,
            new: Password::parse(new).map_err(|error| value_error(&error, "/new_password"))?,
        }),
        (None, Some(_)) => {
            return Err(ApiError::unprocessable(
                "current_password_required",
                "Changing the password needs the current password in `current_password`.",
                "/current_password",
            ));
        }
        (Some(_), None) => {
            return Err(ApiError::unprocessable(
                "new_password_required",
                "`current_password` was given without `new_password`.",
                "/new_password",
            ));
        }
    };
    Ok(ProfileChanges {
        full_name,
        password,
    })
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Signs in with an email address or username and a password, returning a bearer token.
    ///
    /// An unknown account, a wrong password and a deactivated account all get the same 401.
    /// After repeated failures for one account or from one address, attempts get 429 with
    /// `Retry-After` until the window passes.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> Result<LoginResult, ApiError> {
        let Json(body) = body;
        let signed_in = state
            .identity
            .sign_in(&body.identifier, body.password, client_info(req))
            .await
            .map_err(sign_in_error)?;
        Ok(LoginResult::SignedIn(Json(LoginResponse {
            access_token: signed_in.token.expose().to_owned(),
            token_type: "Bearer".to_owned(),
            idle_expires_at: signed_in.session.idle_expires_at,
            expires_at: signed_in.session.expires_at,
            user: UserView::from(signed_in.user),
        })))
    }

    /// Signs out: ends the session of the presented token.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<LogoutResult, ApiError> {
        state
            .identity
            .sign_out(&auth.0)
            .await
            .map_err(|error| ApiError::storage(&error))?;
        Ok(LogoutResult::SignedOut)
    }

    /// The signed-in user's account.
    #[oai(path = "/me", method = "get", operation_id = "getMe")]
    async fn me(&self, state: Data<&AppState>, auth: BearerAuth) -> Result<MeResult, ApiError> {
        let user = state
            .identity
            .me(&auth.0)
            .await
            .map_err(|error| match error {
                UserQueryError::Storage(storage) => ApiError::storage(&storage),
                UserQueryError::Forbidden | UserQueryError::NotFound => account_gone(),
            })?;
        Ok(MeResult::Me(Json(UserView::from(user))))
    }

    /// Changes the signed-in user's full name and/or password.
    #[oai(path = "/me", method = "patch", operation_id = "updateMe")]
    async fn update_me(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<UpdateMeRequest>,
    ) -> Result<MeResult, ApiError> {
        let changes = profile_changes(body.0)?;
        let user = state
            .identity
            .update_profile(&auth.0, changes)
            .await
            .map_err(profile_error)?;
        Ok(MeResult::Me(Json(UserView::from(user))))
    }
}
