//! The domain's labels (statuses, levels, kinds) and the schema's enum types, mapped variant by
//! variant in one place. Both directions are exhaustive matches, so a variant added on either
//! side without the other fails to compile rather than failing a query.

use crate::entity::sea_orm_active_enums as stored;

/// `From` in both directions between a domain label enum and the generated enum of the same
/// PostgreSQL type, whose variants have the same names.
macro_rules! same_labels {
    ($domain:ty, $stored:ty { $($variant:ident),+ $(,)? }) => {
        impl From<$domain> for $stored {
            fn from(label: $domain) -> Self {
                match label {
                    $(<$domain>::$variant => Self::$variant,)+
                }
            }
        }

        impl From<$stored> for $domain {
            fn from(label: $stored) -> Self {
                match label {
                    $(<$stored>::$variant => Self::$variant,)+
                }
            }
        }
    };
}

same_labels!(
    ipa_workflow::WorkflowStatus,
    stored::WorkflowStatus {
        Draft,
        Active,
        Archived
    }
);
same_labels!(
    ipa_execution::ExecutionStatus,
    stored::ExecutionStatus {
        Pending,
        Running,
        Paused,
        Completed,
        Failed,
        Cancelled,
    }
);
same_labels!(
    ipa_execution::StepStatus,
    stored::StepStatus {
        Pending,
        Running,
        Completed,
        Failed,
        Skipped,
    }
);
same_labels!(
    ipa_execution::LogLevel,
    stored::LogLevel {
        Debug,
        Info,
        Warning,
        Error,
        Critical
    }
);
same_labels!(
    ipa_agent::AgentStatus,
    stored::AgentStatus {
        Active,
        Inactive,
        Deprecated
    }
);
same_labels!(
    ipa_agent::AgentType,
    stored::AgentType {
        SemanticKernel,
        Autogen,
        Custom
    }
);

#[cfg(test)]
mod tests {
    use sea_orm::ActiveEnum;

    use super::stored;

    /// Each domain label, stored and read back, is itself, and the schema's value is spelled as
    /// the domain spells it (the macro maps by variant name; this checks that the names stand
    /// for the same words).
    macro_rules! assert_round_trip {
        ($domain:ty, $stored:ty) => {
            for label in <$domain>::ALL.iter().copied() {
                let in_schema = <$stored>::from(label);
                assert_eq!(in_schema.to_value().value.as_ref(), label.as_str());
                assert_eq!(<$domain>::from(in_schema), label);
            }
        };
    }

    #[test]
    fn every_label_is_spelled_the_same_on_both_sides() {
        assert_round_trip!(ipa_workflow::WorkflowStatus, stored::WorkflowStatus);
        assert_round_trip!(ipa_execution::ExecutionStatus, stored::ExecutionStatus);
        assert_round_trip!(ipa_execution::StepStatus, stored::StepStatus);
        assert_round_trip!(ipa_execution::LogLevel, stored::LogLevel);
        assert_round_trip!(ipa_agent::AgentStatus, stored::AgentStatus);
        assert_round_trip!(ipa_agent::AgentType, stored::AgentType);
    }
}
