-- Versioned JSON documents for components that keep their own state in the store
-- (the inbound SCIM endpoint's resources, identity snapshots, HR feed snapshots).
-- `version` starts at 1 and increases by one on every write: it is the ETag.
CREATE TABLE doc_document (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
