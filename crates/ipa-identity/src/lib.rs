//! The identity context: users, their credentials and their sign-in sessions.
//!
//! Today it holds the value objects a user is made of, each parsed once at the edge so the rest
//! of the platform never handles an unchecked email, username, name or password. The user
//! aggregate, the ports and the identity service build on them.

pub mod values;

pub use values::{Email, FullName, Password, PasswordHash, Username, ValueError};
