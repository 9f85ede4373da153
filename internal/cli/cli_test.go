package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(t.Context(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestConfigDocsUpToDate(t *testing.T) {
	t.Parallel()
	committed, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	require.Equal(t, ConfigDocs(), string(committed), "docs/configuration.md is stale: run `make docs`")
	for _, key := range []string{"kafka.brokers", "registry.url", "dps.dsn", "nomis.dsn", "nomis.dialect", "admin.listen", "topics.prefix"} {
		require.Contains(t, string(committed), "`"+key+"`", "DESIGN.md key %s documented", key)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	var ue *UsageError
	_, _, err := run(t)
	require.ErrorAs(t, err, &ue)
	_, errOut, err := run(t, "frobnicate")
	require.ErrorAs(t, err, &ue)
	require.Contains(t, errOut, "migrate")
	_, _, err = run(t, "migrate", "--dps.dsn=postgres://x@127.0.0.1:1/x", "nowhere")
	require.ErrorAs(t, err, &ue)
	require.ErrorContains(t, err, "nowhere")
	_, _, err = run(t, "config", "check", "nosuch")
	require.ErrorAs(t, err, &ue)
}

func TestConfigCheckNamesTheKey(t *testing.T) {
	t.Setenv("ALERTSYNC_TOPICS_PARTITIONS", "0")
	_, _, err := run(t, "config", "check", "pipeline", "--nomis.dialect=oracle")
	require.Error(t, err, "pipeline has no nomis section: unknown flag")

	_, _, err = run(t, "config", "check", "pipeline", "--kafka.brokers=")
	require.Error(t, err)
	require.ErrorContains(t, err, "topics.partitions")
	require.ErrorContains(t, err, "kafka.brokers")

	t.Setenv("ALERTSYNC_TOPICS_PARTITIONS", "6")
	out, _, err := run(t, "config", "check", "pipeline")
	require.NoError(t, err)
	require.Contains(t, out, "valid")
}

func TestConfigPrintRedacts(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("registry-s3cret"), 0o600))
	cfgFile := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("registry:\n  url: https://sr:8081\n  username: u\n  password_file: "+pwFile+"\n"), 0o600))
	t.Setenv("ALERTSYNC_KAFKA_SASL_PASSWORD", "kafka-s3cret")
	t.Setenv("ALERTSYNC_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	t.Setenv("ALERTSYNC_KAFKA_SASL_USERNAME", "svc")
	out, errOut, err := run(t, "config", "print", "pipeline", "--config", cfgFile)
	require.NoError(t, err, errOut)
	require.Contains(t, out, "registry.url = https://sr:8081")
	require.Contains(t, out, "registry.password = [redacted]")
	require.Contains(t, out, "kafka.sasl.password = [redacted]")
	require.NotContains(t, out+errOut, "s3cret")
}

