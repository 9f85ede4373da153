-- alertsync_journal_read, faster: sort only (commit time, journal id) under the
-- LIMIT and join the rows back, instead of sorting whole rows (JSON images
-- included), which spilled to disk on a large backlog. Same rows, same order.
CREATE OR REPLACE FUNCTION alertsync.alertsync_journal_read(p_limit integer, p_settle interval DEFAULT interval '100 milliseconds')
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
    ), head AS (
        SELECT k.journal_id, k.commit_ts
          FROM (SELECT j.journal_id, coalesce(pg_xact_commit_timestamp(j.xmin), j.created_at) AS commit_ts
                  FROM alertsync.alertsync_journal j) k, horizon h
         WHERE k.commit_ts < h.ts
         ORDER BY k.commit_ts, k.journal_id
         LIMIT p_limit
    )
    SELECT j.journal_id, j.table_name, j.operation, j.old_row, j.new_row, j.module_name,
           j.additional_info, j.user_id, j.txid, j.created_at, hd.commit_ts,
           (extract(epoch FROM hd.commit_ts) * 1000000)::bigint
      FROM head hd JOIN alertsync.alertsync_journal j ON j.journal_id = hd.journal_id
     ORDER BY hd.commit_ts, hd.journal_id
$$;
