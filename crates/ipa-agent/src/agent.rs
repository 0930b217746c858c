//! The agent aggregate: its settings, its status's transitions, the checks a
//! group conversation's participants must pass, and the list filter.

use std::collections::{HashMap, HashSet};

use ipa_kernel::{AgentId, Keyset, UserId, WorkflowId};
use time::OffsetDateTime;

use crate::config::AgentConfiguration;
use crate::ports::DocumentProblem;
use crate::secret::StoredSecret;
use crate::values::{
    AgentName, Description, MaxTokens, ModelName, NameFragment, SystemPrompt, Temperature,
};
use crate::{AgentStatus, AgentType};

impl AgentStatus {
    /// Whether an agent may move from this status to `to`: active and inactive swap freely;
    /// either may be deprecated; a deprecated agent may be reinstated as inactive (and then
    /// activated), so a mistaken deprecation is not final.
    pub fn can_become(self, to: AgentStatus) -> bool {
        use AgentStatus::{Active, Deprecated, Inactive};
        matches!(
            (self, to),
            (Active, Inactive)
                | (Inactive, Active)
                | (Active | Inactive, Deprecated)
                | (Deprecated, Inactive)
        )
    }
}

/// Everything about an agent that its owner sets.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSettings {
    /// Its name.
    pub name: AgentName,
    /// What it is for.
    pub description: Option<Description>,
    /// Whether it may be used.
    pub status: AgentStatus,
    /// Its type's configuration, secrets sealed.
    pub configuration: AgentConfiguration<StoredSecret>,
    /// The instructions its model receives first.
    pub system_prompt: Option<SystemPrompt>,
    /// The model it asks for.
    pub model: Option<ModelName>,
    /// Sampling temperature.
    pub temperature: Temperature,
    /// The longest answer, in tokens.
    pub max_tokens: MaxTokens,
}

impl AgentSettings {
    /// The agent's type, which its configuration decides.
    pub fn agent_type(&self) -> AgentType {
        self.configuration.agent_type()
    }
}

/// An LLM agent of the shared catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    /// Its identifier.
    pub id: AgentId,
    /// The user who created it; with superusers, the only one who may change it (row level
    /// security enforces this).
    pub owner: UserId,
    /// What its owner set.
    pub settings: AgentSettings,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl Agent {
    /// Its position in lists, which are ordered newest first.
    pub fn keyset(&self) -> Keyset {
        Keyset::new(self.created_at, self.id.as_uuid())
    }
}

/// What storage knows about an agent named as a participant, or reached through one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticipantState {
    /// Its type.
    pub agent_type: AgentType,
    /// Its status.
    pub status: AgentStatus,
    /// Whether the acting user may see it (and so name it).
    pub visible: bool,
    /// Its own participants, when it is a group conversation.
    pub participants: Vec<AgentId>,
}

/// The problems of `agent`'s participants, given what storage knows about every agent reachable
/// from them: each must exist and be visible to the author, must not be deprecated or the agent
/// itself, and no group conversation may reach back to the agent (a conversation that contains
/// itself never ends). Pointers are into the request body.
pub fn participant_problems(
    agent: AgentId,
    participants: &[AgentId],
    graph: &HashMap<AgentId, ParticipantState>,
) -> Vec<DocumentProblem> {
    let mut problems = Vec::new();
    for (index, participant) in participants.iter().enumerate() {
        let pointer = format!("/configuration/participants/{index}");
        let message = if *participant == agent {
            Some("an agent cannot take part in its own conversation".to_owned())
        } else {
            match graph.get(participant) {
                None | Some(ParticipantState { visible: false, .. }) => {
                    Some(format!("agent {participant} does not exist"))
                }
                Some(state) if state.status == AgentStatus::Deprecated => Some(format!(
                    "agent {participant} is deprecated; choose another agent"
                )),
                Some(_) if reaches(*participant, agent, graph) => Some(format!(
                    "agent {participant}'s conversation includes this agent (directly or through \
                     other groups); a group cannot contain itself"
                )),
                Some(_) => None,
            }
        };
        if let Some(message) = message {
            problems.push(DocumentProblem { pointer, message });
        }
    }
    problems
}

