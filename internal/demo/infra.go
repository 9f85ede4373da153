package demo

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/alertsync/alertsync/internal/pgcluster"
)

// kfakeLogger passes the embedded broker's errors and warnings to slog.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Error(fmt.Sprintf(format, args...))
	case kfake.LogLevelWarn:
		l.log.Debug(fmt.Sprintf(format, args...)) // request failures a client retries: noise at warn
	}
}

// startKafka starts the embedded single-broker Kafka on 127.0.0.1:port,
// persisting to <dir>/kafka.
func startKafka(dir string, port int, log *slog.Logger) (*kfake.Cluster, error) {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ClusterID("alertsync-demo"),
		kfake.DataDir(filepath.Join(dir, dirKafka)),
		kfake.WithLogger(kfakeLogger{log: log.With("component", "kafka")}),
	)
	if err != nil {
		return nil, fmt.Errorf("starting the embedded Kafka broker on 127.0.0.1:%d (kafka_listen): %w", port, err)
	}
	return c, nil
}

// startCluster starts (initialising on first use) the persistent PostgreSQL
// cluster in <dir>/<name> and creates database db when missing.
func startCluster(ctx context.Context, dir, name, db, binDir string, log *slog.Logger) (*pgcluster.Cluster, error) {
	c, err := pgcluster.Start(ctx, pgcluster.Options{
		Dir:      filepath.Join(dir, name),
		BinDir:   binDir,
		Settings: map[string]string{"timezone": "'Europe/London'", "log_timezone": "'UTC'"},
		Logger:   log.With("component", "postgres-"+name),
	})
	if err != nil {
		return nil, fmt.Errorf("starting the %s PostgreSQL cluster: %w", name, err)
	}
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }() // a read-only check; closing loses nothing
	var have bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&have); err != nil {
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("looking up database %q: %w", db, err)
	}
	if !have {
		if err := c.CreateDB(ctx, db); err != nil {
			_ = c.Stop(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return c, nil
}
