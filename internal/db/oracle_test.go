package db_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/db"
)

func TestOracleParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		dsn      string
		password string
		wantUser string
		wantConn string
		wantPass string
		wantErr  string
	}{
		{name: "easy connect", dsn: "alertsync_capture@nomis-db:1521/NOMIS", wantUser: "alertsync_capture", wantConn: "nomis-db:1521/NOMIS"},
		{name: "password from the secret wins", dsn: "scott/tiger@nomis-db:1521/NOMIS", password: "s3cret",
			wantUser: "scott", wantConn: "nomis-db:1521/NOMIS", wantPass: "s3cret"},
		{name: "password kept without a secret", dsn: "scott/tiger@nomis-db:1521/NOMIS", wantUser: "scott",
			wantConn: "nomis-db:1521/NOMIS", wantPass: "tiger"},
		{name: "url", dsn: "oracle://scott@nomis-db:1521/NOMIS", password: "s3cret", wantUser: "scott",
			wantConn: "nomis-db:1521/NOMIS", wantPass: "s3cret"},
		{name: "logfmt", dsn: `user="scott" connectString="nomis-db:1521/NOMIS"`, wantUser: "scott", wantConn: "nomis-db:1521/NOMIS"},
		{name: "postgres url refused", dsn: "postgres://alertsync@localhost:5433/nomis", wantErr: "a PostgreSQL URL; give an Oracle connect string"},
		{name: "unparsable url", dsn: "oracle://scott:hidden-pw@nomis-db:15%21/NOMIS", wantErr: "invalid connect string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var pw config.Secret
			if tt.password != "" {
				pw = config.NewSecret(tt.password)
			}
			p, err := db.OracleParams(tt.dsn, pw)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "hidden-pw")
				require.NotContains(t, err.Error(), ":pw@")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantUser, p.Username)
			require.Equal(t, tt.wantConn, p.ConnectString)
			require.Equal(t, tt.wantPass, p.Password.Secret())
			require.True(t, p.StandaloneConnection, "standalone sessions: closing one drops its locks")
			require.NotContains(t, fmt.Sprint(p), tt.wantPass+"@", "params print without the password")
		})
	}
}

// TestOracleWithoutClientLibrary connects where the Oracle client library
// cannot be found: libDir names an empty directory, which ODPI-C searches
// alone, so the test behaves the same with or without Instant Client
// installed (this machine has none). The error must name the library and
// say how to install it.
func TestOracleWithoutClientLibrary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := fmt.Sprintf(`user="scott" password="hidden-pw" connectString="127.0.0.1:1/NOMIS" libDir=%q`, t.TempDir())
	check := func(t *testing.T, err error) {
		t.Helper()
		require.ErrorIs(t, err, db.ErrOracleClient)
		require.True(t, db.IsOracleClientError(err))
		for _, want := range []string{db.OracleClientLibrary(), "Oracle Instant Client", "LD_LIBRARY_PATH", "DPI-1047"} {
			require.ErrorContains(t, err, want)
		}
		require.NotContains(t, err.Error(), "hidden-pw")
	}
	t.Run("open", func(t *testing.T) {
		_, err := db.OpenOracle(ctx, dsn, config.Secret{}, 5*time.Second)
		check(t, err)
		require.ErrorContains(t, err, `connecting to Oracle at "127.0.0.1:1/NOMIS" as "scott"`)
	})
	t.Run("handle", func(t *testing.T) {
		h, err := db.OracleDB(dsn, config.Secret{})
		require.NoError(t, err, "no connection before use")
		t.Cleanup(func() { require.NoError(t, h.Close()) })
		conn, err := h.Conn(ctx)
		if err == nil {
			_ = conn.Close()
		}
		check(t, err)
	})
	t.Run("other errors are not client errors", func(t *testing.T) {
		require.False(t, db.IsOracleClientError(errors.New("DPI-1047: lookalike")))
		require.False(t, db.IsOracleClientError(nil))
	})
}
