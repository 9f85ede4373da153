package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/pipeline"
	"github.com/alertsync/alertsync/internal/service"
	"github.com/alertsync/alertsync/transform"
)

func runTransform(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) > 0 && args[0] == "replay" {
		return runTransformReplay(ctx, args[1:], out, errOut)
	}
	var cfg transform.Config
	fs := newFlagSet("transform", errOut)
	rest, rl, err := loadReloadable(fs, &cfg, args, os.LookupEnv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("transform: unexpected arguments %q (want: transform [flags] | transform replay [flags])", rest)
	}
	// SIGHUP reloads the switches; caught from here on (its default action
	// would end the process).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log := service.NewLogger(cfg.Pipeline.Log, errOut)
	return service.Run(ctx, service.Options{Name: "transform", Admin: cfg.Pipeline.Admin, Drain: cfg.Pipeline.Shutdown.Timeout, Logger: log},
		func(ctx context.Context, srv *admin.Server) error {
			reg, err := pipeline.NewRegistry(cfg.Pipeline.Registry)
			if err != nil {
				return err
			}
			t, err := transform.New(cfg, transform.Deps{Registry: reg, Admin: srv, Logger: log})
			if err != nil {
				return fmt.Errorf("transform: %w", err)
			}
			go watchSwitches(ctx, hup, rl, cfg.Transform.WatchInterval, t, log)
			return t.Run(ctx)
		})
}

// watchSwitches reloads the configuration on SIGHUP and, every interval,
// when the --config file's content changed, and applies its sync.*
// switches to t. Other keys take effect at the next start; a configuration
// that no longer loads is logged and ignored (the switches stay as they are).
func watchSwitches(ctx context.Context, hup <-chan os.Signal, rl *reloader, interval time.Duration, t *transform.Transformer, log *slog.Logger) {
	var tick <-chan time.Time
	if rl.file != "" && interval > 0 {
		tk := time.NewTicker(interval)
		defer tk.Stop()
		tick = tk.C
	}
	watchConfig(ctx, hup, tick, func() ([]byte, error) { return os.ReadFile(rl.file) }, rl, t, log)
}

// switchable is what watchConfig reloads: the transformer.
type switchable interface {
	SetSwitches(transform.Switches)
	Reloaded()
	ReloadFailed()
}

// watchConfig is watchSwitches on the ticks of tick, reading the file with
// read. A changed file is loaded once it has kept the same content from one
// tick to the next, and from the very bytes looked at: a file read while an
// editor writes it in place could be empty or cut short, and a missing
// sync.* key means its default, on – a direction switched off would come
// back on.
func watchConfig(ctx context.Context, hup <-chan os.Signal, tick <-chan time.Time, read func() ([]byte, error), rl *reloader, t switchable, log *slog.Logger) {
	var loaded, seen []byte
	if tick != nil {
		loaded, _ = read()
	}
	settling := false // seen changed at the last tick
	reload := func(why string, content []byte) {
		var cfg transform.Config
		if err := rl.loadContent(&cfg, content); err != nil {
			t.ReloadFailed()
			log.Error("reloading the configuration; the sync switches stay as they are", "trigger", why, "err", err)
			return
		}
		log.Info("configuration reloaded (only sync.* applies while running)", "trigger", why,
			"nomis_to_dps", cfg.Sync.NOMISToDPS, "dps_to_nomis", cfg.Sync.DPSToNOMIS)
		t.SetSwitches(cfg.Sync)
		t.Reloaded()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			reload("SIGHUP", nil)
		case <-tick:
			b, err := read()
			switch {
			case err != nil || bytes.Equal(b, loaded):
				settling = false
			case !settling || !bytes.Equal(b, seen):
				seen, settling = b, true // changed: look again at the next tick
			default:
				loaded, settling = b, false
				reload("file changed", b)
			}
		}
	}
}

func runTransformReplay(ctx context.Context, args []string, out, errOut io.Writer) error {
	var cfg transform.Config
	fs := newFlagSet("transform replay", errOut)
	dir := fs.String("direction", "", "direction whose source records to consume again: nomis_to_dps or dps_to_nomis (required)")
	from := fs.String("from", "", "consume again every record written at or after this time, RFC 3339 (required), e.g. 2026-11-27T09:00:00Z")
	if _, err := loadConfig(fs, &cfg, args, os.LookupEnv); err != nil {
		return err
	}
	var d transform.Direction
	switch *dir {
	case "nomis_to_dps":
		d = transform.NOMISToDPS
	case "dps_to_nomis":
		d = transform.DPSToNOMIS
	default:
		return usagef("transform replay: --direction must be nomis_to_dps or dps_to_nomis, got %q", *dir)
	}
	at, err := time.Parse(time.RFC3339, *from)
	if err != nil {
		return usagef("transform replay: --from: %v", err)
	}
	log := service.NewLogger(cfg.Pipeline.Log, errOut)
	return transform.Replay(ctx, cfg, d, at, out, log)
}
