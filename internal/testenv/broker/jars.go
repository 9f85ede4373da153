package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultVersion is the Apache Kafka version started when Options.Version is
// empty. It is the version the package is tested with on Java 17.
const DefaultVersion = "4.1.1"

// CacheDirEnv names the environment variable that overrides the cache folder
// (default: <repo root>/.cache).
const CacheDirEnv = "ALERTSYNC_CACHE_DIR"

// resolveTimeout bounds one Maven run. A cold resolution downloads ~45 MB.
const resolveTimeout = 10 * time.Minute

//go:embed pom.xml
var pom []byte

// CacheDir returns the folder that holds resolved jars: $ALERTSYNC_CACHE_DIR
// when set, otherwise .cache under the repository root (the nearest parent of
// the working directory holding go.mod), otherwise alertsync under the user's
// cache directory.
func CacheDir() (string, error) {
	if dir := os.Getenv(CacheDirEnv); dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the cache folder: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".cache"), nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	user, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the cache folder: no go.mod above %s and %w; set %s", wd, err, CacheDirEnv)
	}
	return filepath.Join(user, "alertsync"), nil
}

// Prepare makes sure the jars of Kafka version (DefaultVersion when empty)
// are in cacheDir (CacheDir() when empty) and returns the folder holding
// them. The first call runs Maven, which needs network access to Maven
// Central or a populated ~/.m2; later calls, also from other processes, find
// the marker file and return at once. Concurrent callers are serialised by a
// file lock.
func Prepare(ctx context.Context, version, cacheDir string) (string, error) {
	if version == "" {
		version = DefaultVersion
	}
	if cacheDir == "" {
		var err error
		if cacheDir, err = CacheDir(); err != nil {
			return "", err
		}
	}
	base := filepath.Join(cacheDir, "kafka", version)
	libs := filepath.Join(base, "libs")
	marker := filepath.Join(base, "resolved")
	sum := sha256.Sum256(pom)
	want := hex.EncodeToString(sum[:]) + "\n"

	if got, err := os.ReadFile(marker); err == nil && string(got) == want {
		return libs, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("creating jar cache %s: %w", base, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(base, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another process may have finished while we waited for the lock.
	if got, err := os.ReadFile(marker); err == nil && string(got) == want {
		return libs, nil
	}

	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return "", fmt.Errorf("resolving Kafka %s jars: Maven (mvn) is not on PATH: install it (apt-get install -y maven): %w", version, err)
	}
	pomPath := filepath.Join(base, "pom.xml")
	if err := os.WriteFile(pomPath, pom, 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", pomPath, err)
	}
	tmp := libs + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("clearing %s: %w", tmp, err)
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, mvn, "-q", "-B", "-f", pomPath,
		"-Dkafka.version="+version,
		"dependency:copy-dependencies", "-DoutputDirectory="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("resolving Kafka %s jars with Maven (needs Maven Central or a filled ~/.m2): %w\n%s", version, err, tail(out.Bytes(), 30))
	}
	if _, err := os.Stat(filepath.Join(tmp, "kafka_2.13-"+version+".jar")); err != nil {
		return "", fmt.Errorf("resolving Kafka %s jars: Maven finished but kafka_2.13-%s.jar is missing: %w", version, version, err)
	}
	// Class archives were made from the old jars.
	stale, _ := filepath.Glob(filepath.Join(base, "kafka-*.jsa*"))
	for _, f := range stale {
		if err := os.Remove(f); err != nil {
			return "", fmt.Errorf("removing stale class archive: %w", err)
		}
	}
	if err := os.RemoveAll(libs); err != nil {
		return "", fmt.Errorf("replacing %s: %w", libs, err)
	}
	if err := os.Rename(tmp, libs); err != nil {
		return "", fmt.Errorf("moving resolved jars into %s: %w", libs, err)
	}
	if err := os.WriteFile(marker, []byte(want), 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", marker, err)
	}
	return libs, nil
}

// lockFile takes an exclusive flock on path, polling so that ctx can cancel
// the wait.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for lock %s (another process is resolving jars): %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}
