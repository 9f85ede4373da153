// Command genseed writes deploy/dps/seed.sql, deploy/nomis/seed.sql and
// deploy/oracle/standin/seed.sql from the reference data in deploy/reference. Run it through `go generate
// ./deploy`.
package main

import (
	"fmt"
	"os"

	"github.com/alertsync/alertsync/deploy"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genseed:", err)
		os.Exit(1)
	}
}

func run() error {
	seeds := []struct {
		path   string
		render func() (string, error)
	}{
		{"dps/seed.sql", deploy.RenderDPSSeed},
		{"nomis/seed.sql", deploy.RenderNOMISSeed},
		{"oracle/standin/seed.sql", deploy.RenderOracleSeed},
	}
	for _, s := range seeds {
		seed, err := s.render()
		if err != nil {
			return fmt.Errorf("rendering %s: %w", s.path, err)
		}
		// go generate runs in the package directory, deploy/.
		// A checked-in source file, mounted read-only into the postgres container
		// whose init scripts run as the container's postgres user.
		if err := os.WriteFile(s.path, []byte(seed), 0o644); err != nil { //nolint:gosec // G306: must stay world-readable, see above
			return fmt.Errorf("writing %s: %w", s.path, err)
		}
	}
	return nil
}
