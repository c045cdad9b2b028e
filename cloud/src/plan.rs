//! Plans and their limits: the table in DESIGN.md ("Plans").

use kalguard_wire::cloud::CUSTOM_POLICY_FEATURE;
use std::fmt;
use std::str::FromStr;

/// A subscription plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    Free,
    Pro,
    Enterprise,
}

/// What a plan allows, as the license carries it.
pub use kalguard_wire::cloud::Limits;

impl Plan {
    pub const ALL: [Plan; 3] = [Plan::Free, Plan::Pro, Plan::Enterprise];

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }

    pub fn limits(self) -> Limits {
        match self {
            Plan::Free => Limits {
                checks_per_day: 1_000,
                max_agents: 1,
                audit_retention_days: 7,
                features: features(&["firewall:basic"]),
            },
            Plan::Pro => Limits {
                checks_per_day: 100_000,
                max_agents: -1,
                audit_retention_days: 90,
                features: features(&["firewall:advanced", "pii:redact", CUSTOM_POLICY_FEATURE]),
            },
            Plan::Enterprise => Limits {
                checks_per_day: -1,
                max_agents: -1,
                audit_retention_days: 365,
                features: features(&["firewall:advanced", "pii:redact", CUSTOM_POLICY_FEATURE]),
            },
        }
    }
}

/// A plan's feature flags as the license spells them.
fn features(flags: &[&str]) -> Vec<String> {
    flags.iter().map(|&flag| flag.to_owned()).collect()
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown plan name.
#[derive(Debug, thiserror::Error)]
#[error("unknown plan {0:?} (expected free, pro or enterprise)")]
pub struct UnknownPlan(pub String);

impl FromStr for Plan {
    type Err = UnknownPlan;

    fn from_str(s: &str) -> Result<Plan, UnknownPlan> {
        match s {
            "free" => Ok(Plan::Free),
            "pro" => Ok(Plan::Pro),
            "enterprise" => Ok(Plan::Enterprise),
            other => Err(UnknownPlan(other.to_string())),
        }
    }
}

/// Reads a plan stored in the database; an unreadable value falls back to `free`
/// (the least it can grant).
pub fn stored(s: &str) -> Plan {
    s.parse().unwrap_or(Plan::Free)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_design_table() {
        assert_eq!(Plan::Free.limits().checks_per_day, 1_000);
        assert_eq!(Plan::Free.limits().max_agents, 1);
        assert_eq!(Plan::Pro.limits().checks_per_day, 100_000);
        assert_eq!(Plan::Pro.limits().audit_retention_days, 90);
        assert_eq!(Plan::Enterprise.limits().checks_per_day, -1);
        assert_eq!(Plan::Enterprise.limits().audit_retention_days, 365);
        for plan in Plan::ALL {
            assert_eq!(plan.as_str().parse::<Plan>().ok(), Some(plan));
        }
        assert_eq!(stored("platinum"), Plan::Free);
    }
}
