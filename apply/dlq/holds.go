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

// holdStore is the table of holds of one apply, in its target database.
type holdStore struct {
	conn  *pgx.Conn
	table string
	name  string // DPS or NOMIS, for messages
}

// holdTable returns the hold table of an apply stage and the name of its
// database.
func holdTable(stage string) (table, name string) {
	if stage == StageApplyNOMIS {
		return "alertsync.alertsync_dlq_holds", "NOMIS"
	}
	return "alertsync.dlq_holds", "DPS"
}

// openHolds connects to the target database of an apply stage.
func openHolds(ctx context.Context, cfg *Config, stage string) (*holdStore, error) {
	table, name := holdTable(stage)
	dsn, pw := cfg.DPS.DSN, cfg.DPS.Password
	key := "dps.dsn"
	if stage == StageApplyNOMIS {
		if cfg.NOMIS.Dialect != "postgres" {
			return nil, &config.KeyError{Key: "nomis.dialect", Err: ErrOracleNotBuilt}
		}
		dsn, pw, key = cfg.NOMIS.DSN, cfg.NOMIS.Password, "nomis.dsn"
	}
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
	return &holdStore{conn: conn, table: table, name: name}, nil
}

func (s *holdStore) close(ctx context.Context) { _ = s.conn.Close(context.WithoutCancel(ctx)) }

// open returns the open holds, by alert key.
func (s *holdStore) open(ctx context.Context) (map[string]Hold, error) {
	rows, err := s.conn.Query(ctx, `SELECT hold_key, prison_number, first_command_id, reason, held_commands, created_at, updated_at
		FROM `+s.table+` ORDER BY created_at, hold_key`)
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

// errHoldChanged: the hold is not as read any more.
var errHoldChanged = errors.New("the hold changed since it was read")

// remove deletes h if it is still as read (same first command, same number
// of commands): a command held after it was read would otherwise be left
// behind in the DLQ without a hold.
func (s *holdStore) remove(ctx context.Context, h Hold) error {
	tag, err := s.conn.Exec(ctx, `DELETE FROM `+s.table+` WHERE hold_key = $1 AND first_command_id = $2 AND held_commands = $3`,
		h.Key, h.FirstCommandID, h.HeldCommands)
	if err != nil {
		return fmt.Errorf("deleting the hold on %s in %s: %w", h.Key, s.name, err)
	}
	if tag.RowsAffected() != 1 {
		return errHoldChanged
	}
	return nil
}

// restore puts h back, unless the apply started a new hold on its alert
// meanwhile (a redriven command failed again), which then stays.
func (s *holdStore) restore(ctx context.Context, h Hold) error {
	_, err := s.conn.Exec(ctx, `INSERT INTO `+s.table+` (hold_key, prison_number, first_command_id, reason, held_commands, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (hold_key) DO NOTHING`,
		h.Key, h.PrisonNumber, h.FirstCommandID, h.Reason, h.HeldCommands, h.CreatedAt)
	if err != nil {
		return fmt.Errorf("restoring the hold on %s in %s: %w", h.Key, s.name, err)
	}
	return nil
}
