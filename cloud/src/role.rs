//! Members' roles and what each may do. The dashboard asks [`Role::allows`] in every
//! handler that changes something; templates ask the same question to hide the
//! buttons a role cannot use.
//!
//! - **viewer** reads every page and exports, changes nothing of the organisation;
//! - **admin** also manages API keys, agent tokens and agents (quarantine);
//! - **owner** also manages members, their roles and locked logins, billing and the
//!   token-signing secret.
//!
//! Everyone manages their own password and sessions.

use std::fmt;

/// A member's role in their organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Admin,
    Owner,
}

/// What an action needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// API keys, agent tokens, quarantine.
    Operate,
    /// Members, roles, unlocking logins, billing, the token-signing secret.
    Administer,
}

impl Role {
    /// Every role, most powerful first (the order of the members page's choices).
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// The role a stored value names. The column only holds [`Role::as_str`]
    /// values (migration `0006_roles` turned the old `member` into `admin`); anything
    /// else reads as the least powerful role.
    pub fn stored(s: &str) -> Role {
        s.parse().unwrap_or(Role::Viewer)
    }

    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::Operate => self >= Role::Admin,
            Permission::Administer => self == Role::Owner,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownRole)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not owner, admin or viewer.
#[derive(Debug, thiserror::Error)]
#[error("a role is owner, admin or viewer")]
pub struct UnknownRole;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_can_do_what_the_one_below_can() {
        assert!(!Role::Viewer.allows(Permission::Operate));
        assert!(!Role::Viewer.allows(Permission::Administer));
        assert!(Role::Admin.allows(Permission::Operate));
        assert!(!Role::Admin.allows(Permission::Administer));
        assert!(Role::Owner.allows(Permission::Operate));
        assert!(Role::Owner.allows(Permission::Administer));
    }

    #[test]
    fn stored_roles_parse_and_unknown_ones_read_as_viewer() {
        for r in Role::ALL {
            assert_eq!(Role::stored(r.as_str()), r);
        }
        assert_eq!(Role::stored("member"), Role::Viewer);
        assert!("root".parse::<Role>().is_err());
    }
}
