package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/testenv/broker"
)

// EnvBrokers names the environment variable holding the comma-separated
// host:port list of an external Kafka (a real broker) for the tests.
const EnvBrokers = "ALERTSYNC_TEST_KAFKA"

// Kind is "real" when ALERTSYNC_TEST_KAFKA is set (Brokers then returns a
// real broker) and "kfake" otherwise.
func Kind() string {
	if len(envBrokers()) > 0 {
		return "real"
	}
	return "kfake"
}

func envBrokers() []string {
	var out []string
	for _, b := range strings.Split(os.Getenv(EnvBrokers), ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// Brokers returns the brokers of ALERTSYNC_TEST_KAFKA when set; otherwise it
// starts a single-broker kfake cluster for this test (transactions and
// consumer groups work; topics are not auto-created, as on the real broker)
// and closes it when the test ends.
func Brokers(t testing.TB) []string {
	t.Helper()
	if bs := envBrokers(); len(bs) > 0 {
		return bs
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("starting in-process kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

var (
	mainInstalled atomic.Bool
	realOnce      sync.Once
	realBroker    *broker.Broker
	realErr       error
)

// realStartTimeout bounds jar resolution (first run only) and the start.
const realStartTimeout = 15 * time.Minute

// Real returns the brokers of ALERTSYNC_TEST_KAFKA when set; otherwise it
// starts one real Kafka broker for the whole test binary on first use
// (later calls get the same one) and Main stops it. It fails the test when
// the broker cannot start, saying what to install.
func Real(t testing.TB) []string {
	t.Helper()
	if bs := envBrokers(); len(bs) > 0 {
		return bs
	}
	if !mainInstalled.Load() {
		t.Fatalf("kafkatest.Real needs TestMain to call kafkatest.Main(m), which stops the broker after the tests")
	}
	realOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), realStartTimeout)
		defer cancel()
		started := time.Now()
		realBroker, realErr = broker.Start(ctx, broker.Options{
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if realErr == nil {
			fmt.Fprintf(os.Stderr, "kafkatest: real Kafka broker %s ready in %s (format %s, JVM start %s)\n",
				realBroker.Addr(), time.Since(started).Round(time.Millisecond),
				realBroker.FormatTime().Round(time.Millisecond), realBroker.StartupTime().Round(time.Millisecond))
		}
	})
	if realErr != nil {
		t.Fatalf("starting a real Kafka broker (needs Java 17+ and Maven: apt-get install -y openjdk-17-jre-headless maven; or set %s=host:port): %v", EnvBrokers, realErr)
	}
	return []string{realBroker.Addr()}
}

// Main runs the tests of a package that uses Real and then stops the broker
// Real started, if any. Call it from TestMain:
//
//	func TestMain(m *testing.M) { kafkatest.Main(m) }
//
// A package that also needs pgtest composes the two:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(kafkatest.Wrap(m))) }
func Main(m *testing.M) { os.Exit(Run(m)) }

// Runner is what Run runs: a *testing.M or another environment's wrapper.
type Runner interface{ Run() int }

// Run runs m, then stops the broker Real started, if any, and returns the
// exit code.
func Run(m Runner) int {
	mainInstalled.Store(true)
	code := m.Run()
	if realBroker != nil {
		if err := realBroker.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "kafkatest: stopping the real Kafka broker: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Wrap returns a Runner that runs m under Run, for composing with other
// test environments.
func Wrap(m Runner) Runner { return runFunc(func() int { return Run(m) }) }

type runFunc func() int

func (f runFunc) Run() int { return f() }

var unsafeTopicChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Topic returns a topic name unique to this call: base, the test's name
// (with characters Kafka refuses replaced) and a random suffix, within
// Kafka's 249-character limit.
func Topic(t testing.TB, base string) string {
	t.Helper()
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	name := unsafeTopicChars.ReplaceAllString(t.Name(), "_")
	tail := "-" + hex.EncodeToString(suffix[:])
	head := base
	if head != "" {
		head += "-"
	}
	if room := max(0, 249-len(tail)-len(head)); len(name) > room {
		name = name[len(name)-room:]
	}
	return head + name + tail
}

// Client returns a franz-go client for brokers with opts appended, closed
// when the test ends.
func Client(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("creating Kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}
