CREATE TABLE accounts (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	admin_id BIGINT REFERENCES accounts(id),
	created_at BIGINT NOT NULL
);
CREATE TABLE api_keys (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts(id),
	role TEXT NOT NULL,
	hash TEXT NOT NULL UNIQUE,
	prefix TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT,
	revoked_at BIGINT
);
CREATE TABLE resources (
	id TEXT PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts(id),
	type TEXT NOT NULL,
	name TEXT NOT NULL,
	tags TEXT NOT NULL,
	details TEXT NOT NULL,
	first_seen BIGINT NOT NULL,
	last_scanned BIGINT NOT NULL,
	inventory_digest TEXT NOT NULL,
	UNIQUE (account_id, type, name)
);
CREATE TABLE inventories (
	resource_id TEXT PRIMARY KEY REFERENCES resources(id),
	digest TEXT NOT NULL,
	body BYTEA NOT NULL,
	stored_at BIGINT NOT NULL
);
CREATE TABLE inventory_packages (
	resource_id TEXT NOT NULL REFERENCES resources(id),
	ecosystem TEXT NOT NULL,
	package TEXT NOT NULL,
	PRIMARY KEY (resource_id, ecosystem, package)
);
CREATE INDEX inventory_packages_key ON inventory_packages(ecosystem, package);
CREATE TABLE findings (
	id TEXT PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts(id),
	resource_id TEXT NOT NULL REFERENCES resources(id),
	vuln_id TEXT NOT NULL,
	type TEXT NOT NULL,
	status TEXT NOT NULL,
	severity TEXT NOT NULL,
	severity_rank BIGINT NOT NULL,
	score DOUBLE PRECISION,
	epss DOUBLE PRECISION,
	kev BIGINT NOT NULL,
	fix_available TEXT NOT NULL,
	title TEXT NOT NULL,
	first_observed BIGINT NOT NULL,
	last_observed BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	closed_at BIGINT,
	db_revision BIGINT NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX findings_account_status ON findings(account_id, status, severity_rank);
CREATE INDEX findings_resource ON findings(resource_id);
CREATE INDEX findings_vuln ON findings(account_id, vuln_id);
CREATE TABLE finding_packages (
	finding_id TEXT NOT NULL REFERENCES findings(id),
	ecosystem TEXT NOT NULL,
	name TEXT NOT NULL,
	version TEXT NOT NULL
);
CREATE INDEX finding_packages_finding ON finding_packages(finding_id);
CREATE INDEX finding_packages_name ON finding_packages(name);
CREATE TABLE events (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts(id),
	resource_id TEXT NOT NULL,
	finding_id TEXT NOT NULL,
	type TEXT NOT NULL,
	at BIGINT NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX events_finding ON events(finding_id);
