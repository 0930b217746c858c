//! The agent context: LLM agent configurations and their tools. Later work adds the aggregates and
//! the per-type configuration value objects; today it holds the vocabulary the schema stores.

ipa_kernel::label_enum!(
    /// The kind of agent, which decides how its configuration reads. Stored as `agent_type`.
    AgentType, "agent type" {
        /// One model with function calling.
        SemanticKernel => "semantic_kernel",
        /// A group conversation between agents.
        Autogen => "autogen",
        /// An HTTP endpoint of the user's own.
        Custom => "custom",
    }
);

ipa_kernel::label_enum!(
    /// Whether an agent may be used. Stored as `agent_status`.
    AgentStatus, "agent status" {
        /// Usable.
        Active => "active",
        /// Temporarily unusable.
        Inactive => "inactive",
        /// Retired: no new workflow version may use it.
        Deprecated => "deprecated",
    }
);
