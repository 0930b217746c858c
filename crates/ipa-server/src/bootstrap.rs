//! The first superuser, and accounts created from the command line.
//!
//! A platform nobody can sign in to is useless, so `serve` makes sure a superuser exists:
//! from `IPA_BOOTSTRAP_ADMIN_*` when they are set, or, in the embedded mode, as `admin` with a
//! generated password that is printed once and written to a file only its owner can read.
//! Both act as the platform itself, so the audit trail records the creation with no user.

use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use ipa_api::AppState;
use ipa_identity::{CreateUserError, Email, FullName, NewUser, Password, Username};
use ipa_kernel::Actor;

use crate::config::BootstrapOptions;

/// The embedded mode's first superuser.
const EMBEDDED_ADMIN_USERNAME: &str = "admin";
/// Its email address (a reserved-looking local domain the schema's rule accepts).
const EMBEDDED_ADMIN_EMAIL: &str = "admin@ipa.local";
/// The file, in the data directory, holding its generated password.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// Creates the first superuser when none exists: from the bootstrap options when given, else in
/// the embedded mode (`embedded_data_dir`) with a generated password.
pub async fn ensure_superuser(
    state: &AppState,
    account: Option<(NewUser, Password)>,
    embedded_data_dir: Option<&Path>,
) -> anyhow::Result<()> {
    match account {
        Some((user, password)) => {
            let username = user.username.clone();
            match state
                .identity
                .create_first_superuser(user, password)
                .await
                .map_err(creation_error)?
            {
                Some(created) => {
                    tracing::info!(username = %created.username, "created the bootstrap superuser")
                }
                None => tracing::info!(
                    %username,
                    "a superuser exists; the IPA_BOOTSTRAP_ADMIN_* variables are ignored"
                ),
            }
            Ok(())
        }
        None => match embedded_data_dir {
            Some(data_dir) => ensure_embedded_admin(state, data_dir).await,
            None => Ok(()),
        },
    }
}

/// The account the bootstrap options describe, if any: checked before anything starts, so a
/// mistake is reported at once.
pub fn bootstrap_account(
    options: &BootstrapOptions,
) -> anyhow::Result<Option<(NewUser, Password)>> {
    let (email, username, password) = match (
        &options.bootstrap_admin_email,
        &options.bootstrap_admin_username,
        &options.bootstrap_admin_password,
    ) {
        (None, None, None) => return Ok(None),
        (Some(email), Some(username), Some(password)) => (email, username, password),
        _ => bail!(
            "set all of IPA_BOOTSTRAP_ADMIN_EMAIL, IPA_BOOTSTRAP_ADMIN_USERNAME and \
             IPA_BOOTSTRAP_ADMIN_PASSWORD, or none"
        ),
    };
    let user = NewUser {
        email: Email::parse(email).context("IPA_BOOTSTRAP_ADMIN_EMAIL")?,
        username: Username::parse(username).context("IPA_BOOTSTRAP_ADMIN_USERNAME")?,
        full_name: None,
        is_superuser: true,
    };
    let password = Password::parse(password.clone()).context("IPA_BOOTSTRAP_ADMIN_PASSWORD")?;
    Ok(Some((user, password)))
}

async fn ensure_embedded_admin(state: &AppState, data_dir: &Path) -> anyhow::Result<()> {
    let password = state.identity.generate_password()?;
    let user = NewUser {
        email: Email::parse(EMBEDDED_ADMIN_EMAIL)?,
        username: Username::parse(EMBEDDED_ADMIN_USERNAME)?,
        full_name: FullName::parse("Administrator").ok(),
        is_superuser: true,
    };
    // The password is on disk before the account exists, so a crash in between never leaves an
    // account whose password nobody knows. It takes the file's final name only once the account
    // is created: an earlier start's file stays untouched when a superuser exists already.
    let file = data_dir.join(INITIAL_PASSWORD_FILE);
    let pending = data_dir.join(format!("{INITIAL_PASSWORD_FILE}.pending"));
    write_private(&pending, password.expose())?;
    let shown = String::from_utf8_lossy(password.expose()).into_owned();
    let created = state.identity.create_first_superuser(user, password).await;
    if !matches!(created, Ok(Some(_))) {
        fs::remove_file(&pending).ok();
    }
    match created.map_err(creation_error)? {
        Some(created) => {
            fs::rename(&pending, &file)
                .with_context(|| format!("moving the password into {}", file.display()))?;
            print_banner(created.username.as_str(), &shown, &file);
        }
        None => tracing::debug!("a superuser exists; no first administrator to create"),
    }
    Ok(())
}

/// Writes `contents` to `path`, readable and writable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    // Replace any earlier file rather than inherit its permissions.
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("removing {}", path.display())),
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.write_all(b"\n"))
        .with_context(|| format!("writing {}", path.display()))
}

fn creation_error(error: CreateUserError) -> anyhow::Error {
    match error {
        CreateUserError::Duplicate(field) => anyhow!(
            "cannot create the first superuser: a user with this {} exists but is not an \
             active superuser; make it one with `ipa users create` or SQL, or choose another",
            field.name()
        ),
        other => anyhow!(other),
    }
}

#[allow(clippy::print_stdout)]
fn print_banner(username: &str, password: &str, file: &Path) {
    println!(
        "\n  Created the first superuser.\n    username: {username}\n    password: {password}\n  \
         The password is shown only now; it is also in {} (readable only by you).\n  \
         Sign in at POST /auth/login, then change it with PATCH /me.\n",
        file.display()
    );
}

/// `ipa users create`: creates an account acting as the platform itself.
pub async fn create_user(
    state: &AppState,
    email: &str,
    username: &str,
    full_name: Option<&str>,
    superuser: bool,
) -> anyhow::Result<()> {
    let user = NewUser {
        email: Email::parse(email).context("--email")?,
        username: Username::parse(username).context("--username")?,
        full_name: full_name
            .map(FullName::parse)
            .transpose()
            .context("--full-name")?,
        is_superuser: superuser,
    };
    let (password, generated) = match password_from_stdin()? {
        Some(password) => (
            Password::parse(password).context("the password on stdin")?,
            false,
        ),
        None => (state.identity.generate_password()?, true),
    };
    let shown = generated.then(|| String::from_utf8_lossy(password.expose()).into_owned());
    let created = state
        .identity
        .create_user(&Actor::system(), user, password)
        .await
        .map_err(|error| match error {
            CreateUserError::Duplicate(field) => {
                anyhow!("a user with this {} already exists", field.name())
            }
            other => anyhow!(other),
        })?;
    print_created(&created, shown.as_deref());
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_created(user: &ipa_identity::User, generated_password: Option<&str>) {
    let kind = if user.is_superuser {
        "superuser"
    } else {
        "user"
    };
    println!(
        "created {kind} {} ({}) id {}",
        user.username, user.email, user.id
    );
    if let Some(password) = generated_password {
        println!("password: {password}\n(shown only now)");
    }
}

/// The password piped on stdin (one line; the line break is not part of it), or `None` when
/// stdin is a terminal or empty.
fn password_from_stdin() -> anyhow::Result<Option<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut input = String::new();
    stdin
        .lock()
        .read_to_string(&mut input)
        .context("reading the password from stdin")?;
    let password = input
        .strip_suffix('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .unwrap_or(&input);
    Ok((!password.is_empty()).then(|| password.to_owned()))
}
