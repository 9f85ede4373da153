package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultBinDir is where Debian's postgresql-15 package installs the server
// binaries.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// Superuser is the database superuser every cluster is initialised with.
const Superuser = "postgres"

// ErrNotInstalled is returned (wrapped) by Start when the PostgreSQL server
// binaries cannot be found.
var ErrNotInstalled = errors.New("PostgreSQL server binaries not found")

// Options configures Start. The zero value starts a throwaway cluster in a
// temporary directory on a free port.
type Options struct {
	// BinDir holds initdb and postgres. Default: $PG_BIN, else DefaultBinDir.
	BinDir string
	// Dir is the cluster directory (data in Dir/data, log in Dir/server.log).
	// Default "": a temporary directory that Stop removes. When set, the
	// cluster persists: Stop keeps it and Start reuses it if initialised.
	Dir string
	// TempDir is where a temporary cluster directory (and the InitCache) is
	// created. Default: os.TempDir(). A tmpfs such as /dev/shm makes test
	// clusters start faster.
	TempDir string
	// Port is the TCP port on 127.0.0.1. Default 0: the port a persistent
	// cluster used last time if it is free, else any free port.
	Port int
	// NoFsync turns off fsync and full_page_writes and makes initdb skip its
	// syncs. Default false; for tests only, since a machine crash can then
	// corrupt the cluster. Commits stay synchronous, so Kill loses nothing
	// acknowledged.
	NoFsync bool
	// Settings are extra server settings written after the built-in ones,
	// so they can override them (values are written verbatim, quote
	// strings yourself). Default none.
	Settings map[string]string
	// StartTimeout bounds initdb plus start-up until the server accepts
	// connections. Default 60s.
	StartTimeout time.Duration
	// OSUser is the OS user the server runs as when the caller is root.
	// Default "postgres". Ignored when not root.
	OSUser string
	// InitCache copies a new cluster's data directory from a cached initdb
	// result (kept under TempDir, built on first use) instead of running
	// initdb, which saves one to two seconds per cluster. Default false;
	// meant for throwaway test clusters (the copy is not fsynced).
	InitCache bool
	// Logger receives start/stop events. Default: discard.
	Logger *slog.Logger
}

// Cluster is a running (or stopped) local PostgreSQL cluster. Its methods are
// safe for concurrent use.
type Cluster struct {
	opts    Options
	bin     string
	root    string // cluster directory
	data    string // PGDATA
	sock    string // unix socket directory
	logPath string
	temp    bool // root is a temp dir removed on Stop
	sockTmp bool // sock is a separate temp dir removed on Stop
	as      runAs
	log     *slog.Logger

	mu      sync.Mutex
	port    int
	proc    *os.Process
	done    <-chan struct{} // closed when proc has exited
	initDur time.Duration
	upDur   time.Duration
	removed bool
}

// Start initialises (if needed) and starts a cluster, returning once it
// accepts connections.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	begin := time.Now()
	if opts.BinDir == "" {
		opts.BinDir = os.Getenv("PG_BIN")
	}
	if opts.BinDir == "" {
		opts.BinDir = DefaultBinDir
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.OSUser == "" {
		opts.OSUser = "postgres"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	for _, prog := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, prog)); err != nil { //nolint:gosec // G703: BinDir is operator configuration (option or PG_BIN), only checked for existence
			return nil, fmt.Errorf("%w: %s missing in %s; install them with `apt-get install postgresql-15` "+
				"or point PG_BIN at the directory holding initdb and postgres", ErrNotInstalled, prog, opts.BinDir)
		}
	}
	as, err := newRunAs(opts.OSUser)
	if err != nil {
		return nil, err
	}

	c := &Cluster{opts: opts, bin: opts.BinDir, as: as, log: opts.Logger}
	if err := c.prepareDirs(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	fail := func(err error) (*Cluster, error) {
		c.removeDirs() // temporary directories only
		return nil, err
	}
	if err := c.initdb(ctx); err != nil {
		return fail(err)
	}
	if err := c.startWithPortRetry(ctx, opts.Port); err != nil {
		return fail(err)
	}
	c.mu.Lock()
	c.upDur = time.Since(begin)
	c.mu.Unlock()
	c.log.Info("postgres cluster started", "dir", c.root, "port", c.port,
		"init_seconds", c.initDur.Seconds(), "startup_seconds", c.upDur.Seconds())
	return c, nil
}

