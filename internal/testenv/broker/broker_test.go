//go:build broker

package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// produceAndRead writes value to topic (when value is not empty) and returns
// every value in the topic, read from the start.
func readAll(t *testing.T, addr, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	require.NoError(t, err)
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var got []string
	for int64(len(got)) < want {
		fs := cl.PollFetches(ctx)
		require.NoError(t, fs.Err0(), "fetching %s", topic)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func produce(t *testing.T, addr, topic string, values ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, v := range values {
		require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr())
	}
}

func createTopic(t *testing.T, addr, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic)
	require.NoError(t, err)
}

func TestBrokerLifecycle(t *testing.T) {
	ctx := context.Background()
	b, err := Start(ctx, Options{Logger: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Stop() })
	t.Logf("broker %s: format %s, startup %s", b.Addr(), b.FormatTime(), b.StartupTime())
	addr, dir := b.Addr(), b.Dir()

	createTopic(t, addr, "lifecycle")
	produce(t, addr, "lifecycle", "one")
	require.Equal(t, []string{"one"}, readAll(t, addr, "lifecycle"))

	t.Run("restart keeps address and data", func(t *testing.T) {
		require.NoError(t, b.Restart(ctx))
		t.Logf("restart: startup %s", b.StartupTime())
		require.Equal(t, addr, b.Addr())
		produce(t, addr, "lifecycle", "two")
		require.Equal(t, []string{"one", "two"}, readAll(t, addr, "lifecycle"))
	})

	t.Run("kill is a crash that restart recovers from", func(t *testing.T) {
		require.NoError(t, b.Kill())
		d := net.Dialer{Timeout: time.Second}
		_, err := d.DialContext(ctx, "tcp", addr)
		var errno syscall.Errno
		require.True(t, errors.As(err, &errno) && errno == syscall.ECONNREFUSED, "dial after Kill: %v", err)
		require.NoError(t, b.Restart(ctx))
		require.Equal(t, []string{"one", "two"}, readAll(t, addr, "lifecycle"))
	})

	t.Run("stop is final and removes the directory", func(t *testing.T) {
		require.NoError(t, b.Stop())
		_, err := os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist)
		require.Error(t, b.Restart(ctx))
		require.NoError(t, b.Stop(), "a second Stop is a no-op")
	})
}

func TestBrokerPersistentDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := Start(ctx, Options{Dir: dir, Logger: testLogger(t)})
	require.NoError(t, err)
	require.Positive(t, b.FormatTime())
	createTopic(t, b.Addr(), "kept")
	produce(t, b.Addr(), "kept", "v")
	require.NoError(t, b.Stop())

	// The second JVM with an option of ours: it is on the JVM's command
	// line, and PID names the running JVM.
	b, err = Start(ctx, Options{Dir: dir, JVMOptions: []string{C1Only}, Logger: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Stop() })
	require.Zero(t, b.FormatTime(), "storage formatted again")
	require.Equal(t, []string{"v"}, readAll(t, b.Addr(), "kept"))
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", b.PID()))
	require.NoError(t, err, "PID %d", b.PID())
	args := strings.Split(string(cmdline), "\x00")
	require.Contains(t, args, C1Only)
	require.Contains(t, args, "kafka.Kafka")
	require.NoError(t, b.Stop())
	require.Zero(t, b.PID(), "PID after Stop")
	_, err = os.Stat(dir + "/server.properties")
	require.NoError(t, err, "Options.Dir must be kept")
}

func TestBrokerStartFailureShowsLog(t *testing.T) {
	// A missing authorizer class passes formatting but makes the broker exit at
	// once; the error must say why.
	_, err := Start(context.Background(), Options{
		Logger: testLogger(t),
		Config: map[string]string{"authorizer.class.name": "org.example.NoSuchAuthorizer"},
	})
	require.Error(t, err)
	t.Log(err)
	require.Contains(t, err.Error(), "exited before it was ready")
	require.Contains(t, err.Error(), "NoSuchAuthorizer")
}
