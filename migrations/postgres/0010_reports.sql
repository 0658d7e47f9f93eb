-- Reports (PostgreSQL). Keep in step with migrations/sqlite/0010_reports.sql.
--
-- Items gain the kind 'report': one of a source's sends sealed as one item, its message and its
-- facts together (src/report.rs), so that a text submission costs one age header instead of
-- two. Items stored before keep their kinds ('message' and 'facts'); readers accept both.
ALTER TABLE items DROP CONSTRAINT items_kind_check;
ALTER TABLE items ADD CONSTRAINT items_kind_check
    CHECK (kind IN ('report', 'message', 'facts', 'attachment', 'note', 'reply'));
