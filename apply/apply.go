package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/config"

	"github.com/alertsync/alertsync/transform/rules"
)

// Options is the "apply" section shared by both applies.
type Options struct {
	Group          string        `key:"group" doc:"Kafka consumer group of the apply (offsets are stored in the target database; the group assigns partitions and receives a copy of the offsets for lag monitoring). Empty: alertsync-apply-<target>."`
	Owner          string        `key:"owner" doc:"Stable name of this apply process: its static consumer-group member id (a restarted apply takes its partitions back at once) and its name in the fences of the stored offsets. Empty: the host name (a StatefulSet pod name is stable); give two applies on one host distinct names."`
	BatchCommands  int           `key:"batch_commands" default:"500" doc:"Most commands of one partition applied in one database transaction."`
	Parallelism    int           `key:"parallelism" default:"4" doc:"Most partitions applied at once, each in its own transaction on its own database connection; a partition's batches stay in order, and so do a prisoner's commands (they share a partition)."`
	MaxBackoff     time.Duration `key:"max_backoff" default:"30s" doc:"Longest wait between attempts after a database, Kafka or registry failure."`
	Retries        int           `key:"retries" default:"5" doc:"Attempts of a batch that fails with a transient database error (serialization failure, deadlock, lost connection) before the apply restarts its session."`
	OutboxInterval time.Duration `key:"outbox_interval" default:"200ms" doc:"How often outcomes (and DLQ entries) written to the outbox are published when no batch wakes the relay earlier."`
	// KafkaCommitInterval spaces the copies of the applied offsets to
	// Kafka (workers.commitLoop).
	KafkaCommitInterval time.Duration `key:"kafka_commit_interval" default:"1s" doc:"Shortest time between two copies of the applied offsets to the consumer group in Kafka, which only lag monitoring reads (the offsets that count are stored in the target database with each batch). 0: after every batch, one Kafka request per batch."`
	Timezone            string        `key:"timezone" default:"Europe/London" doc:"Zone of the target's wall-clock columns."`
	SessionTimeout      time.Duration `key:"session_timeout" default:"10s" doc:"Consumer group session timeout (within the brokers' group.min/max.session.timeout.ms)."`
}

// Validate checks the section.
func (o *Options) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &config.KeyError{Key: key, Err: fmt.Errorf(format, a...)})
	}
	if o.BatchCommands < 1 || o.BatchCommands > 100_000 {
		bad("batch_commands", "must be between 1 and 100000, got %d", o.BatchCommands)
	}
	if o.Parallelism < 1 || o.Parallelism > 64 {
		bad("parallelism", "must be between 1 and 64, got %d", o.Parallelism)
	}
	if o.MaxBackoff <= 0 {
		bad("max_backoff", "must be positive, got %s", o.MaxBackoff)
	}
	if o.Retries < 0 {
		bad("retries", "must not be negative, got %d", o.Retries)
	}
	if o.KafkaCommitInterval < 0 || o.KafkaCommitInterval > time.Hour {
		bad("kafka_commit_interval", "must be between 0 and 1h, got %s", o.KafkaCommitInterval)
	}
	if o.OutboxInterval <= 0 {
		bad("outbox_interval", "must be positive, got %s", o.OutboxInterval)
	}
	if o.SessionTimeout < time.Second {
		bad("session_timeout", "must be at least 1s, got %s", o.SessionTimeout)
	}
	if _, err := time.LoadLocation(o.Timezone); err != nil {
		bad("timezone", "%w", err)
	}
	return errors.Join(errs...)
}

// Result is what an apply did with a command (alertsync.outcome.Result).
type Result string

// Results.
const (
	Applied  Result = "APPLIED"
	Skipped  Result = "SKIPPED"
	Conflict Result = "CONFLICT"
	Failed   Result = "FAILED"
)

// Fence is an apply's claim on one partition's stored offset: writes are
// accepted only while the stored epoch is still Epoch.
type Fence struct {
	Group, Topic string
	Partition    int32
	Epoch        int64
	Next         int64 // next offset to apply; -1 when none is stored
}

// Cmd is one consumed command: decoded, or Err when it could not be.
type Cmd struct {
	rules.Command
	Record *kgo.Record
	Err    error // undecodable: the command goes to the DLQ as FAILED
}

// Outcome is the result of one command, as written to the outbox.
type Outcome struct {
	CommandID  string
	Result     Result
	Reason     string
	DPSAlertID string // the DPS alert the command was applied to, when known
}

// CommitPrecision is the precision at which conflicts compare commit
// times. A command carries its source's commit time in milliseconds
// (source.ts_ms); a target row's commit time has microseconds. Both are cut
// to milliseconds, so that the two applies decide a race the same way: a
// race within one millisecond is a tie, and a tie goes to DPS on both
// sides.
const CommitPrecision = time.Millisecond

// CompareCommits compares a command's source commit time with the commit
// time of the target row's last change, at CommitPrecision: -1 when the
// source committed first, 0 in the same millisecond, +1 after.
func CompareCommits(source, target time.Time) int {
	return source.Truncate(CommitPrecision).Compare(target.Truncate(CommitPrecision))
}

// ErrFenced is returned by Store.Apply when another apply has claimed the
// partition since this one did: nothing was written.
var ErrFenced = errors.New("partition claimed by another apply")

// Store is one target's side of the apply loop.
type Store interface {
	// Claim takes over partitions of topic for owner: it bumps their fence
	// epochs and returns their fences.
	Claim(ctx context.Context, group, topic string, partitions []int32, owner string) (map[int32]Fence, error)
	// Apply applies cmds (one partition's, in offset order) in one
	// transaction, writes their outcomes to the outbox and stores next as
	// the partition's next offset, if f still holds (ErrFenced otherwise).
	// An error other than ErrFenced means nothing was written.
	Apply(ctx context.Context, f Fence, cmds []Cmd, next int64) ([]Outcome, error)
}

// claims holds the fences of the partitions this process owns.
type claims struct {
	mu     sync.Mutex
	fences map[string]map[int32]Fence
}

func (c *claims) get(topic string, p int32) (Fence, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.fences[topic][p]
	return f, ok
}

func (c *claims) set(f Fence) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fences == nil {
		c.fences = map[string]map[int32]Fence{}
	}
	if c.fences[f.Topic] == nil {
		c.fences[f.Topic] = map[int32]Fence{}
	}
	c.fences[f.Topic][f.Partition] = f
}

func (c *claims) drop(topic string, ps []int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ps {
		delete(c.fences[topic], p)
	}
}

// adjust is the kgo.AdjustFetchOffsetsFn of the loop: it claims the newly
// assigned partitions in the store and starts each at its stored offset.
func adjust(store Store, group, owner string, cl *claims, log *slog.Logger) func(context.Context, map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	return func(ctx context.Context, offs map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
		for topic, parts := range offs {
			ps := make([]int32, 0, len(parts))
			for p := range parts {
				ps = append(ps, p)
			}
			fences, err := store.Claim(ctx, group, topic, ps, owner)
			if err != nil {
				return nil, fmt.Errorf("claiming partitions %v of %s: %w", ps, topic, err)
			}
			for p, f := range fences {
				cl.set(f)
				if f.Next >= 0 {
					parts[p] = kgo.NewOffset().At(f.Next).WithEpoch(-1)
				}
				log.Info("partition claimed", "topic", topic, "partition", p, "epoch", f.Epoch, "next_offset", f.Next)
			}
		}
		return offs, nil
	}
}
