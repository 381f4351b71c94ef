-- The kept aggregate counts, one row per group with a column per severity,
-- indexed in the order aggregations are listed (most severe first, then
-- key), so a page of groups is read from the front of the index instead of
-- grouping and sorting every group. Keys compare bytewise on both
-- databases, so that pages follow one order.
CREATE TABLE agg_groups (
	account_id INTEGER NOT NULL,
	dim TEXT NOT NULL,
	key TEXT NOT NULL,
	critical INTEGER NOT NULL,
	high INTEGER NOT NULL,
	medium INTEGER NOT NULL,
	low INTEGER NOT NULL,
	sev_none INTEGER NOT NULL,
	untriaged INTEGER NOT NULL,
	total INTEGER NOT NULL,
	PRIMARY KEY (account_id, dim, key)
);
CREATE INDEX agg_groups_rank ON agg_groups(account_id, dim, critical DESC, high DESC, medium DESC, low DESC, sev_none DESC, untriaged DESC, key);
INSERT INTO agg_groups(account_id, dim, key, critical, high, medium, low, sev_none, untriaged, total)
SELECT account_id, dim, key,
	SUM(CASE WHEN severity = 'CRITICAL' THEN n ELSE 0 END),
	SUM(CASE WHEN severity = 'HIGH' THEN n ELSE 0 END),
	SUM(CASE WHEN severity = 'MEDIUM' THEN n ELSE 0 END),
	SUM(CASE WHEN severity = 'LOW' THEN n ELSE 0 END),
	SUM(CASE WHEN severity = 'NONE' THEN n ELSE 0 END),
	SUM(CASE WHEN severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'NONE') THEN n ELSE 0 END),
	SUM(n)
FROM agg_counts GROUP BY account_id, dim, key;
DROP TABLE agg_counts;
