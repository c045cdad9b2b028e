//! Capabilities an agent token grants, and what each route requires.
//!
//! `prompt:send` allows LLM calls, `tool:execute` allows every tool and
//! `tool:execute:<name>` one tool. `model:<name>` entries, when a token has any,
//! restrict which models the agent may call. Unknown strings grant nothing and
//! are never an error, so tokens from newer issuers keep working.

/// One capability a token can carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// `prompt:send`: call an LLM.
    PromptSend,
    /// `tool:execute`: call any tool.
    ToolExecute,
    /// `tool:execute:<name>`: call one named tool.
    ToolExecuteNamed(String),
    /// `model:<name>`: call this model (`*` wildcards allowed).
    Model(String),
}

impl Capability {
    /// Parses one capability string; `None` for strings that grant nothing here.
    pub fn parse(s: &str) -> Option<Capability> {
        match s {
            "prompt:send" => Some(Capability::PromptSend),
            "tool:execute" => Some(Capability::ToolExecute),
            _ => {
                if let Some(tool) = s.strip_prefix("tool:execute:").filter(|t| !t.is_empty()) {
                    Some(Capability::ToolExecuteNamed(tool.to_string()))
                } else {
                    s.strip_prefix("model:")
                        .filter(|m| !m.is_empty())
                        .map(|m| Capability::Model(m.to_string()))
                }
            }
        }
    }
}

/// The capabilities of one verified agent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CapabilitySet {
    granted: Vec<Capability>,
}

impl CapabilitySet {
    pub fn parse<S: AsRef<str>>(strings: &[S]) -> CapabilitySet {
        CapabilitySet {
            granted: strings
                .iter()
                .filter_map(|s| Capability::parse(s.as_ref()))
                .collect(),
        }
    }

    pub fn has(&self, capability: &Capability) -> bool {
        self.granted.contains(capability)
    }

    /// Whether the agent may call `tool`: `tool:execute` or `tool:execute:<tool>`.
    pub fn allows_tool(&self, tool: &str) -> bool {
        self.granted.iter().any(|c| match c {
            Capability::ToolExecute => true,
            Capability::ToolExecuteNamed(name) => name == tool,
            _ => false,
        })
    }

    /// The tools named by `tool:execute:<name>` entries.
    pub fn named_tools(&self) -> impl Iterator<Item = &str> {
        self.granted.iter().filter_map(|c| match c {
            Capability::ToolExecuteNamed(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// Whether the agent may call any tool at all.
    pub fn allows_some_tool(&self) -> bool {
        self.granted
            .iter()
            .any(|c| matches!(c, Capability::ToolExecute | Capability::ToolExecuteNamed(_)))
    }

    /// Whether the agent may call `model`. A token without `model:` entries is not
    /// restricted by model; one with them may call only the models they name.
    pub fn allows_model(&self, model: Option<&str>) -> bool {
        let mut restricted = false;
        for capability in &self.granted {
            if let Capability::Model(pattern) = capability {
                restricted = true;
                if model.is_some_and(|m| crate::glob::matches(pattern, m)) {
                    return true;
                }
            }
        }
        !restricted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_capabilities_are_ignored() {
        let set = CapabilitySet::parse(&[
            "llm:call",
            "network:outbound",
            "",
            "tool:execute:",
            "model:",
        ]);
        assert_eq!(set, CapabilitySet::default());
    }

    #[test]
    fn named_tool_capability_allows_only_that_tool() {
        let set = CapabilitySet::parse(&["tool:execute:search"]);
        assert!(set.allows_tool("search"));
        assert!(!set.allows_tool("delete_file"));
        assert!(set.allows_some_tool());
        assert!(CapabilitySet::parse(&["tool:execute"]).allows_tool("delete_file"));
        assert!(!CapabilitySet::parse(&["prompt:send"]).allows_some_tool());
    }

    #[test]
    fn model_capabilities_restrict_models_only_when_present() {
        let open = CapabilitySet::parse(&["prompt:send"]);
        assert!(open.allows_model(Some("gpt-4o")));
        assert!(open.allows_model(None));
        let restricted =
            CapabilitySet::parse(&["prompt:send", "model:gpt-4o-mini", "model:claude-*"]);
        assert!(restricted.allows_model(Some("gpt-4o-mini")));
        assert!(restricted.allows_model(Some("claude-3-5-sonnet")));
        assert!(!restricted.allows_model(Some("gpt-4o")));
        assert!(!restricted.allows_model(None));
    }
}
