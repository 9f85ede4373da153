package cli

import (
	"context"
	"encoding/json"
	"io"

	"github.com/alertsync/alertsync/internal/metricsdoc"
)

// runMetrics prints the metrics reference: docs/metrics.md, or with --json
// one object per metric family (name, type, help, labels, components).
func runMetrics(_ context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("metrics", errOut)
	asJSON := fs.Bool("json", false, "print JSON (name, type, help, labels, components of each family) instead of markdown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("metrics: unexpected argument %q", fs.Arg(0))
	}
	c, err := metricsdoc.Catalog()
	if err != nil {
		return err
	}
	if !*asJSON {
		return metricsdoc.Markdown(out, c)
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}
