-- iga-ledger PostgreSQL schema, version 1 (same model as the SQLite schema).
-- Timestamps given by callers are BIGINT microseconds since the Unix epoch (UTC);
-- lease expiries use the database clock (timestamptz) so workers on different
-- machines agree on them.

CREATE TABLE lg_identity (
    id     BIGSERIAL PRIMARY KEY,
    tenant TEXT NOT NULL,
    name   TEXT NOT NULL,
    UNIQUE (tenant, name)
);
CREATE TABLE lg_entitlement (
    id     BIGSERIAL PRIMARY KEY,
    system TEXT NOT NULL,
    kind   TEXT NOT NULL,
    ext_id TEXT NOT NULL,
    UNIQUE (system, kind, ext_id)
);
CREATE TABLE lg_source (
    id   BIGSERIAL PRIMARY KEY,
    skey TEXT NOT NULL UNIQUE
);

CREATE TABLE lg_grant (
    identity_id    BIGINT NOT NULL,
    entitlement_id BIGINT NOT NULL,
    source_id      BIGINT NOT NULL,
    intended       BOOLEAN NOT NULL,
    confirmed      BOOLEAN NOT NULL,
    CHECK (intended OR confirmed),
    PRIMARY KEY (identity_id, entitlement_id, source_id)
);
CREATE INDEX lg_grant_by_entitlement ON lg_grant (entitlement_id, identity_id);

-- Append-only change history. Imports write one 'import' record per changed row.
CREATE TABLE lg_history (
    seq            BIGSERIAL PRIMARY KEY,
    at             BIGINT NOT NULL,
    event          TEXT NOT NULL
                   CHECK (event IN ('grant', 'revoke', 'confirm_grant', 'confirm_revoke', 'import')),
    identity_id    BIGINT,
    entitlement_id BIGINT,
    source_id      BIGINT,
    batch_id       BIGINT,
    directive_id   TEXT,
    actor          TEXT,
    approval_json  TEXT
);
CREATE TABLE lg_import_batch (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL,
    digest       TEXT NOT NULL,
    rows_total   BIGINT NOT NULL,
    rows_changed BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    actor        TEXT
);

CREATE FUNCTION iga_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER lg_history_append_only BEFORE UPDATE OR DELETE ON lg_history
    FOR EACH ROW EXECUTE FUNCTION iga_append_only();

CREATE TABLE lg_coexistence (
    system     TEXT PRIMARY KEY,
    mode       TEXT NOT NULL CHECK (mode IN
               ('NATIVE', 'LEGACY_PROXY', 'SHADOW_COMPARE', 'DUAL_WRITE', 'LEGACY_OVERRIDE')),
    updated_at BIGINT NOT NULL
);

-- Durable job queue, shared by every worker of the cluster.
CREATE TABLE q_directive (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    system     TEXT NOT NULL,
    json       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE q_job (
    id           TEXT PRIMARY KEY,
    directive_id TEXT NOT NULL REFERENCES q_directive (id),
    tenant       TEXT NOT NULL,
    system       TEXT NOT NULL,
    state        TEXT NOT NULL,
    next_at      BIGINT,
    -- The worker (node) holding the job in flight, its claim generation (fencing
    -- token, +1 per claim) and its lease (extended by heartbeats).
    claimed_by   TEXT,
    claimed_at   BIGINT,
    claim_gen    BIGINT NOT NULL DEFAULT 0,
    lease_until  TIMESTAMPTZ,
    -- A pending job handed to one node's planner (due_pending) until this time.
    plan_by      TEXT,
    plan_until   TIMESTAMPTZ,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    json         TEXT NOT NULL
);
CREATE INDEX q_job_state ON q_job (state, next_at, updated_at);
CREATE INDEX q_job_in_flight ON q_job (lease_until) WHERE state = 'in_flight';

CREATE TABLE q_manual_task (
    id          TEXT PRIMARY KEY,
    job_id      TEXT,
    tenant      TEXT NOT NULL,
    system      TEXT NOT NULL,
    owner       TEXT,
    summary     TEXT NOT NULL,
    detail_json TEXT,
    created_at  BIGINT NOT NULL,
    closed_at   BIGINT,
    resolution  TEXT
);
CREATE INDEX q_manual_task_open ON q_manual_task (system, created_at) WHERE closed_at IS NULL;

CREATE TABLE q_source_cursor (
    source     TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Append-only receipts; one head per chain (chains are per (node, system)).
CREATE TABLE rc_receipt (
    pos            BIGSERIAL,
    receipt_id     TEXT PRIMARY KEY,
    chain_id       TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    directive_id   TEXT NOT NULL,
    operation_id   TEXT NOT NULL,
    jws            TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    prev_sha256    TEXT,
    created_at     BIGINT NOT NULL,
    UNIQUE (chain_id, seq)
);
CREATE INDEX rc_receipt_directive ON rc_receipt (directive_id);
CREATE TRIGGER rc_receipt_append_only BEFORE UPDATE OR DELETE ON rc_receipt
    FOR EACH ROW EXECUTE FUNCTION iga_append_only();
CREATE TABLE rc_chain_head (
    chain_id       TEXT PRIMARY KEY,
    seq            BIGINT NOT NULL,
    receipt_id     TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL
);

CREATE TABLE au_outbox (
    id            BIGSERIAL PRIMARY KEY,
    created_at    BIGINT NOT NULL,
    event_json    TEXT NOT NULL,
    claimed_by    TEXT,
    claimed_until BIGINT
);

CREATE TABLE doc_document (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    version    BIGINT NOT NULL,
    body       TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, key)
);
