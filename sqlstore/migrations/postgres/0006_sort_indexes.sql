-- Indexes in the order finding lists are sorted (descending key, then id
-- ascending), so a page is read from the front of an index and the scan
-- stops at the page's end instead of sorting every matching finding.
DROP INDEX findings_account_status;
DROP INDEX findings_resource;
DROP INDEX findings_account_observed;
CREATE INDEX findings_account_severity ON findings(account_id, severity_rank DESC, id);
CREATE INDEX findings_account_status ON findings(account_id, status, severity_rank DESC, id);
CREATE INDEX findings_resource ON findings(resource_id, severity_rank DESC, id);
CREATE INDEX findings_account_observed ON findings(account_id, last_observed DESC, id);
CREATE INDEX findings_account_epss ON findings(account_id, (COALESCE(epss, -1)) DESC, id);
CREATE INDEX findings_account_score ON findings(account_id, (COALESCE(score, -1)) DESC, id);
