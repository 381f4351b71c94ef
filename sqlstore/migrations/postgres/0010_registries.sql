-- Registries watched for continuous scanning: pushes arrive by webhook
-- (authenticated by webhook_secret) or are found by polling every
-- poll_interval seconds (0: no polling). Credentials are kept as given:
-- the server needs them to pull.
CREATE TABLE registries (
	id TEXT PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts(id),
	url TEXT NOT NULL,
	username TEXT NOT NULL,
	password TEXT NOT NULL,
	include_patterns TEXT NOT NULL,
	exclude_patterns TEXT NOT NULL,
	webhook_secret TEXT NOT NULL,
	poll_interval BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	last_polled_at BIGINT NOT NULL,
	last_error TEXT NOT NULL,
	UNIQUE (account_id, url)
);
ALTER TABLE resources ADD COLUMN registry_id TEXT NOT NULL DEFAULT '';
-- Counters the workers advance together: the database revision the fleet
-- was last re-evaluated for.
CREATE TABLE engine_state (
	key TEXT PRIMARY KEY,
	value BIGINT NOT NULL
);
