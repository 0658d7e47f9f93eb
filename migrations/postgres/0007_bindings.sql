-- Bindings (PostgreSQL). Keep in step with migrations/sqlite/0007_bindings.sql.
--
-- A tip's receipt hash and reply recipient are bound to the tip by a MAC under a subkey of the
-- server secret (`receipt::TipBindingKey`): someone who can write the database but does not
-- hold the secret cannot move a receipt hash or a reply recipient from one tip to another. A
-- row whose binding does not verify is treated like a wrong receipt, and no reply is sealed
-- to its recipient. NULL never verifies. Tips stored before this migration are bound once, by
-- the first `tipbox serve` that holds the secret (`app::bind_rows_stored_before_bindings`).
ALTER TABLE tips ADD COLUMN binding BYTEA;
