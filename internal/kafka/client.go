package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/alertsync/alertsync/internal/config"
)

// MetricsNamespace prefixes the Kafka client metrics (alertsync_…).
const MetricsNamespace = "alertsync"

// NewClient validates cfg and returns a franz-go client for it:
//
//   - seed brokers, client id, dial/request/retry timeouts, SASL and TLS
//     from cfg;
//   - logging through logger (kslog), with a client_id attribute;
//   - client metrics (kprom, namespace "alertsync", a client_id label)
//     registered on reg, or none when reg is nil; they are unregistered when
//     the client closes. Two open clients on one registerer need distinct
//     client ids (pass kgo.ClientID in opts); a clash is an error, not a
//     panic;
//   - producer defaults: acks=all and idempotent writes (franz-go's default,
//     which opts must not disable: the pipeline relies on it).
//
// opts are appended last, so they override the above (a transactional id, a
// consumer group, topics to consume, …).
func NewClient(cfg Config, logger *slog.Logger, reg prometheus.Registerer, opts ...kgo.Opt) (*kgo.Client, error) {
	kopts, done, err := clientOpts(cfg, logger, reg, opts)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("creating Kafka client: %w", err)
	}
	if err := done(cl); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// NewGroupTransactSession is NewClient for a consume-transform-produce
// loop: a kgo.GroupTransactSession (opts must name a transactional id, a
// consumer group and the topics to consume) with the same settings,
// logging and metrics.
func NewGroupTransactSession(cfg Config, logger *slog.Logger, reg prometheus.Registerer, opts ...kgo.Opt) (*kgo.GroupTransactSession, error) {
	kopts, done, err := clientOpts(cfg, logger, reg, opts)
	if err != nil {
		return nil, err
	}
	s, err := kgo.NewGroupTransactSession(kopts...)
	if err != nil {
		return nil, fmt.Errorf("creating Kafka transactional session: %w", err)
	}
	if err := done(s.Client()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// clientOpts returns the client options of cfg followed by opts, and the
// function that finishes a client built from them (its logger learns the
// final client id; metric registration errors surface).
func clientOpts(cfg Config, logger *slog.Logger, reg prometheus.Registerer, opts []kgo.Opt) ([]kgo.Opt, func(*kgo.Client) error, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("creating Kafka client: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	kopts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}
	if cfg.ClientID != "" {
		kopts = append(kopts, kgo.ClientID(cfg.ClientID))
	}
	if cfg.DialTimeout > 0 {
		kopts = append(kopts, kgo.DialTimeout(cfg.DialTimeout))
	}
	if cfg.RequestTimeout > 0 {
		kopts = append(kopts, kgo.RequestTimeoutOverhead(cfg.RequestTimeout))
	}
	if cfg.RetryTimeout > 0 {
		kopts = append(kopts, kgo.RetryTimeout(cfg.RetryTimeout))
	}
	if cfg.TLS.Enabled {
		tc, err := cfg.TLS.config()
		if err != nil {
			return nil, nil, fmt.Errorf("creating Kafka client: %w", err)
		}
		kopts = append(kopts, kgo.DialTLSConfig(tc))
	}
	switch mech, user, pass := cfg.SASL.mechanism(), cfg.SASL.Username, cfg.SASL.Password.Reveal(); mech {
	case MechanismPlain:
		if !cfg.TLS.Enabled {
			logger.Warn("kafka.sasl.mechanism PLAIN without kafka.tls.enabled sends the password in clear text")
		}
		kopts = append(kopts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
	case MechanismScramSHA256:
		kopts = append(kopts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	case MechanismScramSHA512:
		kopts = append(kopts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	}
	kopts = append(kopts, kgo.ProducerBatchCompression(cfg.codec()), kgo.ProducerLinger(cfg.Linger), kgo.MetadataMinAge(cfg.metadataMinAge()), kgo.FetchMaxWait(cfg.fetchMaxWait()))
	kopts = append(kopts, opts...)

	// The client id is final only once every option applied, so the
	// logger learns it after the client is built.
	log := &clientLogger{}
	log.l.Store(kslog.New(logger))
	kopts = append(kopts, kgo.WithLogger(log))
	var sr *safeRegisterer
	if reg != nil {
		sr = &safeRegisterer{reg: reg, registered: map[prometheus.Collector]bool{}}
		kopts = append(kopts, kgo.WithHooks(kprom.NewMetrics(MetricsNamespace, kprom.Registerer(sr), kprom.WithClientLabel()), &requestCounter{reg: sr}))
	}
	done := func(cl *kgo.Client) error {
		id, _ := cl.OptValue(kgo.ClientID).(string)
		log.l.Store(kslog.New(logger.With("client_id", id)))
		if err := sr.firstErr(); err != nil {
			return fmt.Errorf("registering metrics of Kafka client %q (give each client of a process its own client id): %w", id, err)
		}
		return nil
	}
	return kopts, done, nil
}

// clientLogger is a kgo.Logger whose slog attributes can be set after the
// client is built.
type clientLogger struct{ l atomic.Pointer[kslog.Logger] }

func (c *clientLogger) Level() kgo.LogLevel { return c.l.Load().Level() }

func (c *clientLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	c.l.Load().Log(level, msg, keyvals...)
}

// config builds the TLS configuration; errors name the key.
func (t TLS) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, &config.KeyError{Key: "kafka.tls.ca_file", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &config.KeyError{Key: "kafka.tls.ca_file", Err: fmt.Errorf("no PEM certificate in %s", t.CAFile)}
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, &config.KeyError{Key: "kafka.tls.cert_file", Err: fmt.Errorf("loading client certificate with kafka.tls.key_file: %w", err)}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// safeRegisterer turns kprom's MustRegister panics into an error NewClient
// returns, and unregisters only what it registered, so that a client whose
// registration clashed cannot remove the metrics of the client it clashed
// with when it is closed.
type safeRegisterer struct {
	reg prometheus.Registerer

	mu         sync.Mutex
	registered map[prometheus.Collector]bool
	err        error
}

func (r *safeRegisterer) Register(c prometheus.Collector) error {
	err := r.reg.Register(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.registered[c] = true
	} else if r.err == nil {
		r.err = err
	}
	return err
}

func (r *safeRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *safeRegisterer) Unregister(c prometheus.Collector) bool {
	r.mu.Lock()
	ok := r.registered[c]
	delete(r.registered, c)
	r.mu.Unlock()
	return ok && r.reg.Unregister(c)
}

func (r *safeRegisterer) firstErr() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}
