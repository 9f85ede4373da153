package nomis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/pipeline"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

// Config is the configuration of `alertsync apply nomis`.
type Config struct {
	Pipeline pipeline.Config `key:""`
	NOMIS    config.NOMIS    `key:"nomis"`
	// DPS is read only, for the DPS-side mapping: an alert that came from
	// NOMIS is mapped there (apply dps created its DPS row), and a DPS change
	// of it must update that NOMIS row, not create a second one.
	DPS   config.DPS    `key:"dps"`
	Apply apply.Options `key:"apply"`
	Own   Options       `key:"apply_nomis"`
}

// Options is the "apply_nomis" section.
type Options struct {
	DPSLookup bool `key:"dps_lookup" default:"true" doc:"Look up the NOMIS key of a DPS alert that came from NOMIS in the DPS-side mapping (dps.dsn, read-only) when the NOMIS-side mapping has none. Turning it off makes a DPS change of such an alert create a second NOMIS alert: only for tests on a NOMIS alone."`
}

// Deps are the parts an apply runs with, made by the caller.
type Deps struct {
	Registry schemas.Registry
	Admin    *admin.Server
	Logger   *slog.Logger
}

// Apply is `alertsync apply nomis`.
type Apply struct {
	cfg    Config
	deps   Deps
	loc    *time.Location
	Runner *apply.Runner
}

// ErrOracleNotBuilt is returned by New for nomis.dialect=oracle.
var ErrOracleNotBuilt = errors.New("apply nomis: the Oracle dialect is not built yet")

// New returns the apply for cfg (validated by the caller). Only the
// postgres dialect (the stand-in) is built: oracle gives ErrOracleNotBuilt.
func New(cfg Config, deps Deps) (*Apply, error) {
	if cfg.NOMIS.Dialect == "oracle" {
		return nil, &config.KeyError{Key: "nomis.dialect", Err: ErrOracleNotBuilt}
	}
	if cfg.NOMIS.Dialect != "postgres" {
		return nil, &config.KeyError{Key: "nomis.dialect", Err: fmt.Errorf("unknown dialect %q: use postgres", cfg.NOMIS.Dialect)}
	}
	loc, err := time.LoadLocation(cfg.Apply.Timezone)
	if err != nil {
		return nil, &config.KeyError{Key: "apply.timezone", Err: err}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Apply{cfg: cfg, deps: deps, loc: loc}, nil
}

// Run applies until ctx is cancelled (nil) or a fatal error.
func (a *Apply) Run(ctx context.Context) error {
	cc, err := db.PostgresConfig(a.cfg.NOMIS.DSN, a.cfg.NOMIS.Password)
	if err != nil {
		return fmt.Errorf("nomis.dsn: %w", err)
	}
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return err
	}
	pc.ConnConfig = cc
	pc.ConnConfig.RuntimeParams["application_name"] = "alertsync apply nomis"
	pc.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("connecting to NOMIS: %w", err)
	}
	defer pool.Close()
	if err := a.prepare(ctx, pool); err != nil {
		return err
	}
	st := &store{pool: pool, tz: a.cfg.Apply.Timezone, loc: a.loc}
	if a.cfg.Own.DPSLookup {
		dc, err := db.PostgresConfig(a.cfg.DPS.DSN, a.cfg.DPS.Password)
		if err != nil {
			return fmt.Errorf("dps.dsn: %w", err)
		}
		dpc, err := pgxpool.ParseConfig("")
		if err != nil {
			return err
		}
		dpc.ConnConfig = dc
		dpc.ConnConfig.RuntimeParams["application_name"] = "alertsync apply nomis (mapping lookup)"
		dpc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
		dpc.MaxConns = 2
		dps, err := pgxpool.NewWithConfig(ctx, dpc)
		if err != nil {
			return fmt.Errorf("connecting to DPS: %w", err)
		}
		defer dps.Close()
		st.dpsKey = func(ctx context.Context, id string) (*nomisKey, error) {
			var k nomisKey
			err := dps.QueryRow(ctx, `SELECT nomis_booking_id, nomis_alert_seq FROM alertsync.alert_mapping
				WHERE dps_alert_id = $1::uuid AND nomis_booking_id IS NOT NULL AND NOT deleted`, id).Scan(&k.book, &k.seq)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("reading the DPS-side mapping of alert %s: %w", id, err)
			}
			return &k, nil
		}
	}
	a.Runner = &apply.Runner{
		Name: "apply-nomis", Topic: kafka.CommandsNOMIS, Store: st, Outbox: &outbox{pool: pool}, Opts: a.cfg.Apply,
		Pipeline: apply.PipelineConfig{Kafka: a.cfg.Pipeline.Kafka, Topics: a.cfg.Pipeline.Topics},
		Registry: a.deps.Registry, Admin: a.deps.Admin, Logger: a.deps.Logger,
	}
	return a.Runner.Run(ctx)
}

