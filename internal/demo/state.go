package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// The data directory's layout (docs/demo.md).
const (
	dirKafka     = "kafka"        // kfake's DataDir
	dirDPS       = "dps"          // PostgreSQL cluster of DPS
	dirNOMIS     = "nomis"        // PostgreSQL cluster of the NOMIS stand-in
	fileSchemas  = "schemas.json" // registered schemas, re-seeded with their ids
	filePorts    = "ports.json"   // ports of the last run, reused when free
	fileSetup    = "setup.done"   // written once schemas, reference data and sample prisoners are committed
	fileEnv      = "demo.env"     // connection settings for psql and Kafka clients
	dbDPS        = "alerts"       // database name on the DPS cluster
	dbNOMIS      = "nomis"        // database name on the NOMIS cluster
	dirMode      = 0o755          // traversable by the postgres OS user
	privateMode  = 0o600          // files only the demo reads
	publicMode   = 0o644          // demo.env
	stateVersion = 1              // ports.json format
)

// ports are the listening ports of the previous run.
type ports struct {
	Version  int `json:"version"`
	Kafka    int `json:"kafka"`
	Registry int `json:"registry"`
}

func readPorts(dir string) ports {
	var p ports
	b, err := os.ReadFile(filepath.Join(dir, filePorts)) //nolint:gosec // G304: a file in the operator's data directory
	if err != nil || json.Unmarshal(b, &p) != nil || p.Version != stateVersion {
		return ports{}
	}
	return p
}

func writePorts(dir string, p ports) error {
	p.Version = stateVersion
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", filePorts, err)
	}
	return writeFileAtomic(filepath.Join(dir, filePorts), b, privateMode)
}

// writeFileAtomic writes b to path through a synced temporary file and a
// rename, so that a crash leaves the old or the new content, never a part.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode) //nolint:gosec // G304: a file in the operator's data directory
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s: %w", tmp, err)
	}
	return nil
}

// listen opens a TCP listener on addr. Port 0 takes previous when it is
// free, else any free port.
func listen(ctx context.Context, addr string, previous int) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("parsing listen address %q: %w", addr, err)
	}
	var lc net.ListenConfig
	if port == "0" && previous > 0 {
		if ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(previous))); err == nil {
			return ln, nil
		}
	}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return ln, nil
}

// freePort returns port, or when it is 0 the previous port if free, else a
// free port chosen by the kernel (released before it is returned).
func freePort(ctx context.Context, addr string, previous int) (int, error) {
	ln, err := listen(ctx, addr, previous)
	if err != nil {
		return 0, err
	}
	p := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("releasing port %d: %w", p, err)
	}
	return p, nil
}

// prepareDir creates (or, with reset, recreates) the data directory and
// makes it and its parents traversable by the postgres OS user.
func prepareDir(dir string, reset bool) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolving data directory %q: %w", dir, err)
	}
	if reset {
		if err := os.RemoveAll(abs); err != nil {
			return "", fmt.Errorf("removing data directory %s (--reset): %w", abs, err)
		}
	}
	if err := os.MkdirAll(abs, dirMode); err != nil {
		return "", fmt.Errorf("creating data directory %s: %w", abs, err)
	}
	if err := os.Chmod(abs, dirMode); err != nil { //nolint:gosec // G302: the postgres OS user must traverse it to reach its clusters
		return "", fmt.Errorf("making data directory %s traversable: %w", abs, err)
	}
	return abs, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
