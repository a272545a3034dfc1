-- takt schema version 1. Times are unix milliseconds (INTEGER), JSON is TEXT, ids are TEXT.

-- The hash-chained journal. `seq` is 1-based and gap-free; `hash` covers `prev_hash` and the
-- canonical JSON of (seq, at_ms, kind, task_id, payload) (see takt_core::journal::entry_hash).
CREATE TABLE journal (
    seq       INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    task_id   TEXT,
    payload   TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE INDEX journal_by_task ON journal (task_id, seq) WHERE task_id IS NOT NULL;

-- The journal is append-only. These triggers stop accidental edits; deliberate tampering (which
-- can drop them) is caught by the hash chain (`takt audit verify`).
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN
    SELECT RAISE(ABORT, 'the takt journal is append-only: rows cannot be updated');
END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN
    SELECT RAISE(ABORT, 'the takt journal is append-only: rows cannot be deleted');
END;

-- Operator commands from CLI/API processes to the daemon, the only journal writer.
CREATE TABLE inbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    done_at_ms    INTEGER,
    result        TEXT
);
CREATE INDEX inbox_pending ON inbox (id) WHERE done_at_ms IS NULL;

-- Small daemon metadata (last poll time, ...).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Named counters; `issue_number` numbers the local tracker's identifiers (TAKT-<n>).
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('issue_number', 0);

-- The local tracker's issues. `state_key` is the normalized state (trimmed, lowercased) used for
-- case-insensitive matching; `state` keeps the spelling it was given.
CREATE TABLE issues (
    id            TEXT    PRIMARY KEY,
    number        INTEGER NOT NULL UNIQUE,
    identifier    TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    title         TEXT    NOT NULL,
    description   TEXT,
    priority      INTEGER CHECK (priority IS NULL OR priority BETWEEN 0 AND 4),
    state         TEXT    NOT NULL,
    state_key     TEXT    NOT NULL,
    branch_name   TEXT,
    url           TEXT,
    assignee_id   TEXT,
    labels        TEXT    NOT NULL DEFAULT '[]',
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX issues_by_state ON issues (state_key, number);

-- "issue_id is blocked by blocker_id". No foreign key on blocker_id: a blocker that disappears
-- keeps blocking (its state is unknown).
CREATE TABLE issue_blockers (
    issue_id   TEXT    NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    blocker_id TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (issue_id, blocker_id)
) WITHOUT ROWID;
