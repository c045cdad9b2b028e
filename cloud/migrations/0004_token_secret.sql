-- Which signing secret minted each token, as a fingerprint (`secrets::secret_id`),
-- so the dashboard can tell a token whose secret has left the license (it no
-- longer verifies anywhere) from a working one. NULL for tokens minted before
-- this column: their secret is not known.
ALTER TABLE agent_tokens ADD COLUMN secret_id TEXT;
