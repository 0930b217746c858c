//! The identity context: users, their credentials and their sign-in sessions. The user aggregate,
//! its value objects and the identity service arrive with the identity work; the schema for users
//! exists already.
