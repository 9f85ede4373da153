package demo

import (
	"errors"
	"fmt"
	"net"

	"github.com/alertsync/alertsync/internal/config"
)

// Config is the configuration of `alertsync demo`.
type Config struct {
	DataDir        string          `key:"data_dir" default:"./alertsync-data" doc:"Directory holding all of the demo's state (Kafka log, schemas, both PostgreSQL clusters, demo.env); a second start on it resumes."`
	KafkaListen    string          `key:"kafka_listen" default:"127.0.0.1:0" doc:"Loopback address of the embedded Kafka broker; port 0: the previous run's port when free, else any free port."`
	RegistryListen string          `key:"registry_listen" default:"127.0.0.1:0" doc:"Loopback address of the embedded schema registry; port 0: the previous run's port when free, else any free port."`
	Prisoners      int             `key:"prisoners" default:"12" doc:"Sample prisoners seeded in NOMIS on the first start (some with several bookings, some merged)."`
	PGBin          string          `key:"pg_bin" doc:"Directory holding the PostgreSQL server binaries (initdb, postgres). Empty: $PG_BIN, else /usr/lib/postgresql/15/bin."`
	Admin          config.Admin    `key:"admin"`
	Log            Log             `key:"log"`
	Shutdown       config.Shutdown `key:"shutdown"`
}

// Log configures the demo's log lines (on standard error), quieter than the
// components' default since progress is printed separately.
type Log struct {
	Level  string `key:"level" default:"warn" enum:"debug,info,warn,error" doc:"Lowest level logged."`
	Format string `key:"format" default:"text" enum:"json,text" doc:"Log line format: json (one object per line) or text."`
}

// Config returns the equivalent config.Log.
func (l Log) Config() config.Log { return config.Log{Level: l.Level, Format: l.Format} }

// Validate checks the listen addresses and the prisoner count.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, &config.KeyError{Key: "data_dir", Err: errors.New("must not be empty")})
	}
	for key, v := range map[string]string{"kafka_listen": c.KafkaListen, "registry_listen": c.RegistryListen} {
		host, _, err := net.SplitHostPort(v)
		if err != nil {
			errs = append(errs, &config.KeyError{Key: key, Err: fmt.Errorf("invalid address %q (want host:port, e.g. 127.0.0.1:0)", v)})
			continue
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			errs = append(errs, &config.KeyError{Key: key, Err: fmt.Errorf("the demo listens on loopback only, got %q", v)})
		}
	}
	if c.Prisoners < 1 || c.Prisoners > 10_000 {
		errs = append(errs, &config.KeyError{Key: "prisoners", Err: fmt.Errorf("must be between 1 and 10000, got %d", c.Prisoners)})
	}
	return errors.Join(errs...)
}
