-- Roles are owner, admin and viewer (src/role.rs). Every organisation's creator
-- is its owner already; the members added after it, who could manage keys, tokens,
-- members and billing, become admins: they keep keys, tokens and agents, while
-- members, roles, billing and the signing secret stay with the owner, who can
-- promote them.
UPDATE users SET role = 'admin' WHERE role NOT IN ('owner', 'admin', 'viewer');
