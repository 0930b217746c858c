//! Unit tests of the rules the [`IdentityService`] holds, run against the in-memory fakes of its
//! ports ([`crate::fakes`]): each test drives the service and asserts on the outcome it decides
//! (which error, which audit reason, which session survives), not on the fakes themselves.

use std::net::{IpAddr, Ipv4Addr};

use ipa_kernel::{Actor, ClientInfo, PageLimit, PageRequest, SessionId, UserId};
use time::Duration;

use super::{IdentityService, PasswordChange, ProfileChanges, SignedIn};
use crate::error::{
    AuthenticateError, ChangeProfileError, CreateUserError, SignInError, UniqueField,
    UpdateUserError, UserQueryError,
};
use crate::fakes::{AuditEntry, FakeHasher, FakeStore, FakeTokens};
use crate::ports::IdentityPolicy;
use crate::session::{Principal, SessionLifetimes, SignInFailure, ThrottlePolicy};
use crate::user::{NewUser, User, UserChanges, UserFilter};
use crate::values::{Email, FullName, Password, Username};

const IDLE: Duration = Duration::hours(1);
const ABSOLUTE: Duration = Duration::hours(8);
const WINDOW: Duration = Duration::minutes(15);
const MAX_PER_ACCOUNT: u32 = 3;
const MAX_PER_ADDRESS: u32 = 10;

type Service = IdentityService<FakeStore, FakeStore, FakeHasher, FakeTokens>;

/// The service over fresh fakes, with handles on the fakes to look inside them.
struct World {
    service: Service,
    store: FakeStore,
    hasher: FakeHasher,
    tokens: FakeTokens,
}

fn world() -> World {
    let store = FakeStore::default();
    let hasher = FakeHasher::default();
    let tokens = FakeTokens::default();
    let policy = IdentityPolicy {
        lifetimes: SessionLifetimes::new(IDLE, ABSOLUTE).unwrap(),
        throttle: ThrottlePolicy::new(MAX_PER_ACCOUNT, MAX_PER_ADDRESS, WINDOW).unwrap(),
    };
    World {
        service: IdentityService::new(
            store.clone(),
            store.clone(),
            hasher.clone(),
            tokens.clone(),
            policy,
        ),
        store,
        hasher,
        tokens,
    }
}

fn new_user(name: &str, is_superuser: bool) -> NewUser {
    NewUser {
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        username: Username::parse(name).unwrap(),
        full_name: None,
        is_superuser,
    }
}

fn client() -> ClientInfo {
    ClientInfo::new(Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))), None)
}

fn password(text: &str) -> Password {
    Password::parse(text.to_owned()).unwrap()
}

fn as_admin(admin: &User) -> Actor {
    Actor::user(admin.id, true, client())
}

fn as_user(user: &User) -> Actor {
    Actor::user(user.id, false, client())
}

impl World {
    /// An account stored with `password`.
    fn seed(&self, name: &str, password: &str, is_superuser: bool) -> User {
        self.store.seed(
            &new_user(name, is_superuser),
            &FakeHasher::hash_of(password),
        )
    }

    async fn sign_in(&self, identifier: &str, password: &str) -> Result<SignedIn, SignInError> {
        self.service
            .sign_in(identifier, password.to_owned(), client())
            .await
    }

    async fn principal(&self, identifier: &str, password: &str) -> (String, Principal) {
        let signed = self.sign_in(identifier, password).await.unwrap();
        let token = signed.token.expose().to_owned();
        let principal = self.service.authenticate(&token, client()).await.unwrap();
        (token, principal)
    }

    async fn authenticates(&self, token: &str) -> bool {
        match self.service.authenticate(token, client()).await {
            Ok(_) => true,
            Err(AuthenticateError::InvalidToken) => false,
            Err(other) => panic!("authentication failed: {other}"),
        }
    }

    fn failures(&self) -> Vec<(SignInFailure, Option<UserId>)> {
        self.store
            .audit()
            .into_iter()
            .filter_map(|entry| match entry {
                AuditEntry::LoginFailed {
                    reason, account, ..
                } => Some((reason, account)),
                _ => None,
            })
            .collect()
    }
}

