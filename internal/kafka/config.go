package kafka

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/config"
)

// Config is the "kafka" section: how every alertsync component reaches the
// Kafka cluster. Its zero value is not usable (Brokers is empty); the config
// loader fills the defaults from the tags.
type Config struct {
	Brokers        []string      `key:"brokers" default:"localhost:9092" doc:"Kafka bootstrap brokers, comma-separated host:port."`
	ClientID       string        `key:"client_id" default:"alertsync" doc:"Client id sent to the brokers (seen in broker logs, quotas and ACLs) and the client_id label of the Kafka client metrics. A component gives each of its clients its own id based on it."`
	DialTimeout    time.Duration `key:"dial_timeout" default:"10s" doc:"Timeout of one TCP (and TLS) connection attempt to a broker; 0 means 10s."`
	RequestTimeout time.Duration `key:"request_timeout" default:"10s" doc:"Time a broker has to answer one request, on top of any timeout the request itself carries (like Kafka's request.timeout.ms); a connection that misses it is closed and the request retried. 0 means 10s."`
	RetryTimeout   time.Duration `key:"retry_timeout" default:"30s" doc:"Longest a metadata, admin or coordinator request is retried before its error is returned (for example when no broker is reachable); 0 means 30s."`
	Compression    string        `key:"compression" default:"lz4" enum:"none,gzip,snappy,lz4,zstd" doc:"Compression of produced record batches. lz4 is cheap to compress and for brokers to check; none saves CPU on a fast local network; zstd packs tightest."`
	Linger         time.Duration `key:"linger" default:"5ms" doc:"How long a partition's batch waits for more records before it is sent; larger batches cost brokers less CPU per record."`
	MetadataMinAge time.Duration `key:"metadata_min_age" default:"250ms" doc:"Shortest time between two metadata requests of a client (Kafka clients' usual default is 5s). A produce the broker asks to retry – a partition that moved, or, with transactions, a partition whose last transaction is still being completed (CONCURRENT_TRANSACTIONS, common right after a transformer commit) – waits for the next metadata request: with 5s a transformer transaction stalled that long. 0 means 250ms."`
	FetchMaxWait   time.Duration `key:"fetch_max_wait" default:"500ms" doc:"Longest a broker holds a consumer's fetch request open while the partitions it asks for have no new record (Kafka's fetch.max.wait.ms, whose Java default is 500ms; franz-go's own is 5s). A record that arrives is returned at once whatever this is; but a client has one fetch in flight per broker, so partitions it starts to consume while a fetch waits – after a restart, their offsets loaded a moment after the others' – wait for it too: with 5s a restarted transformer whose first partitions were caught up sat idle for 5s. 0 means 500ms."`
	SASL           SASL          `key:"sasl"`
	TLS            TLS           `key:"tls"`
}

// metadataMinAge is MetadataMinAge, 0 meaning 250ms.
func (c Config) metadataMinAge() time.Duration {
	if c.MetadataMinAge > 0 {
		return c.MetadataMinAge
	}
	return 250 * time.Millisecond
}

// fetchMaxWait is FetchMaxWait, 0 meaning 500ms.
func (c Config) fetchMaxWait() time.Duration {
	if c.FetchMaxWait > 0 {
		return c.FetchMaxWait
	}
	return 500 * time.Millisecond
}

// codec returns the franz-go compression codec of c.Compression.
func (c Config) codec() kgo.CompressionCodec {
	switch c.Compression {
	case "none":
		return kgo.NoCompression()
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "zstd":
		return kgo.ZstdCompression()
	default:
		return kgo.Lz4Compression()
	}
}

// SASL is the "kafka.sasl" section.
type SASL struct {
	Mechanism string        `key:"mechanism" doc:"SASL mechanism: empty for none, PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. Use PLAIN only with kafka.tls.enabled."`
	Username  string        `key:"username" doc:"SASL user name; required with kafka.sasl.mechanism."`
	Password  config.Secret `key:"password" doc:"SASL password; required with kafka.sasl.mechanism. From ALERTSYNC_KAFKA_SASL_PASSWORD or the file named by ALERTSYNC_KAFKA_SASL_PASSWORD_FILE."`
}

