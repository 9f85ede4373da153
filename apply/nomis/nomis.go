package nomis

import (
	"context"
	"errors"
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
	SetPath   bool `key:"set_path" default:"true" doc:"Apply a batch of commands with one read and one write round trip (multi-row statements per table and NOMIS user) on the PostgreSQL stand-in; a batch with a case it leaves to the statement path (a refused write, a sequence a NOMIS user took meanwhile, a mapping key moved from an alert the batch changed) is redone command by command, counted in alertsync_apply_nomis_statement_path_batches_total. Off: always command by command. Oracle always goes command by command."`
	DPSLookup bool `key:"dps_lookup" default:"true" doc:"Look up the NOMIS key of a DPS alert that came from NOMIS in the DPS-side mapping (dps.dsn, read-only) when the NOMIS-side mapping has none. Turning it off makes a DPS change of such an alert create a second NOMIS alert: only for tests on a NOMIS alone."`
	// Sweep, SweepAt and SweepBatch drive the expiry sweep (sweep.go).
	Sweep      bool   `key:"sweep" default:"true" doc:"Run the daily expiry sweep: set ALERT_STATUS = 'INACTIVE' (as the sync) on the NOMIS rows of mapped DPS alerts whose active_to has passed, which no DPS change ever reports. Reads DPS through dps.dsn (read-only). Off: run it with 'alertsync apply nomis --sweep-now' instead."`
	SweepAt    string `key:"sweep_at" default:"02:00" doc:"Time of day of the expiry sweep, HH:MM (24-hour) in apply.timezone. On a daylight-saving change a skipped time runs when the clock jumps, a repeated one runs once (the first time)."`
	SweepBatch int    `key:"sweep_batch" default:"500" doc:"Most lapsed DPS alerts the expiry sweep handles in one NOMIS transaction."`
}

// Validate checks the section.
func (o *Options) Validate() error {
	var errs []error
	if _, err := parseClock(o.SweepAt); err != nil {
		errs = append(errs, &config.KeyError{Key: "sweep_at", Err: err})
	}
	if o.SweepBatch < 1 || o.SweepBatch > 100_000 {
		errs = append(errs, &config.KeyError{Key: "sweep_batch", Err: fmt.Errorf("must be between 1 and 100000, got %d", o.SweepBatch)})
	}
	return errors.Join(errs...)
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
	at     clock
	now    func() time.Time // the sweep's clock: time.Now but in tests
	Runner *apply.Runner
}