func (c *Cluster) prepareDirs() error {
	if c.opts.Dir == "" {
		dir, err := os.MkdirTemp(c.opts.TempDir, "alertsync-pg-")
		if err != nil {
			return fmt.Errorf("creating temporary cluster directory: %w", err)
		}
		c.root, c.temp = dir, true
	} else {
		dir, err := filepath.Abs(c.opts.Dir)
		if err != nil {
			return fmt.Errorf("resolving cluster directory %q: %w", c.opts.Dir, err)
		}
		// Parents are created searchable so the server's OS user reaches dir.
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("creating parent of cluster directory %s: %w", dir, err)
		}
		c.root = dir
	}
	c.data = filepath.Join(c.root, "data")
	c.logPath = filepath.Join(c.root, "server.log")
	c.sock = filepath.Join(c.root, "sock")
	// A Unix socket path is limited to 107 bytes; ".s.PGSQL.65535.lock" is 19.
	if len(c.sock)+20 > 100 {
		dir, err := os.MkdirTemp(c.opts.TempDir, "alertsync-pgsock-")
		if err != nil {
			return fmt.Errorf("creating socket directory: %w", err)
		}
		c.sock, c.sockTmp = dir, true
	}
	if err := c.as.checkTraversable(c.root); err != nil {
		c.removeDirs()
		return err
	}
	for _, d := range []string{c.root, c.data, c.sock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			c.removeDirs()
			return fmt.Errorf("creating %s: %w", d, err)
		}
		if err := c.as.chown(d); err != nil {
			c.removeDirs()
			return err
		}
	}
	return nil
}

// initdb initialises the data directory unless it already holds a cluster,
// from the initdb cache when Options.InitCache is set.
func (c *Cluster) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); err == nil {
		return nil
	}
	begin := time.Now()
	if c.opts.InitCache {
		if err := c.initFromCache(ctx); err != nil {
			return err
		}
	} else if err := c.runInitdb(ctx, c.data); err != nil {
		return err
	}
	c.initDur = time.Since(begin)
	return nil
}

func (c *Cluster) initdbArgs(data string) []string {
	args := []string{"-D", data, "-U", Superuser, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-instructions"}
	if c.opts.NoFsync {
		args = append(args, "--no-sync")
	}
	return args
}

// runInitdb initialises data (an existing empty directory owned by the
// run-as user) and installs our pg_hba.conf and settings include.
func (c *Cluster) runInitdb(ctx context.Context, data string) error {
	cmd := c.as.command(ctx, filepath.Dir(data), filepath.Join(c.bin, "initdb"), c.initdbArgs(data)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initialising cluster in %s: %w\n%s", data, err, tail(out, 30))
	}
	if err := c.writeOwned(filepath.Join(data, "pg_hba.conf"), hbaConf); err != nil {
		return err
	}
	conf := filepath.Join(data, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", conf, err)
	}
	_, err = io.WriteString(f, "\n# Settings managed by alertsync's pgcluster, rewritten on every start.\ninclude_if_exists = 'alertsync.conf'\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", conf, err)
	}
	return nil
}

const hbaConf = `# Written by alertsync's pgcluster: a local development/test cluster.
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 trust
local   replication  all                 trust
host    all          all   127.0.0.1/32  trust
host    replication  all   127.0.0.1/32  trust
`

// writeOwned writes a file in the data directory, owned by the run-as user.
func (c *Cluster) writeOwned(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return c.as.chown(path)
}

