package kafka

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/config"
)

// loadDefaults fills cfg from its default tags only.
func loadDefaults(t *testing.T, cfg any) {
	t.Helper()
	require.NoError(t, config.Load(cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}))
}

func TestConfigDefaults(t *testing.T) {
	var k Config
	loadDefaults(t, &k)
	require.NoError(t, k.Validate())
	require.Equal(t, []string{"localhost:9092"}, k.Brokers)
	require.Equal(t, 10*time.Second, k.DialTimeout)
	require.Equal(t, 30*time.Second, k.RetryTimeout)
	require.False(t, k.TLS.Enabled)
	require.Empty(t, k.SASL.Mechanism)

	var tc TopicsConfig
	loadDefaults(t, &tc)
	require.NoError(t, tc.Validate())
	require.Equal(t, TopicsConfig{
		Partitions:        12,
		ReplicationFactor: 3,
		Retention:         TopicRetention{Commands: 7 * 24 * time.Hour},
	}, tc)
}

// keyErrors returns "key: message" of every *config.KeyError in err.
func keyErrors(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ke *config.KeyError
		require.True(t, errors.As(e, &ke), "error %q is not a *config.KeyError", e)
		out = append(out, ke.Error())
	}
	if err != nil {
		walk(err)
	}
	return out
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, []byte("not a certificate"), 0o600))
	valid := func() Config {
		return Config{Brokers: []string{"kafka-1:9092", "10.0.0.2:9093"}, ClientID: "alertsync", DialTimeout: time.Second}
	}
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   []string // every KeyError, in order; nil for valid
	}{
		{"valid", func(*Config) {}, nil},
		{"scram", func(c *Config) {
			c.SASL = SASL{Mechanism: "SCRAM-SHA-512", Username: "u", Password: config.NewSecret("p")}
		}, nil},
		{"mechanism in lower case", func(c *Config) {
			c.SASL = SASL{Mechanism: "plain", Username: "u", Password: config.NewSecret("p")}
		}, nil},
		{"no brokers", func(c *Config) { c.Brokers = nil },
			[]string{"kafka.brokers: required: at least one host:port, comma-separated (e.g. kafka-1:9092,kafka-2:9092)"}},
		{"broker without port", func(c *Config) { c.Brokers = []string{"kafka-1"} },
			[]string{`kafka.brokers: invalid address "kafka-1" (want host:port, e.g. kafka-1:9092)`}},
		{"broker with bad port", func(c *Config) { c.Brokers = []string{"kafka-1:99999"} },
			[]string{`kafka.brokers: invalid address "kafka-1:99999" (want host:port, e.g. kafka-1:9092)`}},
		{"negative timeout", func(c *Config) { c.RetryTimeout = -time.Second },
			[]string{"kafka.retry_timeout: must not be negative, got -1s"}},
		{"unknown mechanism", func(c *Config) {
			c.SASL = SASL{Mechanism: "X", Username: "u", Password: config.NewSecret("p")}
		}, []string{`kafka.sasl.mechanism: unknown value "X" (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`}},
		{"mechanism without credentials", func(c *Config) { c.SASL.Mechanism = "SCRAM-SHA-256" }, []string{
			"kafka.sasl.username: required with kafka.sasl.mechanism SCRAM-SHA-256",
			"kafka.sasl.password: required with kafka.sasl.mechanism SCRAM-SHA-256: set ALERTSYNC_KAFKA_SASL_PASSWORD or ALERTSYNC_KAFKA_SASL_PASSWORD_FILE",
		}},
		{"credentials without mechanism", func(c *Config) { c.SASL.Username = "u" }, []string{
			"kafka.sasl.mechanism: required when kafka.sasl.username or the password is set (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
		}},
		{"tls file while tls disabled", func(c *Config) { c.TLS.CAFile = caFile },
			[]string{"kafka.tls.enabled: must be true when kafka.tls.ca_file is set"}},
		{"missing ca file", func(c *Config) { c.TLS = TLS{Enabled: true, CAFile: filepath.Join(dir, "nope.pem")} },
			[]string{"kafka.tls.ca_file: cannot read " + filepath.Join(dir, "nope.pem") + ": no such file or directory"}},
		{"cert without key", func(c *Config) { c.TLS = TLS{Enabled: true, CertFile: caFile} },
			[]string{"kafka.tls.key_file: required when kafka.tls.cert_file is set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.modify(&c)
			require.Equal(t, tc.want, keyErrors(t, c.Validate()))
		})
	}
}

func TestConfigSecretNeverInErrors(t *testing.T) {
	c := Config{Brokers: []string{"k:9092"}, SASL: SASL{Mechanism: "BOGUS", Username: "u", Password: config.NewSecret("hunter2")}}
	err := c.Validate()
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}

