package nomis

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/config"
)

func loadConfig(t *testing.T, env map[string]string) (Config, error) {
	t.Helper()
	var cfg Config
	require.NoError(t, config.Load(&cfg, config.Sources{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}))
	return cfg, config.Validate(&cfg)
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(t, nil)
	require.NoError(t, err)
	require.Equal(t, "postgres", cfg.NOMIS.Dialect)
	require.Equal(t, 5000, cfg.Capture.BatchSize)
	require.Equal(t, 50*time.Millisecond, cfg.Capture.PollMin)
	require.Equal(t, 2*time.Second, cfg.Capture.PollMax)
	require.Equal(t, 20*time.Millisecond, cfg.Capture.Settle)
	require.True(t, cfg.Capture.Migrate)
	require.False(t, cfg.Capture.LockWait)
	require.Equal(t, "Europe/London", cfg.Capture.Timezone)
	require.Equal(t, 3*5000+1024, cfg.Capture.BufferedRecords())
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		key  string
		want string
	}{
		{"oracle dialect with a PostgreSQL URL", map[string]string{"ALERTSYNC_NOMIS_DIALECT": "oracle"}, "nomis.dsn", "a PostgreSQL URL; give an Oracle connect string"},
		{"unknown dialect", map[string]string{"ALERTSYNC_NOMIS_DIALECT": "mysql"}, "nomis.dialect", "want one of oracle, postgres"},
		{"empty DSN", map[string]string{"ALERTSYNC_NOMIS_DSN": " "}, "nomis.dsn", "required"},
		{"batch size 0", map[string]string{"ALERTSYNC_CAPTURE_BATCH_SIZE": "0"}, "capture.batch_size", "must be between 1 and 100000"},
		{"batch size too large", map[string]string{"ALERTSYNC_CAPTURE_BATCH_SIZE": "100001"}, "capture.batch_size", "must be between 1 and 100000"},
		{"poll max below min", map[string]string{"ALERTSYNC_CAPTURE_POLL_MIN": "1s", "ALERTSYNC_CAPTURE_POLL_MAX": "500ms"}, "capture.poll_max", "at least capture.poll_min"},
		{"poll min zero", map[string]string{"ALERTSYNC_CAPTURE_POLL_MIN": "0s"}, "capture.poll_min", "must be positive"},
		{"negative settle", map[string]string{"ALERTSYNC_CAPTURE_SETTLE": "-1ms"}, "capture.settle", "must not be negative"},
		{"bad zone", map[string]string{"ALERTSYNC_CAPTURE_TIMEZONE": "Mars/Olympus"}, "capture.timezone", "unknown zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(t, tt.env)
			require.Error(t, err)
			var found bool
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var ke *config.KeyError
				if errors.As(e, &ke) && ke.Key == tt.key {
					found = true
					require.ErrorContains(t, ke, tt.want)
				}
			}
			require.True(t, found, "no error for key %s in %v", tt.key, err)
		})
	}
}

func TestNewDialect(t *testing.T) {
	t.Parallel()
	d, err := NewDialect("postgres", Options{})
	require.NoError(t, err)
	require.Equal(t, "postgres", d.Name())
	require.Equal(t, "alertsync.alertsync_journal", d.JournalTable())
	d, err = NewDialect("oracle", Options{})
	require.NoError(t, err)
	require.Equal(t, "oracle", d.Name())
	require.Equal(t, "OMS_OWNER.ALERTSYNC_JOURNAL", d.JournalTable())
	_, err = NewDialect("mysql", Options{})
	require.ErrorIs(t, err, ErrDialect)
	require.ErrorContains(t, err, `"mysql" (this build has: oracle, postgres)`)
}

func TestConfigOracleDSN(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(t, map[string]string{"ALERTSYNC_NOMIS_DIALECT": "oracle",
		"ALERTSYNC_NOMIS_DSN": "alertsync_capture@nomis-db:1521/NOMIS"})
	require.NoError(t, err)
	require.Equal(t, "oracle", cfg.NOMIS.Dialect)
}

// TestNewNeedsABufferForABatch: a Kafka client whose buffer cannot hold a
// batch's records would block a produce forever; New refuses it.
func TestNewNeedsABufferForABatch(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(t, nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		buffered int
		ok       bool
	}{{10_000, false}, {cfg.Capture.BufferedRecords(), true}} {
		kcl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.MaxBufferedRecords(tc.buffered))
		require.NoError(t, err)
		_, err = New(cfg, Deps{Kafka: kcl})
		kcl.Close()
		if tc.ok {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, "the Kafka client buffers 10000 records, a batch of 5000 rows needs 16024")
	}
}
