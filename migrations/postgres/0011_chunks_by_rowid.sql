-- Sealed chunks in a rowid table: SQLite only (migrations/sqlite/0011_chunks_by_rowid.sql),
-- where `item_chunks` was a WITHOUT ROWID table whose every search loaded whole chunks.
-- PostgreSQL keeps large values out of line (TOAST) and searches its primary-key index without
-- reading them: nothing to change. This file keeps the two backends' migration numbers in step.
SELECT 1;