// prepare applies the sync-owned migrations and checks what conflict
// decisions need.
func (a *Apply) prepare(ctx context.Context, pool *pgxpool.Pool) error {
	set, err := migrate.Named("nomis")
	if err != nil {
		return err
	}
	sqlDB, err := db.OpenPostgres(ctx, a.cfg.NOMIS.DSN, a.cfg.NOMIS.Password, 30*time.Second)
	if err != nil {
		return fmt.Errorf("connecting to NOMIS: %w", err)
	}
	defer func() { _ = sqlDB.Close() }()
	if _, err := migrate.Up(ctx, sqlDB, set, migrate.Latest); err != nil {
		return &apply.FatalError{Err: fmt.Errorf("migrating schema alertsync: %w", err)}
	}
	var on string
	if err := pool.QueryRow(ctx, "SELECT current_setting('track_commit_timestamp')").Scan(&on); err != nil {
		return fmt.Errorf("reading track_commit_timestamp: %w", err)
	}
	if on != "on" {
		return &apply.FatalError{Err: errors.New("track_commit_timestamp is off on the NOMIS stand-in: conflicts are decided by commit time; set track_commit_timestamp = on and restart PostgreSQL")}
	}
	return nil
}

// outbox is the NOMIS outcome outbox.
type outbox struct{ pool *pgxpool.Pool }

// Pending implements apply.Outbox.
func (o *outbox) Pending(ctx context.Context, limit int) ([]apply.OutboxRow, error) {
	rows, err := o.pool.Query(ctx, `SELECT id, command_id, outcome, reason, dps_alert_id::text, coalesce(prison_number, ''),
			offender_book_id, alert_seq, coalesce(origin_side, 'DPS'), coalesce(source_commit_pos, 0), coalesce(source_change_pos, 0),
			source_commit_time, created_at,
			dlq_topic, dlq_partition, dlq_offset, dlq_key, dlq_value, dlq_error_kind, dlq_error, dlq_held_behind, alert_key
		  FROM alertsync.alertsync_outcome_outbox WHERE published_at IS NULL ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	defer rows.Close()
	var out []apply.OutboxRow
	for rows.Next() {
		var (
			r                   apply.OutboxRow
			result, origin      string
			commitTime          *time.Time
			dTopic, dKind, dErr *string
			dPart               *int32
			dOff                *int64
			dKey, dVal          []byte
			held, ak            *string
		)
		if err := rows.Scan(&r.ID, &r.CommandID, &result, &r.Reason, &r.DPSAlertID, &r.PrisonNumber, &r.NOMISBookingID, &r.NOMISAlertSeq,
			&origin, &r.SourcePosition.Commit, &r.SourcePosition.Change, &commitTime, &r.AppliedAt,
			&dTopic, &dPart, &dOff, &dKey, &dVal, &dKind, &dErr, &held, &ak); err != nil {
			return nil, fmt.Errorf("reading the outbox: %w", err)
		}
		r.Result = apply.Result(result)
		r.Origin = rules.SideDPS
		if origin == "NOMIS" {
			r.Origin = rules.SideNOMIS
		}
		if commitTime != nil {
			r.SourceCommitTime = *commitTime
		}
		if dTopic != nil {
			r.DLQ = &apply.DLQEntry{Topic: *dTopic, Key: dKey, Value: dVal, HeldBehind: held, AlertKey: ak}
			if dPart != nil {
				r.DLQ.Partition = *dPart
			}
			if dOff != nil {
				r.DLQ.Offset = *dOff
			}
			if dKind != nil {
				r.DLQ.ErrorKind = *dKind
			}
			if dErr != nil {
				r.DLQ.Error = *dErr
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	return out, nil
}

// Published implements apply.Outbox.
func (o *outbox) Published(ctx context.Context, ids []int64) error {
	if _, err := o.pool.Exec(ctx, "UPDATE alertsync.alertsync_outcome_outbox SET published_at = now() WHERE id = ANY($1)", ids); err != nil {
		return fmt.Errorf("marking outcomes published: %w", err)
	}
	return nil
}
