package demo

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"
)

// TestRegistryKeepsIDs registers schemas (one of them under two subjects,
// where it shares its id), restarts the registry from its file and checks
// that every subject, version and id is back and that the next new schema
// gets a fresh id.
func TestRegistryKeepsIDs(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), fileSchemas)
	ctx := context.Background()
	schema := func(name string) sr.Schema {
		return sr.Schema{Type: sr.TypeAvro, Schema: `{"type":"record","name":"` + name + `","fields":[{"name":"a","type":"string"}]}`}
	}
	start := func() (*registry, *sr.Client) {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		r, err := startRegistry(ln, path, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		cl, err := sr.NewClient(sr.URLs(r.URL()))
		require.NoError(t, err)
		return r, cl
	}

	r, cl := start()
	regs := []struct {
		subject string
		schema  sr.Schema
	}{
		{"dps.public.alert-key", schema("Key")},
		{"dps.public.alert-value", schema("Value")},
		{"nomis.oms_owner.offender_alerts-key", schema("Key")}, // same schema: same id
		{"dps.public.alert-value", schema("Value2")},           // version 2
	}
	want := map[string][]sr.SubjectSchema{}
	for _, x := range regs {
		ss, err := cl.CreateSchema(ctx, x.subject, x.schema)
		require.NoError(t, err)
		want[x.subject] = append(want[x.subject], ss)
	}
	require.Equal(t, want["dps.public.alert-key"][0].ID, want["nomis.oms_owner.offender_alerts-key"][0].ID, "an identical schema shares its id")
	require.NoError(t, r.Close(time.Second))

	r, cl = start()
	t.Cleanup(func() { _ = r.Close(time.Second) })
	for subject, versions := range want {
		for _, w := range versions {
			t.Run(subject, func(t *testing.T) {
				got, err := cl.SchemaByVersion(ctx, subject, w.Version)
				require.NoError(t, err)
				require.Equal(t, w.ID, got.ID, "id of %s version %d after a restart", subject, w.Version)
				again, err := cl.CreateSchema(ctx, subject, w.Schema)
				require.NoError(t, err)
				require.Equal(t, w.ID, again.ID, "registering the same schema again returns its old id")
			})
		}
	}
	fresh, err := cl.CreateSchema(ctx, "alertsync.dlq-value", schema("New"))
	require.NoError(t, err)
	for _, versions := range want {
		for _, w := range versions {
			require.NotEqual(t, w.ID, fresh.ID, "a new schema gets a new id")
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		mutate  func(*Config)
		wantKey string
	}{
		{"defaults", func(*Config) {}, ""},
		{"kafka not loopback", func(c *Config) { c.KafkaListen = "0.0.0.0:9092" }, "kafka_listen"},
		{"registry bad address", func(c *Config) { c.RegistryListen = "8081" }, "registry_listen"},
		{"no prisoners", func(c *Config) { c.Prisoners = 0 }, "prisoners"},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "data_dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c Config
			require.NoError(t, defaults(&c))
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantKey == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantKey)
		})
	}
}
