-- State of `alertsync capture dps`, one row per replication slot.
--
-- The initial snapshot is published between creating the slot (with an
-- exported snapshot) and marking snapshot_done. A capture that finds its slot
-- but snapshot_done false was interrupted mid-snapshot: it drops the slot and
-- takes the snapshot again (snapshot records are upserts downstream, so a
-- repeat is harmless; a half-published snapshot is never taken as complete).
-- A row with snapshot_done true whose slot has vanished means the slot was
-- dropped behind the capture's back: changes may be lost, and only a human
-- may decide to resnapshot (`alertsync capture dps --resnapshot`).
CREATE TABLE alertsync.capture_state (
    slot_name           text        PRIMARY KEY,
    publication_name    text        NOT NULL,
    -- The slot's consistent point: streaming starts here after the snapshot.
    consistent_lsn      pg_lsn,
    snapshot_done       boolean     NOT NULL DEFAULT false,
    snapshot_rows       bigint      NOT NULL DEFAULT 0,
    snapshot_started_at timestamptz,
    snapshot_done_at    timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
