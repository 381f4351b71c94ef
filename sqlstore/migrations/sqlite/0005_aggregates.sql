-- Counts of ACTIVE findings per account, dimension and key, by severity,
-- kept in the transaction that changes the findings: what unfiltered
-- aggregations read instead of scanning every finding.
CREATE TABLE agg_counts (
	account_id INTEGER NOT NULL,
	dim TEXT NOT NULL,
	key TEXT NOT NULL,
	severity TEXT NOT NULL,
	n INTEGER NOT NULL,
	PRIMARY KEY (account_id, dim, key, severity)
);