func (c *Cluster) writeSettings() error {
	settings := [][2]string{
		{"listen_addresses", "'127.0.0.1'"},
		{"port", strconv.Itoa(c.port)},
		{"unix_socket_directories", quote(c.sock)},
		{"max_connections", "200"},
		{"shared_buffers", "32MB"},
		{"wal_level", "logical"},
		{"track_commit_timestamp", "on"},
		{"max_replication_slots", "20"},
		{"max_wal_senders", "20"},
		{"logging_collector", "off"},
		{"log_line_prefix", "'%m [%p] %q%u@%d '"},
	}
	if c.opts.NoFsync {
		// synchronous_commit stays on: a committed transaction's WAL is then
		// written to the OS before the commit returns, so Kill (a process
		// crash) never loses an acknowledged commit; only a machine crash can.
		settings = append(settings, [2]string{"fsync", "off"}, [2]string{"full_page_writes", "off"})
	}
	keys := make([]string, 0, len(c.opts.Settings))
	for k := range c.opts.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		settings = append(settings, [2]string{k, c.opts.Settings[k]})
	}
	var b strings.Builder
	b.WriteString("# Written by alertsync's pgcluster on every start; edits are overwritten.\n")
	for _, s := range settings {
		fmt.Fprintf(&b, "%s = %s\n", s[0], s[1])
	}
	if err := c.writeOwned(filepath.Join(c.data, "alertsync.conf"), b.String()); err != nil {
		return err
	}
	if !c.temp {
		if err := os.WriteFile(filepath.Join(c.root, "port"), []byte(strconv.Itoa(c.port)+"\n"), 0o644); err != nil {
			return fmt.Errorf("recording port: %w", err)
		}
	}
	return nil
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// startWithPortRetry starts the server on port, or on a chosen free port
// when port is 0, retrying with another port if a chosen one was taken by
// someone else between choosing and binding.
func (c *Cluster) startWithPortRetry(ctx context.Context, port int) error {
	if port != 0 {
		return c.startOn(ctx, port)
	}
	if p := c.previousPort(); p != 0 && portFree(ctx, p) {
		if err := c.startOn(ctx, p); err == nil || portFree(ctx, p) {
			return err
		}
	}
	var err error
	for range 3 {
		var p int
		p, err = freePort(ctx)
		if err != nil {
			return err
		}
		err = c.startOn(ctx, p)
		if err == nil || portFree(ctx, p) || ctx.Err() != nil {
			return err
		}
		c.log.Warn("postgres port taken while starting, retrying on another", "port", p)
	}
	return err
}

func (c *Cluster) previousPort() int {
	if c.temp {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(c.root, "port"))
	if err != nil {
		return 0
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return p
}

func portFree(ctx context.Context, p int) bool {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer func() { _ = l.Close() }() // only probed for its port
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startOn starts the postmaster on port and waits until it accepts
// connections.
func (c *Cluster) startOn(ctx context.Context, port int) error {
	done, logStart, err := c.spawn(port)
	if err != nil {
		return err
	}
	if err := c.waitReady(ctx, done); err != nil {
		_ = c.signalAndWait(syscall.SIGQUIT, 10*time.Second)
		return fmt.Errorf("starting postgres on port %d: %w\nserver log:\n%s", port, err, c.logTail(logStart, 40))
	}
	return nil
}

// spawn writes the settings for port and starts the postmaster, returning a
// channel closed when it exits and the server log offset at its start.
func (c *Cluster) spawn(port int) (<-chan struct{}, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		return nil, 0, fmt.Errorf("starting postgres in %s: already running", c.data)
	}
	c.port = port
	if err := c.writeSettings(); err != nil {
		return nil, 0, err
	}
	// A separate socket directory is removed by Stop; recreate it for a
	// restart of a persistent cluster.
	if err := os.MkdirAll(c.sock, 0o700); err != nil {
		return nil, 0, fmt.Errorf("creating socket directory: %w", err)
	}
	if err := c.as.chown(c.sock); err != nil {
		return nil, 0, err
	}
	logf, err := os.OpenFile(c.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("opening server log: %w", err)
	}
	if err := c.as.chown(c.logPath); err != nil {
		_ = logf.Close() // nothing written yet
		return nil, 0, err
	}
	logStart, _ := logf.Seek(0, io.SeekEnd)

	// The server outlives Start's context: Stop, Kill and Pdeathsig end it.
	cmd := c.as.prepare(exec.Command(filepath.Join(c.bin, "postgres"), "-D", c.data), c.root) //nolint:noctx,gosec // fixed binary path

	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT

	// Pdeathsig fires when the OS thread that forked the child exits, so that
	// thread stays locked to the goroutine that waits for the server.
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(done)
		// The server writes through its own descriptor; this copy only
		// needs releasing.
		defer func() { _ = logf.Close() }()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait() // a shutdown by signal is an exit status too
	}()
	if err := <-started; err != nil {
		return nil, 0, fmt.Errorf("starting postgres: %w", err)
	}
	c.proc, c.done = cmd.Process, done
	return done, logStart, nil
}

