-- Keyset pages of live ads in serving order (preview, explain's position,
-- the Public API's order) compare `(end_at, id) > ($2, $3)`: with an index on
-- `end_at` alone that row comparison is a filter, so one page read and sorted
-- every ad sharing its `end_at` (83,334 rows per page in the 1,000,000-ad
-- scale run). An index on both columns makes it an index condition; it also
-- serves everything the `end_at` index did, which it replaces.
--
-- Built in the migration's transaction, so writes to `ads` wait while it
-- builds (seconds at a million rows). To avoid that on a large catalog,
-- create it by hand first with `CREATE INDEX CONCURRENTLY` and the same
-- definition; this migration then only drops the old index.
CREATE INDEX IF NOT EXISTS ads_live_end_at_id ON ads (end_at, id) WHERE deleted_at IS NULL;
DROP INDEX IF EXISTS ads_live_end_at;
