-- The change journal of `alertsync capture nomis`: row triggers on the NOMIS
-- tables (0002) append one row per changed row; the capture publishes the
-- rows in commit order and deletes them once Kafka has acknowledged them.
-- Sync-owned: nothing here alters a NOMIS table. Names carry the ALERTSYNC_
-- prefix so that the same unquoted names serve the Oracle DDL, where the
-- objects may share a schema with others.
--
-- Oracle differences: sequence with ORDER (RAC) and CACHE; the table created
-- with ROWDEPENDENCIES; old_row/new_row as CLOB CHECK (... IS JSON); txid = DBMS_TRANSACTION.LOCAL_TRANSACTION_ID; no NOTIFY (the
-- Oracle capture polls).
CREATE SCHEMA IF NOT EXISTS alertsync;

CREATE SEQUENCE alertsync.alertsync_journal_seq;

CREATE TABLE alertsync.alertsync_journal (
    journal_id      bigint       NOT NULL DEFAULT nextval('alertsync.alertsync_journal_seq')
        CONSTRAINT alertsync_journal_pk PRIMARY KEY,
    -- The changed table, lower case as in the topic names: offender_alerts,
    -- offender_bookings or offenders.
    table_name      varchar(30)  NOT NULL,
    operation       char(1)      NOT NULL
        CONSTRAINT alertsync_journal_operation_check CHECK (operation IN ('I', 'U', 'D')),
    -- The row before (U, D) and after (I, U) the change, one key per column,
    -- named in lower case, in column order. Holds alert text: never log it.
    -- json (text), not jsonb: the journal is written once and read once, and
    -- to_json costs a trigger a fraction of what to_jsonb does.
    old_row         json,
    new_row         json,
    -- Read from the writing session's settings when the trigger fired (see
    -- nomis/schema.sql for the nomis.* settings and their Oracle context),
    -- never from the row: a delete records the deleting session's module.
    -- module_name 'DPS_SYNCHRONISATION' marks the sync's own writes.
    module_name     varchar(65),
    additional_info varchar(256),
    user_id         varchar(32),
    -- txid_current() of the writing transaction (for operators and for
    -- grouping a transaction's rows; ordering uses the commit, below).
    txid            bigint       NOT NULL,
    created_at      timestamptz  NOT NULL DEFAULT clock_timestamp()
);

-- Wake the poller: `LISTEN alertsync_journal`. PostgreSQL folds identical
-- notifications of one transaction into one, delivered at commit, so a
-- transaction of many rows wakes the poller once and an aborted one not at
-- all. The payload is empty: the poller reads the journal.
-- Cost: a notifying transaction holds a database-wide lock from just before
-- its commit until it is visible, so transactions that write journal rows
-- commit one at a time (each waits for the previous one's WAL flush). Where
-- that is too dear, drop this trigger and let the poller poll; nothing else
-- depends on it (alertsync_journal_read does not).
CREATE FUNCTION alertsync.alertsync_journal_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('alertsync_journal', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER alertsync_journal_notify
    AFTER INSERT ON alertsync.alertsync_journal
    FOR EACH STATEMENT EXECUTE FUNCTION alertsync.alertsync_journal_notify();

-- Commit-ordered reading.
--
-- journal_id is allocated when the trigger fires, not when the transaction
-- commits, so journal order is not commit order: a transaction T1 that wrote
-- first but commits after T2 has smaller ids than T2 yet must be published
-- after it. The position of a journal row is therefore
--   (commit = commit time of the row's transaction in microseconds since the
--    epoch, change = journal_id),
-- with the commit time from pg_xact_commit_timestamp(xmin of the journal
-- row), which needs track_commit_timestamp = on (the function fails loudly
-- without it). Rows older than the commit timestamps PostgreSQL keeps (or
-- written before the setting was turned on) fall back to created_at, which
-- is earlier than any commit still tracked.
--
-- Commit times are not assigned in visibility order: a transaction records
-- its commit time, then writes and flushes its commit record (and, with
-- synchronous replication, waits for a standby) and only then becomes
-- visible. A reader could thus see T2 (committed at 10:00:00.002) while T1
-- (committed at 10:00:00.001) is still invisible, publish T2, and meet T1
-- later: out of order. alertsync_journal_read returns only rows whose commit
-- time is below a horizon that no transaction invisible to the reader can
-- fall under:
--   * in-progress transactions of the reader's snapshot that have recorded a
--     commit time already (committed but not yet visible): the horizon is at
--     most the earliest such time;
--   * transactions that have not recorded one yet will record a time after
--     the reader's transaction started, except one caught between taking its
--     commit time and recording it (the insertion of its commit WAL record,
--     normally microseconds): p_settle (default 100 ms) keeps the horizon
--     that far behind the reader's transaction start to cover it.
-- So rows come in commit order and a row is never published ahead of a row
-- of an earlier commit. Nothing is ever skipped either way, as long as the
-- poller reads every remaining row (no "position > last" filter) and deletes
-- rows only after Kafka acknowledged them. The clock must not step backwards
-- by more than p_settle (NTP slews; a step needs a capture restart).
--
-- Call in a short transaction or autocommit (the horizon starts at the
-- reader's transaction start):
--   SELECT * FROM alertsync.alertsync_journal_read(5000, interval '100 ms');
-- Cost: each call computes the commit time of every journal row and sorts
-- them; the journal only holds the unpublished backlog.
--
-- Oracle: ROWDEPENDENCIES gives each row its commit SCN (ORA_ROWSCN); order
-- by ORA_ROWSCN, journal_id, below a horizon from the SCNs of active
-- transactions (V$TRANSACTION); there the Oracle dialect's query replaces
-- this function.
CREATE FUNCTION alertsync.alertsync_journal_read(p_limit integer, p_settle interval DEFAULT interval '100 milliseconds')
RETURNS TABLE (
    journal_id      bigint,
    table_name      varchar(30),
    operation       char(1),
    old_row         json,
    new_row         json,
    module_name     varchar(65),
    additional_info varchar(256),
    user_id         varchar(32),
    txid            bigint,
    created_at      timestamptz,
    commit_ts       timestamptz,
    commit_us       bigint
)
LANGUAGE sql STABLE AS $$
    WITH horizon AS (
        SELECT least(transaction_timestamp() - p_settle,
                     (SELECT min(pg_xact_commit_timestamp(x::xid))
                        FROM pg_snapshot_xip(pg_current_snapshot()) AS x)) AS ts
    ), committed AS (
        SELECT j.*, coalesce(pg_xact_commit_timestamp(j.xmin), j.created_at) AS commit_ts
          FROM alertsync.alertsync_journal j
    )
    SELECT c.journal_id, c.table_name, c.operation, c.old_row, c.new_row, c.module_name,
           c.additional_info, c.user_id, c.txid, c.created_at, c.commit_ts,
           (extract(epoch FROM c.commit_ts) * 1000000)::bigint
      FROM committed c, horizon h
     WHERE c.commit_ts < h.ts
     ORDER BY c.commit_ts, c.journal_id
     LIMIT p_limit
$$;