// Signing in.

#[tokio::test]
async fn signing_in_by_username_or_email_in_any_case_opens_a_session_under_the_policy() {
    let w = world();
    let alice = w.seed("alice", "correct horse", false);
    assert_eq!(alice.last_login_at, None);

    let signed = w
        .sign_in("  ALICE@Example.com ", "correct horse")
        .await
        .unwrap();
    assert_eq!(signed.user.id, alice.id);
    assert_eq!(signed.session.user_id, alice.id);
    // The account comes back stamped with this sign-in, as storage stamped it.
    assert_eq!(signed.user.last_login_at, Some(signed.session.created_at));
    assert_eq!(
        w.store.user(alice.id).unwrap().last_login_at,
        Some(signed.session.created_at)
    );
    // The session lasts as the policy says.
    assert_eq!(
        signed.session.idle_expires_at,
        signed.session.created_at + IDLE
    );
    assert_eq!(
        signed.session.expires_at,
        signed.session.created_at + ABSOLUTE
    );
    // The attempt is settled as successful and the login audited.
    assert_eq!(w.store.attempts()[0].succeeded, Some(true));
    assert_eq!(
        w.store.audit(),
        vec![AuditEntry::LoginSucceeded {
            user: alice.id,
            session: signed.session.id
        }]
    );
    assert_eq!(w.hasher.verifications(), 1);

    let again = w.sign_in("alice", "correct horse").await.unwrap();
    assert_ne!(again.token, signed.token);
    assert_ne!(again.session.id, signed.session.id);
}

#[tokio::test]
async fn wrong_password_unknown_account_and_deactivated_account_are_indistinguishable() {
    let w = world();
    let admin = w.seed("admin", "admin password", true);
    let alice = w.seed("alice", "correct horse", false);
    let bob = w.seed("bob", "bob's password", false);
    w.service
        .deactivate_user(&as_admin(&admin), bob.id)
        .await
        .unwrap();

    let wrong = w.sign_in("alice", "wrong horse").await.unwrap_err();
    let unknown = w.sign_in("nobody", "correct horse").await.unwrap_err();
    let inactive = w.sign_in("bob", "bob's password").await.unwrap_err();
    let inactive_wrong = w.sign_in("bob", "not bob's").await.unwrap_err();
    for error in [&wrong, &unknown, &inactive, &inactive_wrong] {
        assert!(
            matches!(error, SignInError::InvalidCredentials),
            "{error:?}"
        );
        assert_eq!(error.to_string(), wrong.to_string());
    }
    // Every outcome costs exactly one verification, the unknown account's included.
    assert_eq!(w.hasher.verifications(), 4);
    // Only the audit trail knows which it was.
    assert_eq!(
        w.failures(),
        vec![
            (SignInFailure::WrongPassword, Some(alice.id)),
            (SignInFailure::UnknownAccount, None),
            (SignInFailure::InactiveAccount, Some(bob.id)),
            (SignInFailure::WrongPassword, Some(bob.id)),
        ]
    );
    // Each attempt was settled as failed, so it counts against the throttle.
    assert!(
        w.store
            .attempts()
            .iter()
            .all(|attempt| attempt.succeeded == Some(false))
    );
}

#[tokio::test]
async fn a_password_too_long_to_check_fails_after_the_usual_verification() {
    let w = world();
    let huge = "x".repeat(Password::MAX_PRESENTED_CHARS + 1);
    // Even an account whose hash would match it is refused: such input is never hashed.
    let mallory = w.seed("mallory", &huge, false);
    let error = w.sign_in("mallory", &huge).await.unwrap_err();
    assert!(
        matches!(error, SignInError::InvalidCredentials),
        "{error:?}"
    );
    assert_eq!(w.hasher.verifications(), 1);
    assert_eq!(
        w.failures(),
        vec![(SignInFailure::WrongPassword, Some(mallory.id))]
    );
    // At the limit, the password is checked.
    let long = "y".repeat(Password::MAX_PRESENTED_CHARS);
    w.seed("longpass", &long, false);
    w.sign_in("longpass", &long).await.unwrap();
}