func TestMigrateDPS(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	out, errOut, err := run(t, "migrate", "--dps.dsn", db.DSN, "--status", "dps")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "pending")
	require.NotContains(t, out, "applied")

	out, errOut, err = run(t, "migrate", "--dps.dsn", db.DSN, "--target", "1", "dps")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "at version 1 (1 applied now)")

	out, errOut, err = run(t, "migrate", "--dps.dsn", db.DSN, "dps")
	require.NoError(t, err, errOut)
	require.Regexp(t, `at version \d+ \(\d+ applied now\)`, out)
	require.NotContains(t, out, "(0 applied now)")

	out, _, err = run(t, "migrate", "--dps.dsn", db.DSN, "dps")
	require.NoError(t, err)
	require.Contains(t, out, "(0 applied now)", "second run is a no-op")

	out, _, err = run(t, "migrate", "--dps.dsn", db.DSN, "--status", "dps")
	require.NoError(t, err)
	require.NotContains(t, out, "pending")
	require.Equal(t, 1, pgtest.QueryValue[int](t, db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'alertsync'"))
}

func TestMigrateUnreachableDatabase(t *testing.T) {
	t.Parallel()
	_, _, err := run(t, "migrate", "--dps.dsn", "postgres://alertsync:pw-in-dsn@127.0.0.1:1/alerts", "--connect_timeout", "2s", "dps")
	require.Error(t, err)
	require.ErrorContains(t, err, "127.0.0.1:1")
	require.NotContains(t, err.Error(), "pw-in-dsn")
}

// TestMigrateNOMISOracle: with nomis.dialect=oracle, migrate nomis opens
// Oracle through godror (never PostgreSQL). No Oracle server can run here,
// so what is checked is the way to it: the connect string is parsed as an
// Oracle one, and a missing Oracle client library (libDir names an empty
// directory, the only one ODPI-C then searches: the same with or without
// Instant Client installed, and this machine has none) is an error that
// names the library and how to install it.
func TestMigrateNOMISOracle(t *testing.T) {
	t.Parallel()
	noClient := fmt.Sprintf(`--nomis.dsn=user="oms_owner" password="pw-in-dsn" connectString="127.0.0.1:1/NOMIS" libDir=%q`, t.TempDir())
	tests := []struct {
		name     string
		args     []string
		want     []string
		noClient bool
	}{
		{"apply", []string{"migrate", "--nomis.dialect=oracle", noClient, "nomis"},
			[]string{"migrate nomis: connecting to Oracle at \"127.0.0.1:1/NOMIS\" as \"oms_owner\"", db.OracleClientLibrary(), "Oracle Instant Client"}, true},
		{"status", []string{"migrate", "--nomis.dialect=oracle", "--status", noClient, "nomis"},
			[]string{db.OracleClientLibrary(), "Oracle Instant Client"}, true},
		{"postgres url", []string{"migrate", "--nomis.dialect=oracle", "--nomis.dsn=postgres://alertsync:pw-in-dsn@127.0.0.1:1/nomis", "nomis"},
			[]string{"a PostgreSQL URL; give an Oracle connect string"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := run(t, tt.args...)
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			require.Equal(t, tt.noClient, errors.Is(err, db.ErrOracleClient))
			require.NotContains(t, err.Error(), "pw-in-dsn")
		})
	}
}

// TestBinaryExitCodes builds the real binary: 0 on success, 2 on a usage
// error, 1 on a bad configuration, with the key named on stderr.
func TestBinaryExitCodes(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "alertsync")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../../cmd/alertsync")
	outb, err := build.CombinedOutput()
	require.NoError(t, err, string(outb))

	tests := []struct {
		args     []string
		env      []string
		wantCode int
		wantOut  string
	}{
		{[]string{"version"}, nil, 0, "alertsync "},
		{[]string{"nope"}, nil, 2, "unknown subcommand"},
		{[]string{"config", "check", "pipeline"}, []string{"ALERTSYNC_ADMIN_LISTEN=nonsense"}, 1, "admin.listen"},
		{[]string{"config", "check", "pipeline"}, []string{"ALERTSYNC_LOG_LEVEL=loud"}, 1, "log.level"},
	}
	for _, tc := range tests {
		cmd := exec.CommandContext(t.Context(), bin, tc.args...)
		cmd.Env = append(os.Environ(), tc.env...)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, tc.wantCode, code, "%v: %s", tc.args, buf.String())
		require.True(t, strings.Contains(buf.String(), tc.wantOut), "%v: %s", tc.args, buf.String())
	}
}

// TestHelpExitsZero: -h and --help print usage and exit 0 (not history's 1,
// "none found", nor a usage error's 2), wherever they are given: after a
// subcommand, after a command's action or target, and after an argument,
// where the flag package stops parsing.
func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	cases := [][]string{
		{"history", "-h"}, {"history", "--help"}, {"lag", "-h"}, {"monitor", "-h"}, {"reconcile", "-h"}, {"transform", "-h"},
		{"demo", "-h"}, {"metrics", "-h"},
		{"capture", "-h"}, {"apply", "--help"}, {"dlq", "-h"}, {"config", "-h"},
		{"capture", "dps", "-h"}, {"capture", "nomis", "-h"}, {"apply", "dps", "-h"}, {"apply", "nomis", "-h"},
		{"dlq", "list", "-h"}, {"dlq", "redrive", "-h"}, {"config", "check", "-h"}, {"config", "print", "--help"},
		{"config", "check", "transform", "-h"}, {"migrate", "-h"}, {"migrate", "dps", "-h"}, {"monitor", "x=http://h:1", "-h"},
		{"transform", "replay", "-h"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, err := run(t, args...)
			require.NoError(t, err)
			require.Equal(t, 0, ExitCode(err))
			require.Contains(t, out+errOut, "Usage", "it says how to use it")
		})
	}
}