// waitReady polls until the server accepts a connection, exits, or ctx ends.
func (c *Cluster) waitReady(ctx context.Context, exited <-chan struct{}) error {
	dsn := c.DSN("postgres") + "&connect_timeout=2"
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-exited:
			return errors.New("server exited during start-up")
		case <-ctx.Done():
			if last == nil {
				return fmt.Errorf("server not ready: %w", ctx.Err())
			}
			return fmt.Errorf("server not ready: %w (last attempt: %w)", ctx.Err(), last)
		case <-tick.C:
		}
		conn, err := pgconn.Connect(ctx, dsn)
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		last = err
	}
}

func (c *Cluster) logTail(from int64, lines int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", c.logPath, err)
	}
	if from > 0 && from <= int64(len(b)) {
		b = b[from:]
	}
	return string(tail(b, lines))
}

func tail(b []byte, lines int) []byte {
	b = bytes.TrimRight(b, "\n")
	idx := len(b)
	for range lines {
		i := bytes.LastIndexByte(b[:idx], '\n')
		if i < 0 {
			return b
		}
		idx = i
	}
	return b[idx+1:]
}

// signalAndWait sends sig to the postmaster and waits up to grace for it to
// exit, then kills its whole process group. The caller must not hold c.mu.
func (c *Cluster) signalAndWait(sig syscall.Signal, grace time.Duration) error {
	c.mu.Lock()
	proc, done := c.proc, c.done
	c.mu.Unlock()
	if proc == nil {
		return nil
	}
	if err := proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling postgres (pid %d): %w", proc.Pid, err)
	}
	var err error
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("postgres (pid %d) did not stop within %s after %s; killed", proc.Pid, grace, sig)
	}
	// Backends may outlive the postmaster by a moment after SIGKILL.
	_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
	c.mu.Lock()
	c.proc, c.done = nil, nil
	c.mu.Unlock()
	return err
}

// shutdown stops the server with a fast shutdown bounded by ctx (at most 30s),
// escalating to an immediate shutdown and then SIGKILL.
func (c *Cluster) shutdown(ctx context.Context) error {
	c.mu.Lock()
	proc, done := c.proc, c.done
	c.mu.Unlock()
	if proc == nil {
		return nil
	}
	if err := proc.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling postgres (pid %d): %w", proc.Pid, err)
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-done:
		return c.signalAndWait(syscall.SIGKILL, time.Second)
	case <-ctx.Done():
	case <-timer.C:
	}
	c.log.Warn("postgres fast shutdown too slow, using immediate shutdown", "pid", proc.Pid)
	return c.signalAndWait(syscall.SIGQUIT, 10*time.Second)
}

// Stop shuts the server down (fast shutdown) and, for a temporary cluster,
// removes its directory. Stop is idempotent.
func (c *Cluster) Stop(ctx context.Context) error {
	err := c.shutdown(ctx)
	if c.temp || c.sockTmp {
		c.removeDirs()
	}
	c.log.Info("postgres cluster stopped", "dir", c.root, "port", c.Port())
	if err != nil {
		return fmt.Errorf("stopping postgres in %s: %w", c.data, err)
	}
	return nil
}

func (c *Cluster) removeDirs() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return
	}
	if c.temp {
		_ = os.RemoveAll(c.root)
	}
	if c.sockTmp {
		_ = os.RemoveAll(c.sock)
	}
	c.removed = c.temp
}

