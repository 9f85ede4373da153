-- Resync requests: `alertsync dlq redrive --stage capture.nomis` asks the
-- capture for prisoner resyncs by writing journal rows of table_name
-- alertsync_resync_request (capture/nomis/request.go). It writes them only
-- through this function, which writes nothing else: the user running the
-- redrive needs EXECUTE on it, never INSERT on the journal (with which it
-- could forge changes of the NOMIS tables). SECURITY DEFINER, as the
-- journal's row function (0010); every name schema-qualified for the same
-- reasons.
--
-- p_requests: the requests' new_row texts, in order (each a JSON object;
-- the capture checks the fields). p_module: the module_name to record.
-- Returns how many rows were written. Wakes a waiting capture at commit.
CREATE FUNCTION alertsync.alertsync_request_resyncs(p_requests text[], p_module text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    n integer;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.unnest(p_requests) AS r(img)
                WHERE r.img IS NULL OR pg_catalog.json_typeof(r.img::json) OPERATOR(pg_catalog.<>) 'object') THEN
        RAISE EXCEPTION 'alertsync: a resync request must be a JSON object';
    END IF;
    INSERT INTO alertsync.alertsync_journal
        (table_name, operation, old_row, new_row, module_name, additional_info, user_id, txid)
    SELECT 'alertsync_resync_request', 'I', NULL, u.img::json, pg_catalog.left(p_module, 65), NULL,
           pg_catalog.left(session_user, 32), pg_catalog.txid_current()
      FROM pg_catalog.unnest(p_requests) WITH ORDINALITY AS u(img, n)
     ORDER BY u.n;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM pg_catalog.pg_notify('alertsync_journal', '');
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION alertsync.alertsync_request_resyncs(text[], text) FROM PUBLIC;
