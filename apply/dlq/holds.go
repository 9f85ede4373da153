package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/db"
)

// Hold is an open hold of an apply: the commands of one alert are held
// behind FirstCommandID, which failed.
type Hold struct {
	Key            string // alert key: "nomis:<booking>:<seq>", "dps:<id>", "prisoner:<number>"
	PrisonNumber   string
	FirstCommandID string
	Reason         string
	HeldCommands   int // the failed command and those held behind it
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// errHoldChanged: the hold is not as read any more.
var errHoldChanged = errors.New("the hold changed since it was read")

// holdStore is the table of holds of one apply in its target database:
// pgHolds on PostgreSQL (DPS, and the NOMIS stand-in), oraHolds on NOMIS on
// Oracle. Every method is one statement committed on its own; the apply
// changes the same rows meanwhile, under row locks held to its commit.
// The caller closes the store.
type holdStore interface {
	// open returns the open holds, by alert key.
	open(ctx context.Context) (map[string]Hold, error)
	// remove deletes h if it is still as read (same first command, same
	// number of commands), and returns errHoldChanged otherwise: a command
	// held after h was read would else be left behind in the DLQ without a
	// hold. A remove that meets an apply's uncommitted change to the row
	// waits for the apply's commit and then decides on the committed row.
	remove(ctx context.Context, h Hold) error
	// restore puts h back, unless the apply started a new hold on its
	// alert meanwhile (a redriven command failed again), which then stays.
	restore(ctx context.Context, h Hold) error
	// database names the target database, DPS or NOMIS, for messages.
	database() string
	// table names the holds table, schema-qualified, for messages.
	table() string
	// close ends the connection; ctx's cancellation does not stop it.
	close(ctx context.Context)
}

// openHolds connects to the target database of an apply stage and returns
// its holds table: on PostgreSQL for apply dps and for apply nomis on the
// stand-in (nomis.dialect = postgres), on Oracle for apply nomis with
// nomis.dialect = oracle. Connecting waits dlq.connect_timeout at most.
func openHolds(ctx context.Context, cfg *Config, stage string) (holdStore, error) {
	if stage != StageApplyNOMIS {
		return openPGHolds(ctx, cfg, cfg.DPS.DSN, cfg.DPS.Password, "dps.dsn", "alertsync.dlq_holds", "DPS")
	}
	if cfg.NOMIS.Dialect == "oracle" {
		return openOracleHolds(ctx, cfg)
	}
	return openPGHolds(ctx, cfg, cfg.NOMIS.DSN, cfg.NOMIS.Password, "nomis.dsn", "alertsync.alertsync_dlq_holds", "NOMIS")
}

// pgHolds is a holds table on PostgreSQL.
type pgHolds struct {
	conn *pgx.Conn
	tbl  string
	name string // DPS or NOMIS, for messages
}

// openPGHolds connects to the database of dsn (the config key named by
// key) and returns its holds table tbl.
func openPGHolds(ctx context.Context, cfg *Config, dsn string, pw config.Secret, key, tbl, name string) (*pgHolds, error) {
	cc, err := db.PostgresConfig(dsn, pw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	cc.RuntimeParams["application_name"] = "alertsync dlq"
	cctx, cancel := context.WithTimeout(ctx, cfg.Own.ConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s at %s:%d database %q as %q (%s): %w", name, cc.Host, cc.Port, cc.Database, cc.User, key, err)
	}
	return &pgHolds{conn: conn, tbl: tbl, name: name}, nil
}

func (s *pgHolds) database() string { return s.name }
func (s *pgHolds) table() string    { return s.tbl }

func (s *pgHolds) close(ctx context.Context) { _ = s.conn.Close(context.WithoutCancel(ctx)) }

func (s *pgHolds) open(ctx context.Context) (map[string]Hold, error) {
	rows, err := s.conn.Query(ctx, `SELECT hold_key, prison_number, first_command_id, reason, held_commands, created_at, updated_at
		FROM `+s.tbl+` ORDER BY created_at, hold_key`)
	if err != nil {
		return nil, fmt.Errorf("reading the holds in %s: %w", s.name, err)
	}
	defer rows.Close()
	out := map[string]Hold{}
	for rows.Next() {
		var h Hold
		if err := rows.Scan(&h.Key, &h.PrisonNumber, &h.FirstCommandID, &h.Reason, &h.HeldCommands, &h.CreatedAt, &h.UpdatedAt); err != nil {
			return nil, fmt.Errorf("reading the holds in %s: %w", s.name, err)
		}
		out[h.Key] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the holds in %s: %w", s.name, err)
	}
	return out, nil
}

func (s *pgHolds) remove(ctx context.Context, h Hold) error {
	tag, err := s.conn.Exec(ctx, `DELETE FROM `+s.tbl+` WHERE hold_key = $1 AND first_command_id = $2 AND held_commands = $3`,
		h.Key, h.FirstCommandID, h.HeldCommands)
	if err != nil {
		return fmt.Errorf("deleting the hold on %s in %s: %w", h.Key, s.name, err)
	}
	if tag.RowsAffected() != 1 {
		return errHoldChanged
	}
	return nil
}

func (s *pgHolds) restore(ctx context.Context, h Hold) error {
	_, err := s.conn.Exec(ctx, `INSERT INTO `+s.tbl+` (hold_key, prison_number, first_command_id, reason, held_commands, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (hold_key) DO NOTHING`,
		h.Key, h.PrisonNumber, h.FirstCommandID, h.Reason, h.HeldCommands, h.CreatedAt)
	if err != nil {
		return fmt.Errorf("restoring the hold on %s in %s: %w", h.Key, s.name, err)
	}
	return nil
}

var _ holdStore = (*pgHolds)(nil)
