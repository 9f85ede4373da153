package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/pgcluster"
	"github.com/alertsync/alertsync/internal/pipeline"
)

// Deps are what Run writes to.
type Deps struct {
	// Out receives the progress lines and the how-to-use text. Default: discard.
	Out io.Writer
	// Logger receives the components' logs. Default: discard.
	Logger *slog.Logger
	// Version is the binary's version, written into the change records' source.
	Version string
	// Reset removes the data directory first, to start over (--reset).
	// Default false: resume from the state found there.
	Reset bool
}

// Run prepares the embedded infrastructure under cfg.DataDir, runs every
// pipeline component until ctx ends or one fails, and stops everything in
// reverse order. It returns nil after a clean stop.
func Run(ctx context.Context, cfg Config, deps Deps) (err error) {
	if deps.Out == nil {
		deps.Out = io.Discard
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	out, log := deps.Out, deps.Logger
	say := func(format string, a ...any) { _, _ = fmt.Fprintf(out, format+"\n", a...) } // progress only
	begin := time.Now()

	dir, err := prepareDir(cfg.DataDir, deps.Reset)
	if err != nil {
		return err
	}
	if deps.Reset {
		say("demo: --reset: removed the previous state in %s", dir)
	}
	var stops []func() // run in reverse order on the way out
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()

	// The admin server first: its page shows the progress too.
	srv := admin.New(cfg.Admin.Listen, cfg.Shutdown.Timeout, log.With("component", "admin"))
	srv.SetIndex(newPage(srv))
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	adminDone := make(chan error, 1)
	go func() { adminDone <- srv.Serve(adminCtx) }()
	adminAddr, err := srv.Addr(ctx)
	if err != nil {
		stopAdmin()
		return err
	}
	stops = append(stops, func() {
		stopAdmin()
		if err := <-adminDone; err != nil {
			log.Error("stopping the admin server", "err", err)
		}
	})
	adminURL := "http://" + adminAddr
	infra := map[string]*admin.Component{}
	for _, n := range []string{"kafka", "registry", "postgres-dps", "postgres-nomis"} {
		infra[n] = srv.Component(n)
	}
	for _, n := range Components() {
		srv.Component(n) // listed (starting) from the first page load on
	}
	say("demo: data directory %s; admin page %s", dir, adminURL)

	prev := readPorts(dir)
	kport, err := freePort(ctx, cfg.KafkaListen, prev.Kafka)
	if err != nil {
		return fmt.Errorf("choosing the Kafka port (kafka_listen): %w", err)
	}
	say("demo: starting the embedded Kafka broker (state in %s)…", filepath.Join(dir, dirKafka))
	kc, err := startKafka(dir, kport, log)
	if err != nil {
		return err
	}
	stops = append(stops, func() { kc.Close(); infra["kafka"].Set(admin.Stopped, "") })
	brokers := kc.ListenAddrs()
	infra["kafka"].Set(admin.Running, "embedded broker")
	infra["kafka"].Position(strings.Join(brokers, ","))

	rln, err := listen(ctx, cfg.RegistryListen, prev.Registry)
	if err != nil {
		return fmt.Errorf("schema registry (registry_listen): %w", err)
	}
	reg, err := startRegistry(rln, filepath.Join(dir, fileSchemas), log.With("component", "registry"))
	if err != nil {
		_ = rln.Close()
		return err
	}
	stops = append(stops, func() { _ = reg.Close(2 * time.Second); infra["registry"].Set(admin.Stopped, "") })
	infra["registry"].Set(admin.Running, "embedded registry")
	infra["registry"].Position(reg.URL())
	if err := writePorts(dir, ports{Kafka: kport, Registry: rln.Addr().(*net.TCPAddr).Port}); err != nil {
		return err
	}

	clusters := map[string]*pgcluster.Cluster{}
	for _, x := range []struct{ name, db string }{{dirDPS, dbDPS}, {dirNOMIS, dbNOMIS}} {
		say("demo: starting the %s PostgreSQL cluster (%s)…", strings.ToUpper(x.name), filepath.Join(dir, x.name))
		c, err := startCluster(ctx, dir, x.name, x.db, cfg.PGBin, log)
		if err != nil {
			return err
		}
		comp := infra["postgres-"+x.name]
		stops = append(stops, func() {
			if err := c.Stop(context.Background()); err != nil {
				log.Error("stopping a PostgreSQL cluster", "cluster", x.name, "err", err)
			}
			comp.Set(admin.Stopped, "")
		})
		clusters[x.name] = c
		comp.Set(admin.Running, "PostgreSQL")
		comp.Position("127.0.0.1:" + strconv.Itoa(c.Port()))
	}
	dpsDSN, nomisDSN := clusters[dirDPS].DSN(dbDPS), clusters[dirNOMIS].DSN(dbNOMIS)

	if err := setup(ctx, dir, cfg.Prisoners, clusters, say); err != nil {
		return err
	}

	rcl, err := pipeline.NewRegistry(registryConfig(reg.URL()))
	if err != nil {
		return err
	}
	var pc pipeline.Config
	if err := defaults(&pc); err != nil {
		return err
	}
	pc.Kafka.Brokers = brokers
	pc.Kafka.ClientID = "alertsync-demo"
	pc.Registry.URL = reg.URL()
	pc.Topics.Partitions, pc.Topics.ReplicationFactor = 3, 1
	pc.Log, pc.Shutdown, pc.Admin = cfg.Log.Config(), cfg.Shutdown, cfg.Admin
	w := &wiring{pc: pc, dpsDSN: dpsDSN, nomisDSN: nomisDSN, reg: rcl, srv: srv, log: log, version: deps.Version}

	// The components, each waiting for the one before it to run: capture
	// dps publishes the reference data the transformer needs before the
	// NOMIS initial load arrives.
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range Components() {
		r, err := w.build(name)
		if err != nil {
			return err
		}
		say("demo: starting %s…", name)
		g.Go(func() error {
			err := r.run(gctx)
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
		if err := waitRunning(gctx, srv, name, 2*time.Minute, say); err != nil && gctx.Err() != nil {
			break // the group's error (or ctx) says why; after a mere timeout the next one starts anyway
		}
	}
	ready := make(chan struct{})
	g.Go(func() error {
		if err := waitRunning(gctx, srv, "", 5*time.Minute, say); err != nil {
			return nil //nolint:nilerr // the group's error or ctx says why; waiting is not the failure
		}
		env := envFile{DPS: dpsDSN, NOMIS: nomisDSN, Brokers: strings.Join(brokers, ","), Registry: reg.URL(), Admin: adminURL}
		if err := writeFileAtomic(filepath.Join(dir, fileEnv), []byte(env.String()), publicMode); err != nil {
			return err
		}
		close(ready)
		say("demo: ready in %s.", time.Since(begin).Round(100*time.Millisecond))
		say("%s", env.usage(filepath.Join(dir, fileEnv), sampleBookingHint(gctx, nomisDSN)))
		return nil
	})

	waitErr := make(chan error, 1)
	go func() { waitErr <- g.Wait() }()
	select {
	case err = <-waitErr:
	case <-ctx.Done():
		say("demo: stopping (draining at most %s)…", cfg.Shutdown.Timeout)
		select {
		case err = <-waitErr:
		case <-time.After(cfg.Shutdown.Timeout):
			err = fmt.Errorf("demo: components still running %s after the stop (shutdown.timeout)", cfg.Shutdown.Timeout)
		}
	}
	if err == nil && ctx.Err() == nil {
		err = errors.New("demo: the components stopped on their own")
	}
	if err == nil {
		say("demo: stopped; the state is kept in %s (start again to resume, --reset to start over).", dir)
	}
	return err
}

// replicaIdentityFull lets capture dps see whole before-images of every
// captured DPS table (alert has it from its schema).
const replicaIdentityFull = `ALTER TABLE alert_code REPLICA IDENTITY FULL;
ALTER TABLE alert_type REPLICA IDENTITY FULL;
ALTER TABLE audit_event REPLICA IDENTITY FULL;`

// setup creates the schemas, reference data and sample prisoners once.
func setup(ctx context.Context, dir string, prisoners int, clusters map[string]*pgcluster.Cluster, say func(string, ...any)) error {
	marker := filepath.Join(dir, fileSetup)
	if exists(marker) {
		say("demo: resuming from the previous run's state")
		return nil
	}
	say("demo: creating the DPS and NOMIS schemas and reference data…")
	for _, x := range []struct {
		name, db string
		sql      []string
	}{
		{dirDPS, dbDPS, []string{deploy.DPSSchemaSQL(), deploy.DPSSeedSQL(), replicaIdentityFull}},
		{dirNOMIS, dbNOMIS, []string{deploy.NOMISSchemaSQL(), deploy.NOMISSeedSQL()}},
	} {
		if err := execAll(ctx, clusters[x.name], x.db, x.sql...); err != nil {
			return fmt.Errorf("creating the %s schema: %w", x.name, err)
		}
	}
	conn, err := clusters[dirNOMIS].Connect(ctx, dbNOMIS)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }() // the seed is committed or rolled back by now
	sample := samplePrisoners(prisoners)
	seeded, err := seedNOMIS(ctx, conn, sample)
	if err != nil {
		return err
	}
	if seeded {
		n := 0
		for _, p := range sample {
			for _, b := range p.bookings {
				n += len(b.alerts)
			}
		}
		say("demo: seeded %d sample prisoners with %d NOMIS alerts (the initial load copies those on current bookings to DPS)", len(sample), n)
	}
	return writeFileAtomic(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), privateMode)
}

func execAll(ctx context.Context, c *pgcluster.Cluster, db string, sqls ...string) error {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }() // each statement is committed on its own
	for _, s := range sqls {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("running SQL on %s: %w", db, err)
		}
	}
	return nil
}