// Kill stops the server with an immediate shutdown (SIGQUIT): no checkpoint,
// so the next Restart performs crash recovery. The data is kept.
func (c *Cluster) Kill() error {
	if err := c.signalAndWait(syscall.SIGQUIT, 10*time.Second); err != nil {
		return fmt.Errorf("killing postgres in %s: %w", c.data, err)
	}
	c.log.Info("postgres cluster killed", "dir", c.root, "port", c.Port())
	return nil
}

// Restart stops the server if it is running and starts it again with the
// same data directory and port.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.shutdown(ctx); err != nil {
		return fmt.Errorf("restarting postgres: %w", err)
	}
	c.mu.Lock()
	removed := c.removed
	port := c.port
	c.mu.Unlock()
	if removed {
		return fmt.Errorf("restarting postgres: cluster directory %s was removed by Stop", c.root)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	begin := time.Now()
	if err := c.startOn(ctx, port); err != nil {
		return fmt.Errorf("restarting postgres: %w", err)
	}
	c.log.Info("postgres cluster restarted", "port", port, "startup_seconds", time.Since(begin).Seconds())
	return nil
}

// Running reports whether the postmaster process is alive.
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc != nil
}

// PID returns the postmaster's process id (every server process of the
// cluster is its child), or 0 when it is not running.
func (c *Cluster) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0
	}
	return c.proc.Pid
}

// Port returns the TCP port the server listens on at 127.0.0.1.
func (c *Cluster) Port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.port
}

// Dir returns the cluster directory (holding data/ and server.log).
func (c *Cluster) Dir() string { return c.root }

// DataDir returns the PGDATA directory.
func (c *Cluster) DataDir() string { return c.data }

// SocketDir returns the Unix socket directory.
func (c *Cluster) SocketDir() string { return c.sock }

// LogPath returns the server log file.
func (c *Cluster) LogPath() string { return c.logPath }

// StartupTime returns how long Start took from its call until the server
// accepted connections, initdb included.
func (c *Cluster) StartupTime() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.upDur
}

// InitTime returns how long initdb took in Start (0 when the data directory
// was reused).
func (c *Cluster) InitTime() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.initDur
}

// DSN returns a postgres:// URL for dbname as the superuser over TCP, with
// sslmode=disable.
func (c *Cluster) DSN(dbname string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dsnLocked(dbname)
}

func (c *Cluster) dsnLocked(dbname string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(Superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Connect opens a connection to dbname as the superuser.
func (c *Cluster) Connect(ctx context.Context, dbname string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, c.DSN(dbname))
	if err != nil {
		return nil, fmt.Errorf("connecting to database %q: %w", dbname, err)
	}
	return conn, nil
}

// CreateDB creates database name (from template1).
func (c *Cluster) CreateDB(ctx context.Context, name string) error {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return fmt.Errorf("creating database %q: %w", name, err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }() // statements are done; closing loses nothing
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %q: %w", name, err)
	}
	return nil
}

const sqlstateObjectInUse = "55006"

// DropDB terminates the sessions and replication connections of database
// name, drops its logical replication slots and drops it. Dropping a
// database that does not exist is not an error.
func (c *Cluster) DropDB(ctx context.Context, name string) error {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return fmt.Errorf("dropping database %q: %w", name, err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }() // statements are done; closing loses nothing
	const terminate = `
SELECT count(pg_terminate_backend(pid, 5000)) FROM (
  SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()
  UNION
  SELECT active_pid FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL
) s`
	const dropSlots = `SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE database = $1`
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("dropping database %q: %w (last error: %w)", name, ctx.Err(), lastErr)
			case <-time.After(100 * time.Millisecond):
			}
		}
		if _, err := conn.Exec(ctx, terminate, name); err != nil {
			return fmt.Errorf("terminating sessions of database %q: %w", name, err)
		}
		if _, err := conn.Exec(ctx, dropSlots, name); err != nil {
			if inUse(err) {
				lastErr = err
				continue
			}
			return fmt.Errorf("dropping replication slots of database %q: %w", name, err)
		}
		_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		if err == nil {
			return nil
		}
		if !inUse(err) {
			return fmt.Errorf("dropping database %q: %w", name, err)
		}
		lastErr = err
	}
	return fmt.Errorf("dropping database %q: still in use: %w", name, lastErr)
}

func inUse(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == sqlstateObjectInUse
}
