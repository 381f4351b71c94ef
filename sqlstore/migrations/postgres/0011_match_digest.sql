-- A digest of each finding's matched content (reconcile.MatchDigest):
-- a re-evaluation compares digests and reads the bodies of only the
-- findings whose match changed.
ALTER TABLE findings ADD COLUMN match_digest TEXT NOT NULL DEFAULT '';
