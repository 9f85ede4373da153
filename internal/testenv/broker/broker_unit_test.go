package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCacheDir(t *testing.T) {
	t.Run("env overrides", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv(CacheDirEnv, dir)
		got, err := CacheDir()
		require.NoError(t, err)
		require.Equal(t, dir, got)
	})
	t.Run("repo root", func(t *testing.T) {
		t.Setenv(CacheDirEnv, "")
		got, err := CacheDir()
		require.NoError(t, err)
		// The tests run in internal/testenv/broker; go.mod is three levels up.
		wd, err := os.Getwd()
		require.NoError(t, err)
		require.Equal(t, filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(wd))), ".cache"), got)
	})
}

func TestWriteConfig(t *testing.T) {
	b := &Broker{
		dir:            t.TempDir(),
		brokerPort:     19092,
		controllerPort: 19093,
		opts:           Options{Config: map[string]string{"num.partitions": "3", "log.retention.hours": "1"}},
	}
	require.NoError(t, b.writeConfig())
	raw, err := os.ReadFile(b.propertiesPath())
	require.NoError(t, err)
	props := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			require.NotContains(t, props, k, "duplicate key %s", k)
			props[k] = v
		}
	}
	for k, want := range map[string]string{
		"process.roles":                            "broker,controller",
		"node.id":                                  "1",
		"controller.quorum.voters":                 "1@127.0.0.1:19093",
		"listeners":                                "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093",
		"advertised.listeners":                     "PLAINTEXT://127.0.0.1:19092",
		"offsets.topic.replication.factor":         "1",
		"transaction.state.log.replication.factor": "1",
		"transaction.state.log.min.isr":            "1",
		"group.initial.rebalance.delay.ms":         "0",
		"log.dirs":                                 filepath.Join(b.dir, "data"),
		"num.partitions":                           "3", // overridden
		"log.retention.hours":                      "1", // added
	} {
		require.Equal(t, want, props[k], "server.properties %s", k)
	}
	log4j, err := os.ReadFile(filepath.Join(b.dir, "log4j2.properties"))
	require.NoError(t, err)
	require.Contains(t, string(log4j), "appender.file.fileName = "+b.LogFile())
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"", 3, ""},
		{"only", 1, "only"},
	} {
		require.Equal(t, tc.want, tail([]byte(tc.in), tc.n), "tail(%q, %d)", tc.in, tc.n)
	}
}

func TestFreePorts(t *testing.T) {
	a, b, err := freePorts()
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	require.Positive(t, a)
	require.Positive(t, b)
}
