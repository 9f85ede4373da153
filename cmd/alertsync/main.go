// Command alertsync keeps prisoner alerts in sync between NOMIS and DPS over
// Kafka. Run `alertsync help` for its subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alertsync/alertsync/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "alertsync:", err)
		os.Exit(cli.ExitCode(err))
	}
}