func TestTopicsConfigValidate(t *testing.T) {
	valid := func() TopicsConfig {
		return TopicsConfig{Partitions: 12, ReplicationFactor: 3, Retention: TopicRetention{Commands: time.Hour}}
	}
	for _, tc := range []struct {
		name   string
		modify func(*TopicsConfig)
		want   []string
	}{
		{"valid", func(*TopicsConfig) {}, nil},
		{"prefix", func(c *TopicsConfig) { c.Prefix = "staging-1." }, nil},
		{"illegal prefix", func(c *TopicsConfig) { c.Prefix = "stag ing/" },
			[]string{`topics.prefix: "stag ing/" has characters Kafka refuses in topic names (allowed: letters, digits, '.', '_', '-')`}},
		{"long prefix", func(c *TopicsConfig) { c.Prefix = strings.Repeat("p", 220) },
			[]string{"topics.prefix: too long: topic names would exceed Kafka's 249 characters (at most 216 characters)"}},
		{"zero partitions", func(c *TopicsConfig) { c.Partitions = 0 },
			[]string{"topics.partitions: must be between 1 and 1048576, got 0"}},
		{"zero replication factor", func(c *TopicsConfig) { c.ReplicationFactor = 0 },
			[]string{"topics.replication_factor: must be between 1 and 32767 (1 on a single broker), got 0"}},
		{"negative retention", func(c *TopicsConfig) { c.Retention.DLQ = -time.Hour },
			[]string{"topics.retention.dlq: must be 0 (keep forever) or at least 1ms, got -1h0m0s"}},
		{"sub-millisecond retention", func(c *TopicsConfig) { c.Retention.Change = time.Microsecond },
			[]string{"topics.retention.change: must be 0 (keep forever) or at least 1ms, got 1µs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.modify(&c)
			require.Equal(t, tc.want, keyErrors(t, c.Validate()))
		})
	}
}

func TestCatalogue(t *testing.T) {
	want := map[string]Kind{
		"dps.public.alert":                  KindChange,
		"dps.public.alert_code":             KindChange,
		"dps.public.alert_type":             KindChange,
		"dps.public.audit_event":            KindChange,
		"nomis.oms_owner.offender_alerts":   KindChange,
		"nomis.oms_owner.offender_bookings": KindChange,
		"nomis.oms_owner.offenders":         KindChange,
		"nomis.alertsync.prisoner_alerts":   KindChange,
		"alertsync.commands.dps":            KindCommand,
		"alertsync.commands.nomis":          KindCommand,
		"alertsync.dlq":                     KindDLQ,
		"alertsync.outcomes":                KindOutcome,
		"alertsync.transform.holds":         KindState,
	}
	got := map[string]Kind{}
	for _, topic := range Catalogue() {
		require.NotContains(t, got, topic.Base, "listed twice")
		got[topic.Base] = topic.Kind
	}
	require.Equal(t, want, got)

	cfg := TopicsConfig{Prefix: "dev.", Partitions: 6, ReplicationFactor: 1, Retention: TopicRetention{
		Change: 0, Commands: 7 * 24 * time.Hour, Outcomes: 30 * 24 * time.Hour, DLQ: time.Hour,
	}}
	for _, tc := range []struct {
		topic Topic
		want  TopicSpec
	}{
		{DPSAlert, TopicSpec{Name: "dev.dps.public.alert", Kind: KindChange, Partitions: 6, ReplicationFactor: 1, Retention: 0}},
		{CommandsNOMIS, TopicSpec{Name: "dev.alertsync.commands.nomis", Kind: KindCommand, Partitions: 6, ReplicationFactor: 1, Retention: 7 * 24 * time.Hour}},
		{Outcomes, TopicSpec{Name: "dev.alertsync.outcomes", Kind: KindOutcome, Partitions: 6, ReplicationFactor: 1, Retention: 30 * 24 * time.Hour}},
		{DLQ, TopicSpec{Name: "dev.alertsync.dlq", Kind: KindDLQ, Partitions: 6, ReplicationFactor: 1, Retention: time.Hour}},
		{TransformHolds, TopicSpec{Name: "dev.alertsync.transform.holds", Kind: KindState, Partitions: 6, ReplicationFactor: 1, Retention: 0, Compact: true}},
	} {
		t.Run(tc.topic.Base, func(t *testing.T) {
			require.Equal(t, tc.want, cfg.Spec(tc.topic))
		})
	}
	require.Len(t, cfg.Specs(), len(Catalogue()))
	require.Equal(t, []TopicSpec{cfg.Spec(DLQ)}, cfg.Specs(DLQ))
}