// TLS is the "kafka.tls" section.
type TLS struct {
	Enabled    bool   `key:"enabled" doc:"Connect to the brokers over TLS (1.2 or newer). Off by default."`
	CAFile     string `key:"ca_file" doc:"PEM file of the CA certificates that sign the brokers' certificates; empty: the system's trusted roots."`
	CertFile   string `key:"cert_file" doc:"PEM client certificate for mutual TLS; needs kafka.tls.key_file."`
	KeyFile    string `key:"key_file" doc:"PEM private key of kafka.tls.cert_file."`
	ServerName string `key:"server_name" doc:"Host name expected in the brokers' certificates; empty: the host of the broker address dialed."`
}

// SASL mechanisms accepted in kafka.sasl.mechanism.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// Validate checks the section; every error is a *config.KeyError naming the
// full key (kafka.…) and what to set.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, &config.KeyError{Key: "kafka." + key, Err: fmt.Errorf(format, args...)})
	}

	if len(c.Brokers) == 0 {
		bad("brokers", "required: at least one host:port, comma-separated (e.g. kafka-1:9092,kafka-2:9092)")
	}
	for _, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			bad("brokers", "invalid address %q (want host:port, e.g. kafka-1:9092)", b)
		}
	}
	for _, d := range []struct {
		key string
		d   time.Duration
	}{{"dial_timeout", c.DialTimeout}, {"request_timeout", c.RequestTimeout}, {"retry_timeout", c.RetryTimeout}} {
		if d.d < 0 {
			bad(d.key, "must not be negative, got %s", d.d)
		}
	}

	switch mech := c.SASL.mechanism(); mech {
	case "":
		if c.SASL.Username != "" || c.SASL.Password.IsSet() {
			bad("sasl.mechanism", "required when kafka.sasl.username or the password is set (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		if c.SASL.Username == "" {
			bad("sasl.username", "required with kafka.sasl.mechanism %s", mech)
		}
		if !c.SASL.Password.IsSet() {
			bad("sasl.password", "required with kafka.sasl.mechanism %s: set %s or %s",
				mech, config.EnvName("kafka.sasl.password"), config.EnvName("kafka.sasl.password")+config.FileSuffix)
		}
	default:
		bad("sasl.mechanism", "unknown value %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", c.SASL.Mechanism)
	}

	files := []struct{ key, path string }{
		{"ca_file", c.TLS.CAFile}, {"cert_file", c.TLS.CertFile}, {"key_file", c.TLS.KeyFile},
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if !c.TLS.Enabled {
			bad("tls.enabled", "must be true when kafka.tls.%s is set", f.key)
		}
		if _, err := os.Stat(f.path); err != nil {
			bad("tls."+f.key, "cannot read %s: %v", f.path, errors.Unwrap(err))
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		if c.TLS.CertFile == "" {
			bad("tls.cert_file", "required when kafka.tls.key_file is set")
		} else {
			bad("tls.key_file", "required when kafka.tls.cert_file is set")
		}
	}
	if c.Linger < 0 || c.Linger > time.Minute {
		bad("linger", "must be between 0 and 1m, got %s", c.Linger)
	}
	if c.MetadataMinAge < 0 || c.MetadataMinAge > time.Minute {
		bad("metadata_min_age", "must be between 0 and 1m, got %s", c.MetadataMinAge)
	}
	if c.FetchMaxWait < 0 || c.FetchMaxWait > time.Minute {
		bad("fetch_max_wait", "must be between 0 and 1m, got %s", c.FetchMaxWait)
	}
	return errors.Join(errs...)
}

// mechanism is the configured mechanism in upper case ("plain" is accepted).
func (s SASL) mechanism() string { return strings.ToUpper(strings.TrimSpace(s.Mechanism)) }
