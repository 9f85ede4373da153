package dlq

import (
	"fmt"
	"time"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
)

// Config is the configuration of `alertsync dlq list|redrive`.
type Config struct {
	Kafka    kafka.Config       `key:"kafka"`
	Topics   kafka.TopicsConfig `key:"topics"`
	Registry config.Registry    `key:"registry"`
	Log      config.Log         `key:"log"`
	// DPS holds the holds of apply dps (alertsync.dlq_holds).
	DPS config.DPS `key:"dps"`
	// NOMIS holds the holds of apply nomis: alertsync.alertsync_dlq_holds on
	// the PostgreSQL stand-in, OMS_OWNER.ALERTSYNC_DLQ_HOLDS on Oracle
	// (nomis.dialect); the redrive of capture.nomis writes its resync
	// requests to the journal there.
	NOMIS config.NOMIS `key:"nomis"`
	Own   Options      `key:"dlq"`
}

// Options is the "dlq" section.
type Options struct {
	Timeout        time.Duration `key:"timeout" default:"2m" doc:"Longest dlq list or dlq redrive takes to read alertsync.dlq up to its current end and to produce the redriven records."`
	ConnectTimeout time.Duration `key:"connect_timeout" default:"10s" doc:"Longest wait for a connection to the DPS or NOMIS database: the applies' holds, and the NOMIS journal the redrive of capture.nomis writes its resync requests to."`
}

// Validate refuses non-positive timeouts.
func (o *Options) Validate() error {
	if o.Timeout <= 0 {
		return &config.KeyError{Key: "timeout", Err: fmt.Errorf("must be positive, got %s", o.Timeout)}
	}
	if o.ConnectTimeout <= 0 {
		return &config.KeyError{Key: "connect_timeout", Err: fmt.Errorf("must be positive, got %s", o.ConnectTimeout)}
	}
	return nil
}
