package dlq

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/alertsync/alertsync/internal/db"
)

// oraHoldsTable is the holds table of apply nomis on Oracle, in NOMIS's
// schema (deploy/oracle/migrations/0006_dlq_holds.sql).
const oraHoldsTable = "OMS_OWNER.ALERTSYNC_DLQ_HOLDS"

// The statements of the holds on Oracle: every statement oraHolds runs is
// one of these constants. Binds are positional, :1, :2, … each once and in
// order (OCI binds SQL placeholders by position of occurrence).
const (
	// oraOpenHoldsSQL reads the open holds, oldest first.
	oraOpenHoldsSQL = `SELECT h.HOLD_KEY, h.PRISON_NUMBER, h.FIRST_COMMAND_ID, h.REASON, h.HELD_COMMANDS, h.CREATED_AT, h.UPDATED_AT
  FROM ` + oraHoldsTable + ` h
 ORDER BY h.CREATED_AT, h.HOLD_KEY`

	// oraRemoveHoldSQL deletes the hold on :1 if its first command is
	// still :2 and it still holds :3 commands. Apply nomis counts a held
	// command with an UPDATE of the row (oraBumpHoldSQL of apply/nomis)
	// whose row lock lasts to its commit: the DELETE waits for it, and
	// Oracle then evaluates the condition again on the committed row (a
	// write restarts on a changed row), so it deletes nothing.
	oraRemoveHoldSQL = `DELETE FROM ` + oraHoldsTable + ` h
 WHERE h.HOLD_KEY = :1 AND h.FIRST_COMMAND_ID = :2 AND h.HELD_COMMANDS = :3`

	// oraRestoreHoldSQL puts a hold back unless one exists on its key: :1
	// key, :2 prison number, :3 first command, :4 reason, :5 held
	// commands, :6 created at.
	oraRestoreHoldSQL = `MERGE INTO ` + oraHoldsTable + ` h
USING (SELECT :1 AS HOLD_KEY, :2 AS PRISON_NUMBER, :3 AS FIRST_COMMAND_ID, :4 AS REASON, :5 AS HELD_COMMANDS, :6 AS CREATED_AT FROM DUAL) s
   ON (h.HOLD_KEY = s.HOLD_KEY)
 WHEN NOT MATCHED THEN INSERT (HOLD_KEY, PRISON_NUMBER, FIRST_COMMAND_ID, REASON, HELD_COMMANDS, CREATED_AT, UPDATED_AT)
      VALUES (s.HOLD_KEY, s.PRISON_NUMBER, s.FIRST_COMMAND_ID, s.REASON, s.HELD_COMMANDS, s.CREATED_AT, SYSTIMESTAMP)`
)

// ORA- codes the holds branch on.
const (
	oraUniqueViolated = 1   // ORA-00001: unique constraint violated
	oraNoTable        = 942 // ORA-00942: table or view does not exist (or no grant)
)

// oraHolds is the holds table of apply nomis on Oracle (nomis.dialect =
// oracle), through database/sql and godror. NOT RUN AGAINST A LIVE ORACLE:
// oracle_test.go runs it against a recording driver only.
type oraHolds struct {
	db *sql.DB
}

// newOraHolds returns the holds on Oracle over h, which the store closes.
func newOraHolds(h *sql.DB) *oraHolds { return &oraHolds{db: h} }

// openOracleHolds connects to NOMIS on Oracle with nomis.dsn and
// nomis.password, waiting dlq.connect_timeout at most.
func openOracleHolds(ctx context.Context, cfg *Config) (*oraHolds, error) {
	p, err := db.OracleParams(cfg.NOMIS.DSN, cfg.NOMIS.Password)
	if err != nil {
		return nil, fmt.Errorf("nomis.dsn: %w", err)
	}
	h, err := db.OracleDB(cfg.NOMIS.DSN, cfg.NOMIS.Password)
	if err != nil {
		return nil, fmt.Errorf("nomis.dsn: %w", err)
	}
	h.SetMaxOpenConns(1)
	cctx, cancel := context.WithTimeout(ctx, cfg.Own.ConnectTimeout)
	defer cancel()
	if err := h.PingContext(cctx); err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("connecting to NOMIS on Oracle at %q as %q (nomis.dsn): %w", p.ConnectString, p.Username, err)
	}
	return newOraHolds(h), nil
}

func (s *oraHolds) database() string { return "NOMIS" }
func (s *oraHolds) table() string    { return oraHoldsTable }

func (s *oraHolds) close(context.Context) { _ = s.db.Close() }

func (s *oraHolds) open(ctx context.Context) (map[string]Hold, error) {
	rows, err := s.db.QueryContext(ctx, oraOpenHoldsSQL)
	if err != nil {
		return nil, s.readErr(err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]Hold{}
	for rows.Next() {
		var h Hold
		if err := rows.Scan(&h.Key, &h.PrisonNumber, &h.FirstCommandID, &h.Reason, &h.HeldCommands, &h.CreatedAt, &h.UpdatedAt); err != nil {
			return nil, s.readErr(err)
		}
		out[h.Key] = h
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(err)
	}
	return out, nil
}

// readErr wraps an error reading the holds, saying what to do when the
// table cannot be seen.
func (s *oraHolds) readErr(err error) error {
	if code, ok := db.OracleCode(err); ok && code == oraNoTable {
		return fmt.Errorf("reading the holds in NOMIS: %s cannot be seen by the nomis.dsn user: "+
			"connect as the apply's user (ALERTSYNC_APPLY, deploy/oracle/install/apply_user.sql) once apply nomis has migrated NOMIS: %w", oraHoldsTable, err)
	}
	return fmt.Errorf("reading the holds in NOMIS: %w", err)
}

func (s *oraHolds) remove(ctx context.Context, h Hold) error {
	res, err := s.db.ExecContext(ctx, oraRemoveHoldSQL, h.Key, h.FirstCommandID, int64(h.HeldCommands))
	if err != nil {
		return fmt.Errorf("deleting the hold on %s in NOMIS: %w", h.Key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("deleting the hold on %s in NOMIS: %w", h.Key, err)
	}
	if n != 1 {
		return errHoldChanged
	}
	return nil
}

// restore: two sessions that MERGE the same new key at once both find no
// row, and the later insert fails with ORA-00001 once the earlier commits.
// Here that is the apply's new hold, which stays: no error, as ON CONFLICT
// DO NOTHING on PostgreSQL.
func (s *oraHolds) restore(ctx context.Context, h Hold) error {
	_, err := s.db.ExecContext(ctx, oraRestoreHoldSQL, h.Key, h.PrisonNumber, h.FirstCommandID, h.Reason, int64(h.HeldCommands), h.CreatedAt)
	if code, ok := db.OracleCode(err); ok && code == oraUniqueViolated {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restoring the hold on %s in NOMIS: %w", h.Key, err)
	}
	return nil
}

var _ holdStore = (*oraHolds)(nil)
