//! Typed identifiers: one newtype over a UUID per aggregate, so a workflow id can never be passed
//! where a user id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random (version 4) identifier.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }

            /// Wraps an identifier read from storage or a request.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

define_id!(
    /// Identifies a user.
    UserId
);
define_id!(
    /// Identifies a sign-in session (not its bearer token, which is secret).
    SessionId
);
define_id!(
    /// Identifies a workflow.
    WorkflowId
);
define_id!(
    /// Identifies one immutable version of a workflow.
    WorkflowVersionId
);
define_id!(
    /// Identifies one run of a workflow version.
    ExecutionId
);
define_id!(
    /// Identifies one step of an execution.
    ExecutionStepId
);
define_id!(
    /// Identifies an agent configuration.
    AgentId
);
define_id!(
    /// Identifies a tool of an agent.
    AgentToolId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_json() {
        let id = WorkflowId::new_random();
        let parsed: WorkflowId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<WorkflowId>(&json).unwrap(), id);
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert!("not-a-uuid".parse::<UserId>().is_err());
    }
}