// waitRunning waits until the component name (every component when name is
// "") is running, printing who it waits for every few seconds.
func waitRunning(ctx context.Context, srv *admin.Server, name string, limit time.Duration, say func(string, ...any)) error {
	deadline := time.Now().Add(limit)
	lastSaid := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		var waiting []string
		for _, st := range srv.Statuses() {
			if (name == "" || st.Name == name) && st.State != admin.Running {
				w := st.Name + " (" + string(st.State)
				if st.Detail != "" {
					w += ": " + st.Detail
				}
				waiting = append(waiting, w+")")
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		if time.Since(lastSaid) >= 3*time.Second {
			say("demo: waiting for %s", strings.Join(waiting, ", "))
			lastSaid = time.Now()
		}
		if time.Now().After(deadline) {
			say("demo: still waiting after %s for %s; see the admin page", limit, strings.Join(waiting, ", "))
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// sampleBookingHint returns the prison number and current booking of the
// first sample prisoner, for the example change ("", 0 when unknown).
func sampleBookingHint(ctx context.Context, nomisDSN string) bookingHint {
	conn, err := pgx.Connect(ctx, nomisDSN)
	if err != nil {
		return bookingHint{}
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }() // read-only
	var h bookingHint
	_ = conn.QueryRow(ctx, `SELECT o.offender_id_display, b.offender_book_id::bigint FROM oms_owner.offender_bookings b
JOIN oms_owner.offenders o ON o.offender_id = b.offender_id WHERE b.booking_seq = 1 ORDER BY b.offender_book_id LIMIT 1`).Scan(&h.PrisonNumber, &h.Booking)
	return h
}
