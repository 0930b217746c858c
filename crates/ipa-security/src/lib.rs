//! Cryptography adapters of the platform (ADR 0004): the identity context's password hasher
//! (argon2id at explicit parameters, off the async threads), its bearer tokens (random secrets of
//! which only a SHA-256 digest is stored), and the agent context's secret sealer (secret values of
//! agent configurations encrypted with the server's key before they are stored).

mod password;
mod secrets;
mod token;

pub use password::{ARGON2_M_COST_KIB, ARGON2_P_COST, ARGON2_T_COST, Argon2Hasher};
pub use secrets::{OpenError, SecretBox, SecretKey, SecretKeyError};
pub use token::{RandomTokens, TOKEN_PREFIX};
