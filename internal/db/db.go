// Package db opens the database connections of alertsync components from
// their configuration, keeping passwords out of DSNs, logs and errors.
package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/alertsync/alertsync/internal/config"
)

// PostgresConfig parses dsn and applies password (when set) over any password
// in the DSN. The returned error never contains the DSN's password.
func PostgresConfig(dsn string, password config.Secret) (*pgx.ConnConfig, error) {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx errors can quote the DSN; give only the redacted form.
		return nil, fmt.Errorf("parsing PostgreSQL DSN %q: invalid connection string", config.RedactDSN(dsn))
	}
	if password.IsSet() {
		cc.Password = password.Reveal()
	}
	return cc, nil
}

// OpenPostgres opens a database/sql handle on PostgreSQL through pgx's stdlib
// driver and checks it with a ping bounded by timeout.
func OpenPostgres(ctx context.Context, dsn string, password config.Secret, timeout time.Duration) (*sql.DB, error) {
	cc, err := PostgresConfig(dsn, password)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cc)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL at %s:%d database %q as %q: %w", cc.Host, cc.Port, cc.Database, cc.User, err)
	}
	return db, nil
}
