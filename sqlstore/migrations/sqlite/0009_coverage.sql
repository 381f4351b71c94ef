-- Coverage: whether each resource is under continuous scanning, and why
-- not; the database revision its findings were last matched against; how
-- to read it again (a registry reference), for rescans.
ALTER TABLE resources ADD COLUMN scan_status TEXT NOT NULL DEFAULT 'ACTIVE';
ALTER TABLE resources ADD COLUMN scan_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE resources ADD COLUMN scan_message TEXT NOT NULL DEFAULT '';
ALTER TABLE resources ADD COLUMN matched_revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE resources ADD COLUMN matched_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE resources ADD COLUMN source_ref TEXT NOT NULL DEFAULT '';
-- When an image was last pushed or pulled (its scan eligibility).
ALTER TABLE resources ADD COLUMN last_activity BIGINT NOT NULL DEFAULT 0;
UPDATE resources SET last_activity = first_seen;
-- A deleted resource is a row with no inventory (its closed findings keep it).
UPDATE resources SET scan_status = 'DELETED' WHERE inventory_digest = '';
-- The findings of a vulnerability whose record changed, in any account.
CREATE INDEX findings_vuln_any ON findings(vuln_id);
CREATE INDEX resources_matched ON resources(matched_revision);
-- Usage: scans (an inventory read and matched) and re-evaluations (a
-- stored inventory matched again) per account, resource type and month.
CREATE TABLE usage_counts (
	account_id BIGINT NOT NULL REFERENCES accounts(id),
	resource_type TEXT NOT NULL,
	month TEXT NOT NULL,
	scans BIGINT NOT NULL,
	rematches BIGINT NOT NULL,
	PRIMARY KEY (account_id, resource_type, month)
);
