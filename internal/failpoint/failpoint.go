// Package failpoint lets crash tests kill the real process at a named point
// of its work, the way a power cut or an OOM kill would.
//
// ALERTSYNC_FAILPOINTS lists the armed points, comma-separated, each
// name=N: the process sends itself SIGKILL at the N-th time it reaches the
// point. Unset (production), Hit costs one map lookup on an empty map.
// Names in use: apply.before_commit (the batch's writes and offset are
// sent, the transaction not yet committed), apply.after_commit (committed,
// Kafka not yet told), apply.after_kafka_commit (Kafka's copy of the
// offsets committed too).
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Env is the environment variable that arms failpoints.
const Env = "ALERTSYNC_FAILPOINTS"

var (
	once  sync.Once
	armed map[string]*point
)

type point struct {
	at   int64
	hits atomic.Int64
}

func load() {
	armed = map[string]*point{}
	for _, spec := range strings.Split(os.Getenv(Env), ",") {
		name, n, ok := strings.Cut(strings.TrimSpace(spec), "=")
		if !ok {
			continue
		}
		at, err := strconv.ParseInt(n, 10, 64)
		if err != nil || at < 1 {
			continue
		}
		armed[name] = &point{at: at}
	}
}

// Hit kills the process with SIGKILL when name is armed and this is its
// N-th hit.
func Hit(name string) {
	once.Do(load)
	p := armed[name]
	if p == nil {
		return
	}
	if p.hits.Add(1) == p.at {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
