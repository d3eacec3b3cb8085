-- iga-ledger schema, version 1.
-- Timestamps are INTEGER microseconds since the Unix epoch (UTC).

-- Interned names: the ledger tables hold small integers only.
CREATE TABLE lg_identity (
    id     INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    name   TEXT NOT NULL,
    UNIQUE (tenant, name)
);
CREATE TABLE lg_entitlement (
    id     INTEGER PRIMARY KEY,
    system TEXT NOT NULL,
    kind   TEXT NOT NULL,
    ext_id TEXT NOT NULL,
    UNIQUE (system, kind, ext_id)
);
CREATE TABLE lg_source (
    id   INTEGER PRIMARY KEY,
    skey TEXT NOT NULL UNIQUE
);

-- One row per (assignment, source). The primary key is the ledger's unique index.
CREATE TABLE lg_grant (
    identity_id    INTEGER NOT NULL,
    entitlement_id INTEGER NOT NULL,
    source_id      INTEGER NOT NULL,
    intended       INTEGER NOT NULL CHECK (intended IN (0, 1)),
    confirmed      INTEGER NOT NULL CHECK (confirmed IN (0, 1)),
    CHECK (intended = 1 OR confirmed = 1),
    PRIMARY KEY (identity_id, entitlement_id, source_id)
) WITHOUT ROWID;
-- Holders of an entitlement (access reviews).
CREATE INDEX lg_grant_by_entitlement ON lg_grant (entitlement_id, identity_id);
-- Intended but not (yet) confirmed: reconciliation and import fix-up.
CREATE INDEX lg_grant_unconfirmed ON lg_grant (identity_id, entitlement_id)
    WHERE intended = 1 AND confirmed = 0;

-- Append-only change history. Bulk imports write one 'import' record per batch; the
-- batch's changed rows are kept in lg_import_item so replay reproduces the state.
CREATE TABLE lg_history (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    event          TEXT NOT NULL
                   CHECK (event IN ('grant', 'revoke', 'confirm_grant', 'confirm_revoke', 'import')),
    identity_id    INTEGER,
    entitlement_id INTEGER,
    source_id      INTEGER,
    batch_id       INTEGER,
    directive_id   TEXT,
    actor          TEXT,
    approval_json  TEXT
);
CREATE TABLE lg_import_batch (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    digest       TEXT NOT NULL,
    rows_total   INTEGER NOT NULL,
    rows_changed INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    actor        TEXT
);
-- The rows a batch changed, in input order, packed in chunks: each item is three
-- LEB128 varints (identity_id, entitlement_id, source_id).
CREATE TABLE lg_import_item (
    batch_id INTEGER NOT NULL,
    chunk    INTEGER NOT NULL,
    items    BLOB NOT NULL,
    PRIMARY KEY (batch_id, chunk)
);

CREATE TRIGGER lg_history_no_update BEFORE UPDATE ON lg_history
BEGIN SELECT RAISE(ABORT, 'lg_history is append-only'); END;
CREATE TRIGGER lg_history_no_delete BEFORE DELETE ON lg_history
BEGIN SELECT RAISE(ABORT, 'lg_history is append-only'); END;
CREATE TRIGGER lg_import_item_no_update BEFORE UPDATE ON lg_import_item
BEGIN SELECT RAISE(ABORT, 'lg_import_item is append-only'); END;
CREATE TRIGGER lg_import_item_no_delete BEFORE DELETE ON lg_import_item
BEGIN SELECT RAISE(ABORT, 'lg_import_item is append-only'); END;

-- Coexistence mode per target system (absent = NATIVE).
CREATE TABLE lg_coexistence (
    system     TEXT PRIMARY KEY,
    mode       TEXT NOT NULL CHECK (mode IN
               ('NATIVE', 'LEGACY_PROXY', 'SHADOW_COMPARE', 'DUAL_WRITE', 'LEGACY_OVERRIDE')),
    updated_at INTEGER NOT NULL
);

-- Durable job queue.
CREATE TABLE q_directive (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    system     TEXT NOT NULL,
    json       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE q_job (
    id           TEXT PRIMARY KEY,
    directive_id TEXT NOT NULL REFERENCES q_directive (id),
    tenant       TEXT NOT NULL,
    system       TEXT NOT NULL,
    state        TEXT NOT NULL,
    next_at      INTEGER,
    claimed_by   TEXT,
    claimed_at   INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    json         TEXT NOT NULL
);
CREATE INDEX q_job_state ON q_job (state, next_at, updated_at);

CREATE TABLE q_manual_task (
    id          TEXT PRIMARY KEY,
    job_id      TEXT,
    tenant      TEXT NOT NULL,
    system      TEXT NOT NULL,
    owner       TEXT,
    summary     TEXT NOT NULL,
    detail_json TEXT,
    created_at  INTEGER NOT NULL,
    closed_at   INTEGER,
    resolution  TEXT
);
CREATE INDEX q_manual_task_open ON q_manual_task (system, created_at) WHERE closed_at IS NULL;

-- Polling position per directive source.
CREATE TABLE q_source_cursor (
    source     TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Append-only receipts and one head per chain.
CREATE TABLE rc_receipt (
    receipt_id     TEXT PRIMARY KEY,
    chain_id       TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    directive_id   TEXT NOT NULL,
    operation_id   TEXT NOT NULL,
    jws            TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    prev_sha256    TEXT,
    created_at     INTEGER NOT NULL,
    UNIQUE (chain_id, seq)
);
CREATE INDEX rc_receipt_directive ON rc_receipt (directive_id);
CREATE TRIGGER rc_receipt_no_update BEFORE UPDATE ON rc_receipt
BEGIN SELECT RAISE(ABORT, 'receipts are append-only'); END;
CREATE TRIGGER rc_receipt_no_delete BEFORE DELETE ON rc_receipt
BEGIN SELECT RAISE(ABORT, 'receipts are append-only'); END;
CREATE TABLE rc_chain_head (
    chain_id       TEXT PRIMARY KEY,
    seq            INTEGER NOT NULL,
    receipt_id     TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL
);

-- Audit outbox: written in the same transaction as the outcome, delivered by a pump.
CREATE TABLE au_outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at    INTEGER NOT NULL,
    event_json    TEXT NOT NULL,
    claimed_by    TEXT,
    claimed_until INTEGER
);