#[tokio::test]
async fn a_password_set_under_older_rules_still_signs_in() {
    let w = world();
    // Shorter than today's eight characters.
    let old = w.seed("oldtimer", "abc", false);
    assert_eq!(w.sign_in("oldtimer", "abc").await.unwrap().user.id, old.id);
}

#[tokio::test]
async fn a_throttled_sign_in_is_refused_before_its_password_is_checked() {
    let w = world();
    let alice = w.seed("alice", "correct horse", false);
    for _ in 0..MAX_PER_ACCOUNT {
        w.sign_in("alice", "wrong").await.unwrap_err();
    }
    let first_failure = w.store.attempts()[0].at;
    w.store
        .advance(Duration::minutes(10) + Duration::milliseconds(500));

    let error = w.sign_in("alice", "correct horse").await.unwrap_err();
    let expected = (first_failure + WINDOW - w.store.now())
        .as_seconds_f64()
        .ceil();
    let SignInError::Throttled {
        retry_after_seconds,
    } = error
    else {
        panic!("not throttled: {error:?}")
    };
    assert_eq!(retry_after_seconds as f64, expected);
    assert_eq!(retry_after_seconds, 300);
    // The right password was not even verified, no attempt was admitted, and the refusal is
    // audited as throttled against the account.
    assert_eq!(w.hasher.verifications(), 3);
    assert_eq!(w.store.attempts().len(), 3);
    assert_eq!(
        w.failures().last(),
        Some(&(SignInFailure::Throttled, Some(alice.id)))
    );

    // Once the oldest failure leaves the window, the next attempt is admitted.
    w.store.advance(Duration::minutes(5));
    w.sign_in("alice", "correct horse").await.unwrap();
}