// New returns the apply for cfg (validated by the caller), on the dialect
// nomis.dialect names: postgres (the stand-in) or oracle.
func New(cfg Config, deps Deps) (*Apply, error) {
	if cfg.NOMIS.Dialect != "postgres" && cfg.NOMIS.Dialect != "oracle" {
		return nil, &config.KeyError{Key: "nomis.dialect", Err: fmt.Errorf("unknown dialect %q: use postgres or oracle", cfg.NOMIS.Dialect)}
	}
	loc, err := time.LoadLocation(cfg.Apply.Timezone)
	if err != nil {
		return nil, &config.KeyError{Key: "apply.timezone", Err: err}
	}
	var at clock
	if cfg.Own.Sweep {
		if at, err = parseClock(cfg.Own.SweepAt); err != nil {
			return nil, &config.KeyError{Key: "apply_nomis.sweep_at", Err: err}
		}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Apply{cfg: cfg, deps: deps, loc: loc, at: at, now: time.Now}, nil
}

// Run applies until ctx is cancelled (nil) or a fatal error. With
// apply_nomis.sweep it also runs the daily expiry sweep, stopped with it.
func (a *Apply) Run(ctx context.Context) error {
	// The partitions applied at once, the relay, a claim, the sweep.
	d, err := a.openDialect(ctx, "alertsync apply nomis", int32(min(a.cfg.Apply.Parallelism, 64))+3) //nolint:gosec // validated to 1..64
	if err != nil {
		return err
	}
	defer d.close()
	if err := d.prepare(ctx); err != nil {
		return err
	}
	st := newStore(d)
	st.setPath = a.cfg.Own.SetPath
	var reg prometheus.Registerer
	if a.deps.Admin != nil {
		reg = a.deps.Admin.Registry()
	}
	redone, paths := newPathMetrics(reg)
	st.onPath = func(set bool) {
		if set {
			paths.WithLabelValues("set").Inc()
		} else {
			paths.WithLabelValues("statement").Inc()
		}
	}
	st.onRedo = func(err error) {
		why := "refused"
		if errors.Is(err, errStatementPath) {
			why = "case"
		}
		redone.WithLabelValues(why).Inc()
		a.deps.Logger.Debug("batch redone on the statement path", "why", why)
	}
	var dps *pgxpool.Pool
	if a.cfg.Own.DPSLookup || a.cfg.Own.Sweep {
		dpsConns := int32(min(a.cfg.Apply.Parallelism, 64)) + 1 //nolint:gosec // validated to 1..64: the partitions' lookups, the sweep
		if dps, err = a.openDPS(ctx, "alertsync apply nomis (mapping lookup, expiry sweep)", dpsConns); err != nil {
			return err
		}
		defer dps.Close()
	}
	if a.cfg.Own.DPSLookup {
		st.dpsViews = func(ctx context.Context, ids []string) (map[string]dpsView, error) {
			return readDPSViews(ctx, dps, ids)
		}
	}
	if a.cfg.Own.Sweep {
		sw := a.sweeper(d, dps, reg)
		sctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); sw.schedule(sctx) }()
		defer func() { stop(); <-done }()
	}
	a.Runner = &apply.Runner{
		Name: "apply-nomis", Topic: kafka.CommandsNOMIS, Store: st, Outbox: st, Opts: a.cfg.Apply,
		Pipeline: apply.PipelineConfig{Kafka: a.cfg.Pipeline.Kafka, Topics: a.cfg.Pipeline.Topics},
		Registry: a.deps.Registry, Admin: a.deps.Admin, Logger: a.deps.Logger,
	}
	return a.Runner.Run(ctx)
}

// SweepNow runs one expiry sweep with the configuration (whatever
// apply_nomis.sweep says) and returns what it did: `alertsync apply nomis
// --sweep-now`. It needs the sync-owned schema in both databases (the apply
// migrates NOMIS's at start; `alertsync migrate`).
func (a *Apply) SweepNow(ctx context.Context) (SweepResult, error) {
	d, err := a.openDialect(ctx, "alertsync apply nomis (expiry sweep)", 1)
	if err != nil {
		return SweepResult{}, err
	}
	defer d.close()
	dps, err := a.openDPS(ctx, "alertsync apply nomis (expiry sweep)", 1)
	if err != nil {
		return SweepResult{}, err
	}
	defer dps.Close()
	return a.sweeper(d, dps, nil).run(ctx)
}

// sweeper returns the expiry sweep writing NOMIS through d and reading
// DPS through dps, its metrics registered with reg (nil: not registered).
func (a *Apply) sweeper(d dialect, dps *pgxpool.Pool, reg prometheus.Registerer) *sweeper {
	return &sweeper{nomis: d, dps: dps, loc: a.loc, at: a.at, batch: a.cfg.Own.SweepBatch,
		now: a.now, log: a.deps.Logger.With("task", "expiry_sweep"), m: newSweepMetrics(reg)}
}

// openDialect connects the NOMIS dialect of nomis.dialect with at most
// maxConns connections, name identifying the sessions (PostgreSQL's
// application_name; Oracle's module is DPS_SYNCHRONISATION and name goes
// in the action).
func (a *Apply) openDialect(ctx context.Context, name string, maxConns int32) (dialect, error) {
	if a.cfg.NOMIS.Dialect == "oracle" {
		return openOracle(a.cfg.NOMIS, a.cfg.Apply.Timezone, name, int(maxConns))
	}
	pool, err := a.openNOMIS(ctx, name, maxConns)
	if err != nil {
		return nil, err
	}
	d := newStandin(pool, a.cfg.Apply.Timezone)
	d.cfg = a.cfg.NOMIS
	return d, nil
}

