package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrUnreachable is matched (errors.Is) by EnsureTopics errors when no
// broker answered.
var ErrUnreachable = errors.New("kafka unreachable")

// ErrPartitionMismatch is matched (errors.Is) by *PartitionMismatchError.
var ErrPartitionMismatch = errors.New("topic partition count differs from the configuration")

// PartitionMismatchError reports a topic that exists with a partition count
// other than the configured one. The pipeline never changes it: records are
// ordered per key only within one partition, and adding partitions moves
// keys.
type PartitionMismatchError struct {
	Topic      string
	Existing   int32
	Configured int32
}

func (e *PartitionMismatchError) Error() string {
	return fmt.Sprintf("topic %q exists with %d partitions but %d are configured (topics.partitions): "+
		"alertsync never changes a topic's partition count, since keyed order depends on it; "+
		"set topics.partitions to %d to use the topic as it is, or delete the topic (and its records) to have it recreated",
		e.Topic, e.Existing, e.Configured, e.Existing)
}

// Is makes errors.Is(err, ErrPartitionMismatch) true.
func (e *PartitionMismatchError) Is(target error) bool { return target == ErrPartitionMismatch }

// ensureTimeout bounds EnsureTopics when ctx has no earlier deadline.
const ensureTimeout = 2 * time.Minute

// EnsureTopics creates the topics of specs that do not exist, each with its
// partitions, replication factor and retention.ms (-1 for a zero
// Retention), and returns once they are visible with a leader for every
// partition.
//
// It is idempotent and safe to run from several processes at once: a topic
// that exists with the configured partition count is accepted as it is (its
// other settings are the operator's), and losing a creation race to another
// process is not an error. A topic that exists with another partition count
// is refused with a *PartitionMismatchError; every such topic is reported.
// When no broker answers, the error matches ErrUnreachable, names the broker
// tried and says to check kafka.brokers. It gives up after 2 minutes when ctx
// has no earlier deadline; with the default client settings an unreachable
// cluster is reported within kafka.retry_timeout (30s), a refused
// connection in a few seconds.
func EnsureTopics(ctx context.Context, adm *kadm.Client, specs ...TopicSpec) error {
	if err := validateSpecs(specs); err != nil {
		return err
	}
	if len(specs) == 0 {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ensureTimeout)
		defer cancel()
	}
	specs = slices.CompactFunc(slices.SortedFunc(slices.Values(specs), func(a, b TopicSpec) int {
		return strings.Compare(a.Name, b.Name)
	}), func(a, b TopicSpec) bool { return a.Name == b.Name }) // equal settings: validated
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}

	meta, err := freshMetadata(ctx, adm, names...)
	if err != nil {
		return describeErr(fmt.Errorf("describing topics: %w", err))
	}
	var errs []error
	var missing []TopicSpec
	for _, s := range specs {
		td, ok := meta.Topics[s.Name]
		switch {
		case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, s)
		case td.Err != nil:
			errs = append(errs, fmt.Errorf("describing topic %q: %w", s.Name, td.Err))
		default:
			errs = append(errs, checkPartitions(s, td))
		}
	}

	created, raced, err := createTopics(ctx, adm, len(meta.Brokers), missing)
	errs = append(errs, err)
	if err := waitVisible(ctx, adm, append(created, raced...), raced); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validateSpecs refuses specs that cannot be created as asked.
func validateSpecs(specs []TopicSpec) error {
	seen := map[string]TopicSpec{}
	var errs []error
	for _, s := range specs {
		switch {
		case s.Name == "" || len(s.Name) > maxTopicName || !legalTopicName.MatchString(s.Name) || s.Name == "." || s.Name == "..":
			errs = append(errs, fmt.Errorf("ensuring topics: invalid topic name %q", s.Name))
		case s.Partitions < 1:
			errs = append(errs, fmt.Errorf("ensuring topic %q: partitions must be at least 1, got %d", s.Name, s.Partitions))
		case s.ReplicationFactor < 1:
			errs = append(errs, fmt.Errorf("ensuring topic %q: replication factor must be at least 1, got %d", s.Name, s.ReplicationFactor))
		case s.Retention < 0:
			errs = append(errs, fmt.Errorf("ensuring topic %q: retention must not be negative, got %s", s.Name, s.Retention))
		}
		if prev, ok := seen[s.Name]; ok && prev != s {
			errs = append(errs, fmt.Errorf("ensuring topic %q: listed twice with different settings", s.Name))
		}
		seen[s.Name] = s
	}
	return errors.Join(errs...)
}

