package cli

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/service"
)

// MigrateConfig is the configuration of `alertsync migrate`.
type MigrateConfig struct {
	DPS            config.DPS    `key:"dps"`
	NOMIS          config.NOMIS  `key:"nomis"`
	Log            config.Log    `key:"log"`
	ConnectTimeout time.Duration `key:"connect_timeout" default:"30s" doc:"Longest wait for a database connection."`
}

func runMigrate(ctx context.Context, args []string, out, errOut io.Writer) error {
	var cfg MigrateConfig
	fs := newFlagSet("migrate", errOut)
	target := fs.Int("target", migrate.Latest, "apply migrations up to this version (default: all)")
	status := fs.Bool("status", false, "print each migration as applied or pending and change nothing")
	fs.Usage = func() {
		// flag.FlagSet.Usage cannot return an error; its other output
		// (PrintDefaults) discards write errors as well.
		_, _ = fmt.Fprintf(errOut, "Usage: alertsync migrate [flags] <%s>\n\nApplies the sync-owned schema objects (never the service's own tables) as versioned migrations.\nWith nomis.dialect=oracle, nomis gets the Oracle set (deploy/oracle/migrations) through godror:\nconnect as OMS_OWNER; Oracle Instant Client must be installed.\n\nFlags:\n", strings.Join(deploy.MigrationSets(), "|"))
		fs.PrintDefaults()
	}
	rest, err := loadConfig(fs, &cfg, args, os.LookupEnv)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fs.Usage()
		return usagef("migrate: want exactly one target database (%s)", strings.Join(deploy.MigrationSets(), ", "))
	}
	set, err := migrate.Named(rest[0])
	if err != nil {
		return usagef("migrate: %v", err)
	}
	log := service.NewLogger(cfg.Log, errOut)
	var (
		conn *sql.DB
		opts []migrate.Option
	)
	switch {
	case rest[0] == "nomis" && cfg.NOMIS.Dialect == "oracle":
		// The Oracle version of the set, applied as OMS_OWNER
		// (deploy/oracle/README.md) through godror.
		if set, err = migrate.Load(set.Name, deploy.OracleMigrations()); err != nil {
			return fmt.Errorf("migrate %s: %w", rest[0], err)
		}
		opts = append(opts, migrate.WithDialect(migrate.Oracle{}))
		conn, err = db.OpenOracle(ctx, cfg.NOMIS.DSN, cfg.NOMIS.Password, cfg.ConnectTimeout)
	case rest[0] == "nomis":
		conn, err = db.OpenPostgres(ctx, cfg.NOMIS.DSN, cfg.NOMIS.Password, cfg.ConnectTimeout)
	default:
		conn, err = db.OpenPostgres(ctx, cfg.DPS.DSN, cfg.DPS.Password, cfg.ConnectTimeout)
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", rest[0], err)
	}
	defer func() { _ = conn.Close() }()

	if *status {
		states, err := migrate.Status(ctx, conn, set, opts...)
		if err != nil {
			return err
		}
		for _, s := range states {
			state := "pending"
			switch {
			case s.Changed:
				state = "CHANGED since applied"
			case s.Applied:
				state = "applied " + s.AppliedAt.UTC().Format(time.RFC3339)
			}
			if _, err := fmt.Fprintf(out, "%s %04d %-32s %s\n", set.Name, s.Version, s.Name, state); err != nil {
				return fmt.Errorf("printing migration status: %w", err)
			}
		}
		return nil
	}
	res, err := migrate.Up(ctx, conn, set, *target, append(opts, migrate.WithLogger(log))...)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(out, "%s: at version %d (%d applied now)\n", set.Name, res.Version, len(res.Applied)); err != nil {
		return fmt.Errorf("reporting migration result: %w", err)
	}
	return nil
}
