// Package kafka builds the pipeline's Kafka clients and provisions its
// topics.
//
// Configuration: Config is the "kafka" section (brokers, client id,
// timeouts, SASL, TLS) and TopicsConfig the "topics" section (prefix,
// partitions, replication factor, retention per kind of topic). Their
// Validate errors name the full key (kafka.sasl.mechanism, topics.partitions).
//
// Clients: NewClient returns a franz-go client that logs through the given
// slog.Logger, registers its metrics (namespace alertsync, label client_id)
// on the given registerer only, and produces with acks=all and idempotence.
// The caller owns the client and closes it.
//
// Topics: Catalogue lists every topic of DESIGN.md with its Kind; a
// TopicsConfig turns them into prefixed names and TopicSpecs. EnsureTopics
// creates the missing ones with explicit partitions, replication factor and
// retention, accepts existing ones with the configured partition count,
// refuses any other count (keyed order depends on it) and never alters a
// topic. It is safe to run from every component at start-up, concurrently.
package kafka
