package cli

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/demo"
	"github.com/alertsync/alertsync/internal/service"
)

// runDemo runs `alertsync demo`: every component in one process on embedded
// Kafka, schema registry and PostgreSQL, with its state under --data-dir.
func runDemo(ctx context.Context, args []string, out, errOut io.Writer) error {
	var cfg demo.Config
	fs := newFlagSet("demo", errOut)
	// The dashed spellings the README uses, beside the key-named flags.
	alias := map[string]string{"data-dir": "data_dir", "admin-listen": "admin.listen", "kafka-listen": "kafka_listen", "registry-listen": "registry_listen"}
	aliased := map[string]string{}
	for a, key := range alias {
		fs.Func(a, "same as --"+key, func(s string) error { aliased[key] = s; return nil })
	}
	reset := fs.Bool("reset", false, "remove the data directory first and start over")
	file := fs.String("config", "", "YAML configuration file (see docs/configuration.md)")
	flags := config.FlagValues(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if len(fs.Args()) > 0 {
		return usagef("demo: unexpected arguments %q", fs.Args())
	}
	for k, v := range aliased {
		flags[k] = v
	}
	r := &reloader{file: *file, lookup: os.LookupEnv, flags: flags}
	if err := r.load(&cfg); err != nil {
		return err
	}
	log := service.NewLogger(cfg.Log.Config(), errOut)
	return demo.Run(ctx, cfg, demo.Deps{Out: out, Logger: log, Version: versionString(), Reset: *reset})
}
