-- The durable job queue (see jobs.go): a job is claimed with a lease
-- that its worker renews; a job whose lease ran out (its worker died) is
-- claimed again. unique_key makes enqueueing idempotent while a job with
-- that key is waiting or running.
CREATE TABLE jobs (
	id INTEGER PRIMARY KEY,
	kind TEXT NOT NULL,
	unique_key TEXT,
	args TEXT NOT NULL,
	state TEXT NOT NULL,
	attempt INTEGER NOT NULL,
	max_attempts INTEGER NOT NULL,
	run_at BIGINT NOT NULL,
	lease_until BIGINT NOT NULL,
	worker TEXT NOT NULL,
	error TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	finished_at BIGINT
);
CREATE UNIQUE INDEX jobs_unique ON jobs(unique_key) WHERE state IN ('available', 'running');
CREATE INDEX jobs_ready ON jobs(state, run_at, id);
-- Uploads wait here for their scan job, in chunks, so that a worker on
-- any machine can read them.
CREATE TABLE uploads (
	id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	data BLOB NOT NULL,
	PRIMARY KEY (id, seq)
);