#[tokio::test]
async fn the_lockout_is_announced_in_whole_seconds_and_never_as_zero() {
    let w = world();
    w.seed("alice", "correct horse", false);
    for _ in 0..MAX_PER_ACCOUNT {
        w.sign_in("alice", "wrong").await.unwrap_err();
    }
    let first_failure = w.store.attempts()[0].at;
    // One millisecond of lockout is left.
    w.store
        .advance(first_failure + WINDOW - Duration::milliseconds(1) - w.store.now());
    let error = w.sign_in("alice", "correct horse").await.unwrap_err();
    assert!(
        matches!(
            error,
            SignInError::Throttled {
                retry_after_seconds: 1
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_failure_of_the_platform_leaves_the_attempt_unsettled_and_unaudited() {
    let w = world();
    w.seed("alice", "correct horse", false);
    w.tokens.fail();
    let error = w.sign_in("alice", "correct horse").await.unwrap_err();
    assert!(matches!(error, SignInError::Crypto(_)), "{error:?}");
    assert_eq!(w.store.attempts()[0].succeeded, None);
    assert!(w.failures().is_empty());

    let w = world();
    w.seed("alice", "correct horse", false);
    w.hasher.fail();
    let error = w.sign_in("alice", "correct horse").await.unwrap_err();
    assert!(matches!(error, SignInError::Crypto(_)), "{error:?}");
    assert_eq!(w.store.attempts()[0].succeeded, None);
    assert!(w.failures().is_empty());
}

// Authentication and sessions.

#[tokio::test]
async fn a_token_authenticates_as_its_session_until_signed_out() {
    let w = world();
    let admin = w.seed("admin", "admin password", true);
    let alice = w.seed("alice", "correct horse", false);
    let signed = w.sign_in("alice", "correct horse").await.unwrap();
    let token = signed.token.expose().to_owned();

    let principal = w.service.authenticate(&token, client()).await.unwrap();
    assert_eq!(
        principal,
        Principal {
            user_id: alice.id,
            is_superuser: false,
            session_id: signed.session.id,
            client: client(),
        }
    );
    let (_, admin_principal) = w.principal("admin", "admin password").await;
    assert_eq!(admin_principal.user_id, admin.id);
    assert!(admin_principal.is_superuser);

    assert!(!w.authenticates("tok-unknown").await);
    assert!(!w.authenticates("").await);

    w.service.sign_out(&principal).await.unwrap();
    assert!(!w.authenticates(&token).await);
    assert!(w.store.is_revoked(signed.session.id));
    assert!(w.store.audit().contains(&AuditEntry::Logout {
        user: alice.id,
        session: signed.session.id
    }));
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_absolute_lifetime() {
    let w = world();
    w.seed("alice", "correct horse", false);
    let idle_token = w
        .sign_in("alice", "correct horse")
        .await
        .unwrap()
        .token
        .expose()
        .to_owned();
    let busy_token = w
        .sign_in("alice", "correct horse")
        .await
        .unwrap()
        .token
        .expose()
        .to_owned();

    // Used every 50 minutes, a session outlives its idle timeout…
    for _ in 0..9 {
        w.store.advance(Duration::minutes(50));
        assert!(w.authenticates(&busy_token).await);
    }
    // …while the one left alone ended after an hour.
    assert!(!w.authenticates(&idle_token).await);
    // 7.5 hours in; the absolute lifetime of 8 hours ends it however busy it is.
    w.store.advance(Duration::minutes(31));
    assert!(!w.authenticates(&busy_token).await);
}

#[tokio::test]
async fn use_pushes_the_idle_expiry_forward_by_the_policys_idle_timeout_only() {
    let w = world();
    w.seed("alice", "correct horse", false);
    let signed = w.sign_in("alice", "correct horse").await.unwrap();
    let token = signed.token.expose().to_owned();
    w.store.advance(Duration::minutes(50));
    assert!(w.authenticates(&token).await);
    // An hour and a minute after that use, the session has ended.
    w.store.advance(IDLE + Duration::minutes(1));
    assert!(!w.authenticates(&token).await);
    assert!(!w.store.is_revoked(signed.session.id));
}

#[tokio::test]
async fn deactivating_an_account_ends_its_sessions_and_its_sign_ins() {
    let w = world();
    let admin = w.seed("admin", "admin password", true);
    let alice = w.seed("alice", "correct horse", false);
    let (token, principal) = w.principal("alice", "correct horse").await;

    let deactivated = w
        .service
        .deactivate_user(&as_admin(&admin), alice.id)
        .await
        .unwrap();
    assert!(!deactivated.is_active);
    assert!(!w.authenticates(&token).await);
    assert!(w.store.is_revoked(principal.session_id));
    let error = w.sign_in("alice", "correct horse").await.unwrap_err();
    assert!(
        matches!(error, SignInError::InvalidCredentials),
        "{error:?}"
    );
}

// A user's own profile.

#[tokio::test]
async fn me_is_the_principals_own_account() {
    let w = world();
    let alice = w.seed("alice", "correct horse", false);
    let (_, principal) = w.principal("alice", "correct horse").await;
    let me = w.service.me(&principal).await.unwrap();
    assert_eq!(me.id, alice.id);
    assert!(me.last_login_at.is_some());

    let ghost = Principal {
        user_id: UserId::new_random(),
        ..principal
    };
    assert!(matches!(
        w.service.me(&ghost).await,
        Err(UserQueryError::NotFound)
    ));
}

#[tokio::test]
async fn a_password_change_needs_the_current_password() {
    let w = world();
    w.seed("alice", "correct horse", false);
    let (_, principal) = w.principal("alice", "correct horse").await;
    let verified = w.hasher.verifications();

    let change = |current: String| ProfileChanges {
        password: Some(PasswordChange {
            current,
            new: password("battery staple"),
        }),
        full_name: Some(Some(FullName::parse("Alice").unwrap())),
    };
    let error = w
        .service
        .update_profile(&principal, change("wrong horse".to_owned()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ChangeProfileError::WrongCurrentPassword),
        "{error:?}"
    );
    assert_eq!(w.hasher.verifications(), verified + 1);
    // A current password too long to be one is wrong without being verified.
    let error = w
        .service
        .update_profile(
            &principal,
            change("x".repeat(Password::MAX_PRESENTED_CHARS + 1)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ChangeProfileError::WrongCurrentPassword),
        "{error:?}"
    );
    assert_eq!(w.hasher.verifications(), verified + 1);

    // Nothing changed: not the password, not the name that came with it.
    w.sign_in("alice", "correct horse").await.unwrap();
    assert!(w.sign_in("alice", "battery staple").await.is_err());
    assert_eq!(w.service.me(&principal).await.unwrap().full_name, None);
}

#[tokio::test]
async fn a_new_password_replaces_the_old_and_ends_every_other_session() {
    let w = world();
    w.seed("alice", "correct horse", false);
    let (this_token, this) = w.principal("alice", "correct horse").await;
    let (other_token, _) = w.principal("alice", "correct horse").await;

    let user = w
        .service
        .update_profile(
            &this,
            ProfileChanges {
                password: Some(PasswordChange {
                    current: "correct horse".to_owned(),
                    new: password("battery staple"),
                }),
                full_name: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(user.id, this.user_id);
    assert!(w.authenticates(&this_token).await);
    assert!(!w.authenticates(&other_token).await);
    let error = w.sign_in("alice", "correct horse").await.unwrap_err();
    assert!(
        matches!(error, SignInError::InvalidCredentials),
        "{error:?}"
    );
    w.sign_in("alice", "battery staple").await.unwrap();
}

#[tokio::test]
async fn a_name_change_needs_no_password_and_may_clear_the_name() {
    let w = world();
    w.seed("alice", "correct horse", false);
    let (token, principal) = w.principal("alice", "correct horse").await;
    let (other_token, _) = w.principal("alice", "correct horse").await;
    let verified = w.hasher.verifications();

    let named = w
        .service
        .update_profile(
            &principal,
            ProfileChanges {
                full_name: Some(Some(FullName::parse("Alice Liddell").unwrap())),
                password: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        named.full_name.as_ref().map(FullName::as_str),
        Some("Alice Liddell")
    );
    assert_eq!(w.hasher.verifications(), verified);
    // Sessions are untouched by a name change.
    assert!(w.authenticates(&token).await);
    assert!(w.authenticates(&other_token).await);

    let cleared = w
        .service
        .update_profile(
            &principal,
            ProfileChanges {
                full_name: Some(None),
                password: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.full_name, None);

    let unchanged = w
        .service
        .update_profile(&principal, ProfileChanges::default())
        .await
        .unwrap();
    assert_eq!(unchanged, w.store.user(principal.user_id).unwrap());
}

#[tokio::test]
async fn a_profile_change_of_a_vanished_account_is_not_found() {
    let w = world();
    w.seed("alice", "correct horse", false);
    let (_, principal) = w.principal("alice", "correct horse").await;
    let ghost = Principal {
        user_id: UserId::new_random(),
        session_id: SessionId::new_random(),
        ..principal
    };
    let with_password = ProfileChanges {
        password: Some(PasswordChange {
            current: "correct horse".to_owned(),
            new: password("battery staple"),
        }),
        full_name: None,
    };
    let name_only = ProfileChanges {
        full_name: Some(None),
        password: None,
    };
    for changes in [with_password, name_only, ProfileChanges::default()] {
        let error = w.service.update_profile(&ghost, changes).await.unwrap_err();
        assert!(matches!(error, ChangeProfileError::NotFound), "{error:?}");
    }
}

// Administration.

#[tokio::test]
async fn only_superusers_create_accounts_and_theirs_sign_in() {
    let w = world();
    let admin = w.seed("admin", "admin password", true);
    let alice = w.seed("alice", "correct horse", false);

    let error = w
        .service
        .create_user(
            &as_user(&alice),
            new_user("carol", false),
            password("carol pw 1"),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, CreateUserError::Forbidden), "{error:?}");
    assert!(w.sign_in("carol", "carol pw 1").await.is_err());

    let carol = w
        .service
        .create_user(
            &as_admin(&admin),
            new_user("carol", false),
            password("carol pw 1"),
        )
        .await
        .unwrap();
    assert!(carol.is_active);
    assert!(!carol.is_superuser);
    assert_eq!(
        w.sign_in("carol", "carol pw 1").await.unwrap().user.id,
        carol.id
    );
}

#[tokio::test]
async fn a_taken_email_or_username_is_a_conflict_naming_the_field() {
    let w = world();
    let admin = w.seed("admin", "admin password", true);
    w.seed("alice", "correct horse", false);

    let same_username = NewUser {
        email: Email::parse("other@example.com").unwrap(),
        ..new_user("alice", false)
    };
    let error = w
        .service
        .create_user(&as_admin(&admin), same_username, password("some password"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CreateUserError::Duplicate(UniqueField::Username)),
        "{error:?}"
    );
    let same_email = NewUser {
        email: Email::parse("ALICE@example.com").unwrap(),
        ..new_user("alice2", false)
    };
    let error = w
        .service
        .create_user(&as_admin(&admin), same_email, password("some password"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CreateUserError::Duplicate(UniqueField::Email)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_failing_hasher_creates_no_account() {
    let w = world();
    let admin = w.seed("admin", "admin password", true);
    w.hasher.fail();
    let error = w
        .service
        .create_user(
            &as_admin(&admin),
            new_user("carol", false),
            password("carol pw 1"),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, CreateUserError::Crypto(_)), "{error:?}");
    let page = w
        .service
        .list_users(
            &Actor::system(),
            &UserFilter::default(),
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

#[tokio::test]
async fn the_first_superuser_is_created_once_and_always_as_a_superuser() {
    let w = world();
    // Asked for as a plain user, it is made a superuser all the same.
    let root = w
        .service
        .create_first_superuser(new_user("root", false), password("root password"))
        .await
        .unwrap()
        .unwrap();
    assert!(root.is_superuser);
    assert!(root.is_active);
    let (_, principal) = w.principal("root", "root password").await;
    assert!(principal.is_superuser);

    let second = w
        .service
        .create_first_superuser(new_user("root2", true), password("root password"))
        .await
        .unwrap();
    assert_eq!(second, None);
    assert!(w.sign_in("root2", "root password").await.is_err());
}

#[tokio::test]
async fn the_first_superuser_is_created_beside_plain_users() {
    let w = world();
    w.seed("alice", "correct horse", false);
    let root = w
        .service
        .create_first_superuser(new_user("root", true), password("root password"))
        .await
        .unwrap();
    assert!(root.is_some_and(|root| root.is_superuser));
}

#[tokio::test]
async fn reading_and_listing_accounts_is_for_superusers() {
    let w = world();
    let admin = w.seed("admin", "admin password", true);
    let alice = w.seed("alice", "correct horse", false);

    // Not even one's own account is read through administration.
    assert!(matches!(
        w.service.get_user(&as_user(&alice), alice.id).await,
        Err(UserQueryError::Forbidden)
    ));
    assert!(matches!(
        w.service
            .list_users(
                &as_user(&alice),
                &UserFilter::default(),
                PageRequest::default()
            )
            .await,
        Err(UserQueryError::Forbidden)
    ));

    assert_eq!(
        w.service
            .get_user(&as_admin(&admin), alice.id)
            .await
            .unwrap(),
        alice
    );
    assert!(matches!(
        w.service
            .get_user(&as_admin(&admin), UserId::new_random())
            .await,
        Err(UserQueryError::NotFound)
    ));
}

#[tokio::test]
async fn accounts_are_listed_newest_first_in_pages_and_filtered() {
    let w = world();
    let admin = w.seed("admin", "admin password", true);
    let alice = w.seed("alice", "correct horse", false);
    let bob = w.seed("bob", "bob password", false);
    let carol = w.seed("carol", "carol password", false);
    w.service
        .deactivate_user(&as_admin(&admin), bob.id)
        .await
        .unwrap();

    let limit = PageLimit::parse(Some(2)).unwrap();
    let ids = |page: &ipa_kernel::Page<User>| page.items.iter().map(|u| u.id).collect::<Vec<_>>();
    let first = w
        .service
        .list_users(
            &as_admin(&admin),
            &UserFilter::default(),
            PageRequest { after: None, limit },
        )
        .await
        .unwrap();
    assert_eq!(ids(&first), vec![carol.id, bob.id]);
    assert!(first.next.is_some());
    let second = w
        .service
        .list_users(
            &as_admin(&admin),
            &UserFilter::default(),
            PageRequest {
                after: first.next,
                limit,
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&second), vec![alice.id, admin.id]);
    assert_eq!(second.next, None);

    let inactive = w
        .service
        .list_users(
            &as_admin(&admin),
            &UserFilter {
                is_active: Some(false),
                search_prefix: None,
            },
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(ids(&inactive), vec![bob.id]);
}

#[tokio::test]
async fn only_superusers_change_accounts() {
    let w = world();
    w.seed("admin", "admin password", true);
    let alice = w.seed("alice", "correct horse", false);
    let bob = w.seed("bob", "bob password", false);
    let promote = UserChanges {
        is_superuser: Some(true),
        ..UserChanges::default()
    };
    for target in [alice.id, bob.id] {
        assert!(matches!(
            w.service
                .update_user(&as_user(&alice), target, &promote)
                .await,
            Err(UpdateUserError::Forbidden)
        ));
        assert!(matches!(
            w.service.deactivate_user(&as_user(&alice), target).await,
            Err(UpdateUserError::Forbidden)
        ));
    }
    assert!(!w.store.user(alice.id).unwrap().is_superuser);
    assert!(w.store.user(bob.id).unwrap().is_active);
}

#[tokio::test]
async fn the_last_active_superuser_keeps_its_rights() {
    let w = world();
    let admin = w.seed("admin", "admin password", true);
    let alice = w.seed("alice", "correct horse", false);
    let demote = UserChanges {
        is_superuser: Some(false),
        ..UserChanges::default()
    };
    assert!(matches!(
        w.service.deactivate_user(&as_admin(&admin), admin.id).await,
        Err(UpdateUserError::LastSuperuser)
    ));
    assert!(matches!(
        w.service
            .update_user(&as_admin(&admin), admin.id, &demote)
            .await,
        Err(UpdateUserError::LastSuperuser)
    ));
    // A name change of the last superuser is fine.
    let renamed = w
        .service
        .update_user(
            &as_admin(&admin),
            admin.id,
            &UserChanges {
                full_name: Some(Some(FullName::parse("Root").unwrap())),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    assert!(renamed.is_superuser && renamed.is_active);

    // With a second superuser, the first may step down.
    let promoted = w
        .service
        .update_user(
            &as_admin(&admin),
            alice.id,
            &UserChanges {
                is_superuser: Some(true),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    assert!(promoted.is_superuser);
    let demoted = w
        .service
        .update_user(&as_admin(&admin), admin.id, &demote)
        .await
        .unwrap();
    assert!(!demoted.is_superuser);
    assert!(matches!(
        w.service.deactivate_user(&as_admin(&alice), alice.id).await,
        Err(UpdateUserError::LastSuperuser)
    ));
    assert!(matches!(
        w.service
            .update_user(&as_admin(&alice), UserId::new_random(), &demote)
            .await,
        Err(UpdateUserError::NotFound)
    ));
}

#[tokio::test]
async fn generated_passwords_are_valid_and_differ() {
    let w = world();
    let first = w.service.generate_password().unwrap();
    let second = w.service.generate_password().unwrap();
    assert_ne!(first, second);
    assert!(Password::parse(String::from_utf8(first.expose().to_vec()).unwrap()).is_ok());
    w.tokens.fail();
    assert!(w.service.generate_password().is_err());
}
