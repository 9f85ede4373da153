// Package cli is the alertsync command line: it parses the subcommand, loads
// the component's typed configuration (defaults, YAML, ALERTSYNC_* environment,
// flags), validates it, and runs the component until its context ends.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"sort"
	"strings"

	"github.com/alertsync/alertsync/internal/config"
)

// Version is set at build time with -ldflags "-X ...cli.Version=v1.2.3".
var Version = ""

// UsageError is a command-line mistake; main exits 2 on it.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// ExitError is an error that sets main's exit status.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode returns the exit status main gives err: 0 for nil, 2 for a
// *UsageError, an *ExitError's Code, 1 for any other error.
func ExitCode(err error) int {
	var ue *UsageError
	var ee *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &ee):
		return ee.Code
	}
	return 1
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, out, errOut io.Writer) error
}

func commands() []command {
	return []command{
		{"version", "print the version", runVersion},
		{"capture", "capture changes of a source database into Kafka (dps | nomis)", runCapture},
		{"transform", "map change records to commands for the opposite side, exactly once (also: transform replay)", runTransform},
		{"apply", "write commands into the target database idempotently (dps | nomis)", runApply},
		{"migrate", "apply the sync-owned schema objects (dps | nomis)", runMigrate},
		{"dlq", "list the DLQ entries, or redrive the commands an apply holds (list | redrive)", runDLQ},
		{"demo", "run the whole pipeline in one process on embedded Kafka, registry and PostgreSQL (--data-dir, --reset)", runDemo},
		{"reconcile", "compare NOMIS with DPS per prisoner on every mapped field; exit 1 when they differ", runReconcile},
		{"history", "print the timeline of a prisoner or an alert from the topics (--prisoner | --dps-alert | --nomis-alert); exit 1 when none", runHistory},
		{"lag", "print the consumer lag of the transformer's and the applies' groups per partition; exit 1 over --max-lag", runLag},
		{"monitor", "watch the components' states, rates, lag, freshness and DLQ entries from their admin servers (--once: exit 1 unless all run)", runMonitor},
		{"config", "check or print a component's effective configuration, or the key reference (check | print | docs)", runConfig},
		{"metrics", "print the reference of the metrics each component serves (markdown, or --json)", runMetrics},
	}
}

// Run executes the subcommand named by args[0]. A subcommand's -h or --help
// is a success (nil).
func Run(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		err := usage(out)
		if len(args) == 0 {
			return usagef("no subcommand given")
		}
		return err
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if actions, ok := groups[c.name]; ok && len(args) > 1 && isHelp(args[1]) {
				// A command of actions (targets) takes its flags after
				// the action: say which there are.
				_, err := fmt.Fprintf(out, "Usage: alertsync %s <%s> [flags]\n\n%s.\n\nRun alertsync %s <%s> -h for the flags of one.\n",
					c.name, actions, c.summary, c.name, strings.ReplaceAll(actions, " | ", "|"))
				return err
			}
			err := c.run(ctx, args[1:], out, errOut)
			if errors.Is(err, flag.ErrHelp) {
				// -h or --help: the flag set has printed the usage asked
				// for. Not a failure, and no exit status of the
				// subcommand's own (history's 1 is "none found").
				return nil
			}
			return err
		}
	}
	_ = usage(errOut) // the usage error returned next is what matters
	return usagef("unknown subcommand %q", args[0])
}

// usage writes the list of subcommands to w.
// failuresExit2 is the exit convention of the checking commands (lag,
// monitor): their verdict, an error wrapping verdict, exits 1 (as does a
// usage error its 2, -h its 0); any other error means the check could not
// be made, and exits 2.
func failuresExit2(err, verdict error) error {
	var ue *UsageError
	if err == nil || errors.Is(err, verdict) || errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &ExitError{Code: 2, Err: err}
}

// groups are the subcommands whose first argument is an action or a
// target, and those they take.
var groups = map[string]string{
	"capture": "dps | nomis",
	"apply":   "dps | nomis",
	"dlq":     "list | redrive",
	"config":  "check | print | docs",
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

func usage(w io.Writer) error {
	var b strings.Builder
	b.WriteString("alertsync keeps prisoner alerts in sync between NOMIS and DPS over Kafka.\n")
	b.WriteString("\nUsage: alertsync <subcommand> [flags]\n\nSubcommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	b.WriteString("\nEvery setting can come from --config FILE (YAML), ALERTSYNC_* variables or flags; see docs/configuration.md.\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing usage: %w", err)
	}
	return nil
}

func versionString() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "-dirty"
			}
			return "devel-" + rev
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return "devel"
}

func runVersion(_ context.Context, _ []string, out, _ io.Writer) error {
	_, err := fmt.Fprintln(out, "alertsync", versionString())
	return err
}

// loadConfig registers cfg's keys as flags on fs (plus --config), parses args,
// loads and validates cfg, and returns the remaining positional arguments.
func loadConfig(fs *flag.FlagSet, cfg any, args []string, lookup func(string) (string, bool)) ([]string, error) {
	rest, _, err := loadReloadable(fs, cfg, args, lookup)
	return rest, err
}

// reloader loads a fresh configuration from the sources of the first load
// (the same file, environment and flags) into cfg and validates it. file is
// the --config path ("" when none).
type reloader struct {
	file   string
	lookup func(string) (string, bool)
	flags  map[string]string
}

func (r *reloader) load(cfg any) error { return r.loadContent(cfg, nil) }

// loadContent is load with the file's content as read by the caller (nil:
// read it now).
func (r *reloader) loadContent(cfg any, content []byte) error {
	if err := config.Load(cfg, config.Sources{File: r.file, FileContent: content, LookupEnv: r.lookup, Flags: r.flags}); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if err := config.Validate(cfg); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	return nil
}

// loadReloadable is loadConfig that also returns the reloader of the
// configuration.
func loadReloadable(fs *flag.FlagSet, cfg any, args []string, lookup func(string) (string, bool)) ([]string, *reloader, error) {
	file := fs.String("config", "", "YAML configuration file (see docs/configuration.md)")
	flags := config.FlagValues(fs, cfg)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, usagef("%v", err)
	}
	if slices.ContainsFunc(fs.Args(), func(a string) bool { return a == "-h" || a == "--help" || a == "-help" }) {
		// -h after an argument (alertsync migrate dps -h), where the flag
		// package stops parsing.
		fs.Usage()
		return nil, nil, flag.ErrHelp
	}
	r := &reloader{file: *file, lookup: lookup, flags: flags}
	if err := r.load(cfg); err != nil {
		return nil, nil, err
	}
	return fs.Args(), r, nil
}

func newFlagSet(name string, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("alertsync "+name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	return fs
}

func componentNames() string {
	var names []string
	for _, c := range components() {
		names = append(names, c.name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
