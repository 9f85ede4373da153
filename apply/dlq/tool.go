package dlq

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/schemas"
)

// Deps are the parts dlq list and redrive run with, made by the caller.
type Deps struct {
	// Registry is the schema registry the DLQ entries were written with.
	Registry schemas.Registry
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// session is the Kafka side of one run: a client and the DLQ reader.
type session struct {
	cfg   *Config
	cl    *kgo.Client
	rd    *reader
	log   *slog.Logger
	codec *schemas.Codec
}

func newSession(cfg *Config, deps Deps, clientSuffix string, opts ...kgo.Opt) (*session, error) {
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := cfg.Kafka.ClientID + "-dlq-" + clientSuffix
	cl, err := kafka.NewClient(cfg.Kafka, log, nil, append([]kgo.Opt{kgo.ClientID(id)}, opts...)...)
	if err != nil {
		return nil, err
	}
	codec := schemas.New(deps.Registry, schemas.WithLogger(log), schemas.WithTopicPrefix(cfg.Topics.Prefix))
	s := &session{cfg: cfg, cl: cl, log: log, codec: codec}
	s.rd = &reader{
		cl: cl, codec: codec, topic: cfg.Topics.Name(kafka.DLQ), log: log,
		newCl: func(o ...kgo.Opt) (*kgo.Client, error) {
			return kafka.NewClient(cfg.Kafka, log, nil, append([]kgo.Opt{kgo.ClientID(id + "-reader")}, o...)...)
		},
	}
	return s, nil
}

// withRedriveSession runs fn with the session of a redrive (each record
// goes at once to the partition it names) and a context bounded by
// dlq.timeout, and closes the session after.
func withRedriveSession(ctx context.Context, cfg *Config, deps Deps, fn func(context.Context, *session) error) error {
	s, err := newSession(cfg, deps, "redrive", kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer s.close()
	rctx, cancel := s.timeout(ctx)
	defer cancel()
	return fn(rctx, s)
}

func (s *session) close() { s.cl.Close() }

// timeout bounds ctx by dlq.timeout.
func (s *session) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.Own.Timeout)
}
