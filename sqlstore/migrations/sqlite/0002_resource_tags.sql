CREATE TABLE resource_tags (
	resource_id TEXT NOT NULL REFERENCES resources(id),
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (resource_id, key)
);
CREATE INDEX resource_tags_kv ON resource_tags(key, value);
CREATE INDEX findings_account_observed ON findings(account_id, last_observed);
