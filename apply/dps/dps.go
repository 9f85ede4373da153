// Package dps is `alertsync apply dps`: it writes the commands of
// alertsync.commands.dps into the DPS alerts database the way the DPS
// service itself would for a change whose source is NOMIS.
//
// Contract (DESIGN.md guarantees 1-5, issue 7):
//
//   - One database transaction per batch of one partition's commands. It
//     starts with the sync marker (pg_logical_emit_message(true,
//     'alertsync', 'apply-dps')), so the DPS capture publishes its changes
//     with source.sync = true and the transformer does not send them back;
//     it ends with the partition's next offset stored in
//     alertsync.consumer_offsets under a fence epoch taken when the
//     partition was assigned: an apply that lost the partition (a zombie
//     after a rebalance) cannot commit. At start a partition resumes from
//     the stored offset; Kafka gets a copy for lag monitoring.
//   - Writes: alert and audit_event (source NOMIS, actioned_by the NOMIS
//     user, CREATED/UPDATED/DELETED with a readable description and the
//     *_updated flags, version incremented, soft delete by deleted_at, new
//     ids UUIDv7), and alertsync.alert_mapping with the newest NOMIS
//     position applied per alert: an older or repeated command is SKIPPED
//     stale_position.
//   - Conflicts (guarantee 4): when the command's before-image differs from
//     the DPS row, the later source commit wins, ties to DPS; the row's
//     commit time is pg_xact_commit_timestamp of its last change (the same
//     clock the DPS capture reads): track_commit_timestamp must be on.
//     Decisions are recorded in alertsync.conflicts; a lost command is a
//     CONFLICT outcome.
//   - Every command gets an outcome in the transaction's outbox row
//     (alertsync.outcome_batches, one row per batch); a relay publishes them
//     to alertsync.outcomes (and the DLQ entries of FAILED or held commands
//     to alertsync.dlq) and then deletes the row: never lost, possibly
//     repeated after a crash, always under the same command id.
//   - A command DPS refuses (unknown code, constraint violation) is rolled
//     back alone (savepoint), recorded FAILED with its DLQ entry, and holds
//     later commands of the same alert (alertsync.dlq_holds; each held one
//     is SKIPPED held, also in the DLQ).
package dps

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/pipeline"
	"github.com/alertsync/alertsync/schemas"
)

// Config is the configuration of `alertsync apply dps`.
type Config struct {
	Pipeline pipeline.Config `key:""`
	DPS      config.DPS      `key:"dps"`
	Apply    apply.Options   `key:"apply"`
}

// Deps are the parts an apply runs with, made by the caller.
type Deps struct {
	Registry schemas.Registry
	Admin    *admin.Server
	Logger   *slog.Logger
}

// Apply is `alertsync apply dps`.
type Apply struct {
	cfg    Config
	deps   Deps
	Runner *apply.Runner
}

// New returns the apply for cfg (validated by the caller).
func New(cfg Config, deps Deps) (*Apply, error) {
	if _, err := time.LoadLocation(cfg.Apply.Timezone); err != nil {
		return nil, fmt.Errorf("apply.timezone: %w", err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Apply{cfg: cfg, deps: deps}, nil
}

// Run applies until ctx is cancelled.
func (a *Apply) Run(ctx context.Context) error {
	cc, err := db.PostgresConfig(a.cfg.DPS.DSN, a.cfg.DPS.Password)
	if err != nil {
		return fmt.Errorf("dps.dsn: %w", err)
	}
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return err
	}
	pc.ConnConfig = cc
	pc.ConnConfig.RuntimeParams["application_name"] = "alertsync apply dps"
	pc.MaxConns = int32(min(a.cfg.Apply.Parallelism, 64)) + 2 //nolint:gosec // validated to 1..64: the partitions, the relay, a claim
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("connecting to DPS: %w", err)
	}
	defer pool.Close()
	if err := a.prepare(ctx, pool); err != nil {
		return err
	}
	loc, _ := time.LoadLocation(a.cfg.Apply.Timezone)
	st := &store{pool: pool, tz: a.cfg.Apply.Timezone, loc: loc, PGBookkeeping: &apply.PGBookkeeping{Pool: pool,
		Offsets: "alertsync.consumer_offsets", Outbox: "alertsync.outcome_batches"}}
	a.Runner = &apply.Runner{
		Name: "apply-dps", Topic: kafka.CommandsDPS, Store: st, Outbox: st, Opts: a.cfg.Apply,
		Pipeline: apply.PipelineConfig{Kafka: a.cfg.Pipeline.Kafka, Topics: a.cfg.Pipeline.Topics},
		Registry: a.deps.Registry, Admin: a.deps.Admin, Logger: a.deps.Logger,
	}
	return a.Runner.Run(ctx)
}

// prepare applies the sync-owned migrations and checks what conflict
// decisions need.
func (a *Apply) prepare(ctx context.Context, pool *pgxpool.Pool) error {
	sqlDB, err := db.OpenPostgres(ctx, a.cfg.DPS.DSN, a.cfg.DPS.Password, 30*time.Second)
	if err != nil {
		return fmt.Errorf("connecting to DPS: %w", err)
	}
	defer func() { _ = sqlDB.Close() }()
	return apply.PreparePostgres(ctx, sqlDB, pool, "dps", "DPS")
}

// RegisterMetrics registers the metrics apply dps serves on reg, as the
// component does when it starts; the metrics reference (docs/metrics.md)
// and the checks of the deploy files are built from it.
func RegisterMetrics(reg prometheus.Registerer) { apply.NewMetrics(reg, "apply-dps") }