// openNOMIS connects a pool of at most maxConns to the NOMIS stand-in.
func (a *Apply) openNOMIS(ctx context.Context, name string, maxConns int32) (*pgxpool.Pool, error) {
	cc, err := db.PostgresConfig(a.cfg.NOMIS.DSN, a.cfg.NOMIS.Password)
	if err != nil {
		return nil, fmt.Errorf("nomis.dsn: %w", err)
	}
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	pc.ConnConfig = cc
	pc.ConnConfig.RuntimeParams["application_name"] = name
	pc.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connecting to NOMIS: %w", err)
	}
	return pool, nil
}

// openDPS connects a read-only pool of at most maxConns to the DPS
// database: apply nomis only reads it (the DPS-side mapping, lapsed
// alerts).
func (a *Apply) openDPS(ctx context.Context, name string, maxConns int32) (*pgxpool.Pool, error) {
	dc, err := db.PostgresConfig(a.cfg.DPS.DSN, a.cfg.DPS.Password)
	if err != nil {
		return nil, fmt.Errorf("dps.dsn: %w", err)
	}
	dpc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	dpc.ConnConfig = dc
	dpc.ConnConfig.RuntimeParams["application_name"] = name
	dpc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	dpc.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, dpc)
	if err != nil {
		return nil, fmt.Errorf("connecting to DPS: %w", err)
	}
	return pool, nil
}

// readDPSViews reads, in one query, whether DPS has deleted each of the
// alerts ids and the NOMIS key of each one's DPS-side mapping.
func readDPSViews(ctx context.Context, dps *pgxpool.Pool, ids []string) (map[string]dpsView, error) {
	// Joined on the mapping's key alone, the rest tested after: a filter
	// in the join makes the planner misjudge a table not analyzed yet (see
	// capture nomis's AlertContexts).
	rows, err := dps.Query(ctx, `SELECT q.id::text,
		       CASE WHEN NOT m.deleted THEN m.nomis_booking_id END, CASE WHEN NOT m.deleted THEN m.nomis_alert_seq END,
		       a.deleted_at IS NOT NULL
		  FROM unnest($1::uuid[]) AS q(id)
		  LEFT JOIN public.alert a ON a.id = q.id
		  LEFT JOIN alertsync.alert_mapping m ON m.dps_alert_id = q.id`, ids)
	if err != nil {
		return nil, fmt.Errorf("reading %d alerts and their DPS-side mappings: %w", len(ids), err)
	}
	defer rows.Close()
	out := make(map[string]dpsView, len(ids))
	for rows.Next() {
		var id string
		var book *int64
		var seq *int32
		var v dpsView
		if err := rows.Scan(&id, &book, &seq, &v.deleted); err != nil {
			return nil, fmt.Errorf("reading alerts and their DPS-side mappings: %w", err)
		}
		if book != nil && seq != nil {
			v.key = &nomisKey{book: *book, seq: *seq}
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading alerts and their DPS-side mappings: %w", err)
	}
	return out, nil
}

// newPathMetrics creates the counters of the two write paths (registered on
// reg unless it is nil): batches the set path left to the statement path,
// and batches committed by each path.
func newPathMetrics(reg prometheus.Registerer) (redone, paths *prometheus.CounterVec) {
	redone = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertsync_apply_nomis_statement_path_batches_total",
		Help: "Batches the set path left to the statement path, by why: case (a case it leaves to it) or refused (a write the database refused)."},
		[]string{"why"})
	paths = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertsync_apply_nomis_committed_batches_total",
		Help: "Batches committed, by the path that applied them: set (multi-row statements) or statement (command by command)."},
		[]string{"path"})
	if reg != nil {
		reg.MustRegister(redone, paths)
	}
	return redone, paths
}

// RegisterMetrics registers the metrics apply nomis serves on reg, as the
// component does when it starts (the apply's, the write paths', the expiry
// sweep's); the metrics reference (docs/metrics.md) and the checks of the
// deploy files are built from it.
func RegisterMetrics(reg prometheus.Registerer) {
	apply.NewMetrics(reg, "apply-nomis")
	newPathMetrics(reg)
	newSweepMetrics(reg)
}
