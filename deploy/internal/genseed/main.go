// Command genseed writes deploy/dps/seed.sql from the reference data in
// deploy/reference. Run it through `go generate ./deploy`.
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
	seed, err := deploy.RenderDPSSeed()
	if err != nil {
		return fmt.Errorf("rendering seed: %w", err)
	}
	// go generate runs in the package directory, deploy/.
	// A checked-in source file, mounted read-only into the postgres container
	// whose init scripts run as the container's postgres user.
	if err := os.WriteFile("dps/seed.sql", []byte(seed), 0o644); err != nil { //nolint:gosec // G306: must stay world-readable, see above
		return fmt.Errorf("writing dps/seed.sql: %w", err)
	}
	return nil
}
