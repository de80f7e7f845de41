-- The data folder's identity, the same one the engine's file (engine.redb) records: a store
-- copied in from another folder, or one replaced by an empty file, is refused at start-up
-- instead of served beside data it does not belong with. One row, written once.
CREATE TABLE folder_identity (
    id TEXT NOT NULL CHECK (length(id) = 36)
) STRICT;
