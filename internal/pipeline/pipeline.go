// Package pipeline holds what every long-running pipeline component (capture,
// transform, apply) shares: the common configuration sections and the
// construction of the schema-registry client and codec from them.
package pipeline

import (
	"fmt"
	"net/http"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
)

// Config holds the sections shared by every long-running component; each
// component's own Config embeds it with an empty key tag prefix (its keys
// stay at the top level: kafka.brokers, topics.prefix, …).
type Config struct {
	Kafka    kafka.Config       `key:"kafka"`
	Topics   kafka.TopicsConfig `key:"topics"`
	Registry config.Registry    `key:"registry"`
	Admin    config.Admin       `key:"admin"`
	Log      config.Log         `key:"log"`
	Shutdown config.Shutdown    `key:"shutdown"`
}

// NewRegistry returns a schema-registry client for cfg.
func NewRegistry(cfg config.Registry) (*sr.Client, error) {
	opts := []sr.ClientOpt{
		sr.URLs(cfg.URL),
		sr.HTTPClient(&http.Client{Timeout: cfg.Timeout}),
		sr.UserAgent("alertsync"),
	}
	if cfg.Username != "" {
		opts = append(opts, sr.BasicAuth(cfg.Username, cfg.Password.Reveal()))
	}
	c, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating schema registry client for %s (registry.url): %w", config.RedactDSN(cfg.URL), err)
	}
	return c, nil
}
