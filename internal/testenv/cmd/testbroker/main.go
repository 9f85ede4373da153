// Command testbroker runs a real single-node Kafka broker (package
// internal/testenv/broker) for `make test` and local use.
//
//	testbroker -prepare                 resolve the Kafka jars into the cache and exit
//	testbroker -addr-file FILE [-dir D] start a broker, write its address to FILE,
//	                                    print it, and run until SIGINT/SIGTERM
//
// The address file is written only once the broker serves metadata, so a
// script can wait for the file to appear, and it is removed on exit. Logs go
// to stderr; the only line on stdout is the address.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alertsync/alertsync/internal/testenv/broker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "testbroker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("testbroker", flag.ContinueOnError)
	prepare := fs.Bool("prepare", false, "only resolve the Kafka jars into the cache, then exit")
	addrFile := fs.String("addr-file", "", "file to write the broker's host:port to once it is ready (removed on exit)")
	dir := fs.String("dir", "", "keep the broker's data and logs in this directory (default: a temporary directory, removed on exit)")
	version := fs.String("version", broker.DefaultVersion, "Apache Kafka version")
	heap := fs.String("heap", "512m", "JVM maximum heap (-Xmx)")
	jvmOpts := fs.String("jvm-opts", "", "extra JVM options, separated by spaces (e.g. "+broker.C1Only+": no C2 compilation, steady from the start)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	if *prepare {
		started := time.Now()
		libs, err := broker.Prepare(ctx, *version, "")
		if err != nil {
			return err
		}
		logger.Info("kafka jars ready", "libs", libs, "took", time.Since(started).Round(time.Millisecond))
		return nil
	}

	started := time.Now()
	b, err := broker.Start(ctx, broker.Options{Dir: *dir, Version: *version, MaxHeap: *heap, JVMOptions: strings.Fields(*jvmOpts), Logger: logger})
	if err != nil {
		return err
	}
	logger.Info("kafka broker started", "addr", b.Addr(), "dir", b.Dir(),
		"total", time.Since(started).Round(time.Millisecond),
		"format", b.FormatTime().Round(time.Millisecond), "startup", b.StartupTime().Round(time.Millisecond))

	var errs []error
	if *addrFile != "" {
		if err := writeAtomic(*addrFile, b.Addr()+"\n"); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		fmt.Println(b.Addr())
		<-ctx.Done()
		logger.Info("stopping kafka broker")
	}
	if err := b.Stop(); err != nil {
		errs = append(errs, err)
	}
	if *addrFile != "" {
		if err := os.Remove(*addrFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", *addrFile, err))
		}
	}
	return errors.Join(errs...)
}

// writeAtomic writes s to path through a rename, so a reader never sees a
// partial address.
func writeAtomic(path, s string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".addr-*")
	if err != nil {
		return fmt.Errorf("writing address file: %w", err)
	}
	if _, err := tmp.WriteString(s); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing address file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing address file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing address file: %w", err)
	}
	return nil
}