/// Whether `target` can be reached from `start` through group conversations' participants.
fn reaches(start: AgentId, target: AgentId, graph: &HashMap<AgentId, ParticipantState>) -> bool {
    let mut seen = HashSet::new();
    let mut pending = vec![start];
    while let Some(current) = pending.pop() {
        if !seen.insert(current) {
            continue;
        }
        if let Some(state) = graph.get(&current) {
            for next in &state.participants {
                if *next == target {
                    return true;
                }
                pending.push(*next);
            }
        }
    }
    false
}

/// A workflow whose current version uses an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsingWorkflow {
    /// The workflow.
    pub id: WorkflowId,
    /// Its name, when the acting user may see it.
    pub name: Option<String>,
}

/// A group conversation that has an agent among its participants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsingGroup {
    /// The group agent.
    pub id: AgentId,
    /// Its name, when the acting user may see it.
    pub name: Option<String>,
}

/// What still uses an agent, keeping it from being deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentUsage {
    /// Workflows whose current version has a step with the agent.
    pub workflows: Vec<UsingWorkflow>,
    /// Group conversations it takes part in.
    pub groups: Vec<UsingGroup>,
}

impl AgentUsage {
    /// Whether nothing uses the agent.
    pub fn is_empty(&self) -> bool {
        self.workflows.is_empty() && self.groups.is_empty()
    }
}

impl std::fmt::Display for AgentUsage {
    /// Names what the user may see and counts the rest, so a refusal never reveals another
    /// user's workflow: "The agent is used by the current versions of workflow "Invoices" (…)
    /// and 2 workflows of other users, and is a participant of group agent "Desk" (…)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        /// `"A" (id)`, `"A" (id) and "B" (id)`, `"A" (id), "B" (id) and "C" (id)`.
        fn and_list(items: &[String]) -> String {
            match items {
                [] => String::new(),
                [one] => one.clone(),
                [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
            }
        }
        /// The items named (after `noun`, plural when several) and the hidden ones counted:
        /// `workflows "A" (id), "B" (id) and 1 workflow of another user`.
        fn list<'a>(items: impl Iterator<Item = (String, Option<&'a str>)>, noun: &str) -> String {
            let mut named = Vec::new();
            let mut hidden = 0_usize;
            for (id, name) in items {
                match name {
                    Some(name) => named.push(format!("\"{name}\" ({id})")),
                    None => hidden += 1,
                }
            }
            let plural = if named.len() == 1 { "" } else { "s" };
            if let Some(first) = named.first_mut() {
                *first = format!("{noun}{plural} {first}");
            }
            match hidden {
                0 => {}
                1 => named.push(format!("1 {noun} of another user")),
                _ => named.push(format!("{hidden} {noun}s of other users")),
            }
            and_list(&named)
        }
        let mut parts = Vec::new();
        if !self.workflows.is_empty() {
            let versions = if self.workflows.len() == 1 {
                "version"
            } else {
                "versions"
            };
            let workflows = list(
                self.workflows
                    .iter()
                    .map(|w| (w.id.to_string(), w.name.as_deref())),
                "workflow",
            );
            parts.push(format!("is used by the current {versions} of {workflows}"));
        }
        if !self.groups.is_empty() {
            let groups = list(
                self.groups
                    .iter()
                    .map(|g| (g.id.to_string(), g.name.as_deref())),
                "group agent",
            );
            parts.push(format!("is a participant of {groups}"));
        }
        if parts.is_empty() {
            return write!(f, "The agent is not used");
        }
        write!(f, "The agent {}", parts.join(", and "))
    }
}

