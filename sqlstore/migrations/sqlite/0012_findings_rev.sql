-- Counts the writes of a resource's findings: a re-evaluation that read
-- the digests of a resource's findings before its write transaction
-- began uses them only if the count is the same inside it.
ALTER TABLE resources ADD COLUMN findings_rev BIGINT NOT NULL DEFAULT 0;
