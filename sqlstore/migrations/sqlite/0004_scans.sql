CREATE TABLE scans (
	id TEXT PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id),
	status TEXT NOT NULL,
	target TEXT NOT NULL,
	resource_type TEXT NOT NULL,
	resource_name TEXT NOT NULL,
	resource_id TEXT NOT NULL,
	findings INTEGER NOT NULL,
	error TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX scans_account ON scans(account_id, created_at);