/// Which agents a list returns; absent conditions do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentFilter {
    /// Only this type.
    pub agent_type: Option<AgentType>,
    /// Only this status.
    pub status: Option<AgentStatus>,
    /// Names containing this text, case-insensitively.
    pub name: Option<NameFragment>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(participants: Vec<AgentId>) -> ParticipantState {
        ParticipantState {
            agent_type: if participants.is_empty() {
                AgentType::SemanticKernel
            } else {
                AgentType::Autogen
            },
            status: AgentStatus::Active,
            visible: true,
            participants,
        }
    }

    #[test]
    fn status_transitions() {
        use AgentStatus::{Active, Deprecated, Inactive};
        assert!(Active.can_become(Inactive));
        assert!(Inactive.can_become(Active));
        assert!(Active.can_become(Deprecated));
        assert!(Inactive.can_become(Deprecated));
        assert!(Deprecated.can_become(Inactive));
        assert!(!Deprecated.can_become(Active));
        assert!(!Active.can_become(Active));
    }

    #[test]
    fn participants_must_exist_be_visible_usable_and_not_form_a_cycle() {
        let me = AgentId::new_random();
        let [plain, hidden, old, group, missing] = [(); 5].map(|()| AgentId::new_random());
        let mut graph = HashMap::new();
        graph.insert(plain, state(vec![]));
        graph.insert(
            hidden,
            ParticipantState {
                visible: false,
                ..state(vec![])
            },
        );
        graph.insert(
            old,
            ParticipantState {
                status: AgentStatus::Deprecated,
                ..state(vec![])
            },
        );
        let inner = AgentId::new_random();
        graph.insert(inner, state(vec![plain, me]));
        graph.insert(group, state(vec![plain, inner]));
        let problems = participant_problems(me, &[plain, hidden, old, group, missing, me], &graph);
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            vec![
                "/configuration/participants/1",
                "/configuration/participants/2",
                "/configuration/participants/3",
                "/configuration/participants/4",
                "/configuration/participants/5",
            ]
        );
        assert!(problems[2].message.contains("cannot contain itself"));
        assert!(
            participant_problems(me, &[plain, group], &{
                let mut acyclic = graph.clone();
                acyclic.insert(inner, state(vec![plain]));
                acyclic
            })
            .is_empty()
        );
    }

    #[test]
    fn usage_names_visible_workflows_and_counts_the_others() {
        let usage = AgentUsage {
            workflows: vec![
                UsingWorkflow {
                    id: WorkflowId::new_random(),
                    name: Some("Invoices".into()),
                },
                UsingWorkflow {
                    id: WorkflowId::new_random(),
                    name: None,
                },
                UsingWorkflow {
                    id: WorkflowId::new_random(),
                    name: None,
                },
            ],
            groups: vec![],
        };
        let text = usage.to_string();
        let invoices = usage.workflows[0].id;
        assert_eq!(
            text,
            format!(
                "The agent is used by the current versions of workflow \"Invoices\" ({invoices}) \
                 and 2 workflows of other users"
            )
        );
    }

    #[test]
    fn usage_reads_naturally_for_every_count() {
        let workflow = |name: Option<&str>| UsingWorkflow {
            id: WorkflowId::new_random(),
            name: name.map(str::to_owned),
        };
        let group = |name: Option<&str>| UsingGroup {
            id: AgentId::new_random(),
            name: name.map(str::to_owned),
        };
        let text = |workflows: Vec<UsingWorkflow>, groups: Vec<UsingGroup>| {
            let usage = AgentUsage { workflows, groups };
            // Ids vary: each is replaced by `ID` to compare sentences.
            let mut text = usage.to_string();
            for id in usage.workflows.iter().map(|w| w.id.to_string()) {
                text = text.replace(&id, "ID");
            }
            for id in usage.groups.iter().map(|g| g.id.to_string()) {
                text = text.replace(&id, "ID");
            }
            text
        };
        assert_eq!(
            text(vec![workflow(None)], vec![]),
            "The agent is used by the current version of 1 workflow of another user"
        );
        assert_eq!(
            text(vec![workflow(None), workflow(None), workflow(None)], vec![]),
            "The agent is used by the current versions of 3 workflows of other users"
        );
        assert_eq!(
            text(vec![workflow(Some("A"))], vec![]),
            "The agent is used by the current version of workflow \"A\" (ID)"
        );
        assert_eq!(
            text(
                vec![
                    workflow(Some("A")),
                    workflow(Some("B")),
                    workflow(Some("C")),
                    workflow(None)
                ],
                vec![]
            ),
            "The agent is used by the current versions of workflows \"A\" (ID), \"B\" (ID), \
             \"C\" (ID) and 1 workflow of another user"
        );
        assert_eq!(
            text(vec![], vec![group(Some("Desk"))]),
            "The agent is a participant of group agent \"Desk\" (ID)"
        );
        assert_eq!(
            text(
                vec![workflow(Some("A"))],
                vec![
                    group(Some("Desk")),
                    group(Some("Panel")),
                    group(None),
                    group(None)
                ]
            ),
            "The agent is used by the current version of workflow \"A\" (ID), and is a \
             participant of group agents \"Desk\" (ID), \"Panel\" (ID) and 2 group agents of \
             other users"
        );
    }
}