func checkPartitions(s TopicSpec, td kadm.TopicDetail) error {
	if n := int32(len(td.Partitions)); n != s.Partitions { //nolint:gosec // Kafka caps partitions far below 2^31
		return &PartitionMismatchError{Topic: s.Name, Existing: n, Configured: s.Partitions}
	}
	return nil
}

// retentionMs is the retention.ms value of d: -1 (unlimited) for 0.
func retentionMs(d time.Duration) string {
	if d == 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// createTopics creates specs, batching those with equal settings into one
// request. It returns the specs it created and those another creator made
// first.
func createTopics(ctx context.Context, adm *kadm.Client, brokers int, specs []TopicSpec) (created, raced []TopicSpec, _ error) {
	type settings struct {
		partitions int32
		rf         int16
		retention  time.Duration
		compact    bool
	}
	batches := map[settings][]TopicSpec{}
	var order []settings
	for _, s := range specs {
		k := settings{s.Partitions, s.ReplicationFactor, s.Retention, s.Compact}
		if _, ok := batches[k]; !ok {
			order = append(order, k)
		}
		batches[k] = append(batches[k], s)
	}
	var errs []error
	for _, k := range order {
		batch := batches[k]
		names := make([]string, len(batch))
		for i, s := range batch {
			names[i] = s.Name
		}
		configs := map[string]*string{"retention.ms": kadm.StringPtr(retentionMs(k.retention))}
		if k.compact {
			configs["cleanup.policy"] = kadm.StringPtr("compact")
		}
		resps, err := adm.CreateTopics(ctx, k.partitions, k.rf, configs, names...)
		if err != nil {
			return created, raced, describeErr(fmt.Errorf("creating topics %s: %w", strings.Join(names, ", "), err))
		}
		for _, s := range batch {
			r, ok := resps[s.Name]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("creating topic %q: missing from the broker's answer", s.Name))
			case r.Err == nil:
				created = append(created, s)
			case errors.Is(r.Err, kerr.TopicAlreadyExists):
				raced = append(raced, s)
			case errors.Is(r.Err, kerr.InvalidReplicationFactor):
				errs = append(errs, fmt.Errorf("creating topic %q with replication factor %d on a cluster of %d broker(s): %w: set topics.replication_factor to at most %d (1 on a single broker)",
					s.Name, s.ReplicationFactor, brokers, r.Err, max(brokers, 1)))
			default:
				errs = append(errs, fmt.Errorf("creating topic %q: %w%s", s.Name, r.Err, detail(r.ErrMessage)))
			}
		}
	}
	return created, raced, errors.Join(errs...)
}

func detail(msg string) string {
	if msg == "" {
		return ""
	}
	return " (" + msg + ")"
}

// waitVisible waits until every topic of specs is in the metadata with a
// leader for each partition, and checks the partition count of those that
// another creator made.
func waitVisible(ctx context.Context, adm *kadm.Client, specs, raced []TopicSpec) error {
	if len(specs) == 0 {
		return nil
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	for {
		meta, err := freshMetadata(ctx, adm, names...)
		if err != nil {
			return describeErr(fmt.Errorf("waiting for created topics: %w", err))
		}
		ready := true
		for _, s := range specs {
			td, ok := meta.Topics[s.Name]
			if !ok || td.Err != nil || len(td.Partitions) == 0 {
				ready = false
				break
			}
			for _, p := range td.Partitions {
				ready = ready && p.Leader >= 0 && p.Err == nil
			}
		}
		if ready {
			var errs []error
			for _, s := range raced {
				errs = append(errs, checkPartitions(s, meta.Topics[s.Name]))
			}
			return errors.Join(errs...)
		}
		select {
		case <-ctx.Done():
			slices.Sort(names)
			return fmt.Errorf("waiting for topics %s to get partition leaders: %w", strings.Join(names, ", "), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freshMetadata asks a broker for the metadata of topics, bypassing the
// client's metadata cache (which keeps "unknown topic" answers for a while):
// kadm issues a direct request when authorized operations are asked for.
func freshMetadata(ctx context.Context, adm *kadm.Client, topics ...string) (kadm.Metadata, error) {
	return adm.Metadata(kadm.WithAuthorizedOps(ctx), topics...)
}

// describeErr turns a request error that carries no Kafka error code (the
// request never got an answer) into an ErrUnreachable error that names the
// broker and what to check.
func describeErr(err error) error {
	var kafkaErr *kerr.Error
	if errors.As(err, &kafkaErr) || errors.Is(err, context.Canceled) {
		return err
	}
	where := "the configured brokers"
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Addr != nil {
		where = "broker " + opErr.Addr.String()
	}
	return fmt.Errorf("%w: no answer from %s: check kafka.brokers (and kafka.tls / kafka.sasl) and that Kafka is running: %w", ErrUnreachable, where, err)
}
