package broker

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configures Start. The zero value starts DefaultVersion in a
// temporary directory that Stop removes.
type Options struct {
	// Dir holds the broker's configuration, data and logs. When set, the
	// directory is kept after Stop and a later Start on it resumes the same
	// cluster (storage is formatted only once). Default: a new temporary
	// directory, removed by Stop.
	Dir string
	// Version is the Apache Kafka version to run. Default: DefaultVersion.
	Version string
	// CacheDir is the cache folder for resolved jars (kafka/<Version>/libs
	// below it). Default: CacheDir().
	CacheDir string
	// StartTimeout bounds each start, from launching the JVM until a client
	// gets metadata (formatting and jar resolution are not counted).
	// Default: 2m.
	StartTimeout time.Duration
	// StopTimeout bounds a graceful stop (SIGTERM) before the JVM is killed.
	// Default: 30s.
	StopTimeout time.Duration
	// MaxHeap is the JVM's -Xmx. Default: "512m".
	MaxHeap string
	// JVMOptions are added to the broker JVM's options, after the built-in
	// ones (so they can override them), e.g. C1Only. Default none.
	JVMOptions []string
	// Config adds or overrides server.properties entries.
	Config map[string]string
	// Logger receives progress messages. Default: discarded.
	Logger *slog.Logger
}

// C1Only is a JVMOptions entry that stops the JVM's just-in-time compiler at
// its first tier (C1). A new broker JVM's C2 compiler otherwise keeps a
// thread busy for minutes under load – measured on a 2-core machine under
// the end-to-end benchmark's load (100-250 changes/s per direction): 10-40%
// of a core for about seven minutes, work a long-running broker has long
// finished – while C1 has compiled the hot code within seconds. Its code
// is slower: the whole JVM then took 48-65% of a core from 50 changes/s per
// direction up, against 40-47% for a C2 broker after seven minutes of that
// load (150-250 changes/s). A benchmark against a new C1-only broker measures a steady
// broker from its first step, and errs on the slow side.
const C1Only = "-XX:TieredStopAtLevel=1"

// PID is the process id of the broker's JVM, or 0 while it is not running.
func (b *Broker) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc == nil || b.proc.exited() {
		return 0
	}
	return b.proc.cmd.Process.Pid
}

// Broker is a running single-node Kafka cluster (one JVM in KRaft combined
// mode: broker and controller). Its methods are safe for concurrent use.
type Broker struct {
	opts      Options
	java      string
	libs      string
	dir       string
	ownDir    bool
	logger    *slog.Logger
	clusterID string

	mu             sync.Mutex
	brokerPort     int
	controllerPort int
	proc           *process
	closed         bool
	startup        time.Duration
	format         time.Duration
	dumping        string // class archive the running JVM writes at exit, if any
}

// process is one JVM run.
type process struct {
	cmd  *exec.Cmd
	out  *os.File
	done chan struct{} // closed when the JVM has exited; err is set then
	err  error
}

const (
	listenHost   = "127.0.0.1"
	bindAttempts = 3
)

// Start resolves the jars if needed (see Prepare), formats storage on first
// use, launches the JVM with free loopback ports for the broker and
// controller listeners and returns once a Kafka client gets metadata from it.
// A failed start leaves nothing running; its error ends with the tail of the
// broker's log.
func Start(ctx context.Context, opts Options) (*Broker, error) {
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 30 * time.Second
	}
	if opts.MaxHeap == "" {
		opts.MaxHeap = "512m"
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "kafka-broker", "version", opts.Version)

	java, err := javaPath()
	if err != nil {
		return nil, err
	}
	libs, err := Prepare(ctx, opts.Version, opts.CacheDir)
	if err != nil {
		return nil, err
	}

	b := &Broker{opts: opts, java: java, libs: libs, logger: logger}
	if opts.Dir != "" {
		b.dir, err = filepath.Abs(opts.Dir)
		if err == nil {
			err = os.MkdirAll(b.dir, 0o755)
		}
	} else {
		b.dir, err = os.MkdirTemp("", "alertsync-kafka-*")
		b.ownDir = true
	}
	if err != nil {
		return nil, fmt.Errorf("creating broker directory: %w", err)
	}
	for _, sub := range []string{"data", "logs"} {
		if err := os.MkdirAll(filepath.Join(b.dir, sub), 0o755); err != nil {
			b.cleanup()
			return nil, fmt.Errorf("creating broker directory: %w", err)
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	var lastErr error
	for attempt := 1; attempt <= bindAttempts; attempt++ {
		if b.brokerPort, b.controllerPort, err = freePorts(); err != nil {
			b.cleanup()
			return nil, err
		}
		if err := b.writeConfig(); err != nil {
			b.cleanup()
			return nil, err
		}
		if err := b.formatStorage(ctx); err != nil {
			b.cleanup()
			return nil, err
		}
		lastErr = b.launch(ctx)
		if lastErr == nil {
			return b, nil
		}
		if !errors.Is(lastErr, errPortTaken) {
			break
		}
		logger.Warn("port taken between choosing and binding, retrying on new ports", "attempt", attempt)
	}
	b.cleanup()
	return nil, lastErr
}

// Addr is the broker's bootstrap address, host:port on the loopback
// interface. It stays the same across Restart.
func (b *Broker) Addr() string { return b.addrLocked() }

// Dir is the directory holding server.properties, data/ and logs/.
func (b *Broker) Dir() string { return b.dir }

// LogFile is the broker's log4j log.
func (b *Broker) LogFile() string { return filepath.Join(b.dir, "logs", "server.log") }

// StartupTime is how long the last (re)start took from launching the JVM to
// the first successful metadata request.
func (b *Broker) StartupTime() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.startup
}

// FormatTime is how long formatting the storage took (0 when the storage in
// Options.Dir was already formatted).
func (b *Broker) FormatTime() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.format
}

// Stop shuts the broker down (SIGTERM, then SIGKILL after
// Options.StopTimeout) and removes its directory unless Options.Dir was set.
// It is final: Restart fails after it. Stop after Kill only cleans up.
func (b *Broker) Stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.terminate()
	b.cleanup()
	return err
}

// Kill ends the JVM with SIGKILL, as a crash would, and waits for it to
// exit. Storage is kept: Restart resumes from it, and Stop cleans up.
func (b *Broker) Kill() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.proc
	if p == nil || p.exited() {
		return nil
	}
	if err := signalGroup(p, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing broker: %w", err)
	}
	<-p.done
	b.keepArchive()
	b.logger.Info("broker killed", "addr", b.addrLocked())
	return nil
}

// Restart stops the broker gracefully if it is running (after Kill it is
// not) and starts it again with the same ports and storage, returning once
// it serves metadata.
func (b *Broker) Restart(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("restarting broker: it was stopped")
	}
	if err := b.terminate(); err != nil {
		return err
	}
	// The old sockets may linger briefly; retry the same ports a few times.
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		if err = b.launch(ctx); !errors.Is(err, errPortTaken) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("restarting broker: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
	return err
}

// addrLocked formats the broker address. The ports are fixed once Start
// returns, so callers need b.mu only inside Start.
func (b *Broker) addrLocked() string {
	return net.JoinHostPort(listenHost, strconv.Itoa(b.brokerPort))
}

// errPortTaken marks a start that failed because a listener port was taken.
var errPortTaken = errors.New("listener port already in use")

// launch starts the JVM and waits until it serves metadata. b.mu is held.
func (b *Broker) launch(ctx context.Context) error {
	started := time.Now()
	out, err := os.OpenFile(filepath.Join(b.dir, "logs", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening broker stdout log: %w", err)
	}
	jvm := []string{"-Xms128m", "-Xmx" + b.opts.MaxHeap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError"}
	// Class data sharing roughly halves the JVM's start on two cores: the
	// first run that stops cleanly dumps the classes it loaded, later runs
	// map them (see archivePath).
	b.dumping = ""
	if _, err := os.Stat(b.archivePath()); err == nil {
		jvm = append(jvm, "-XX:SharedArchiveFile="+b.archivePath())
	} else {
		var r [6]byte
		_, _ = rand.Read(r[:])
		b.dumping = fmt.Sprintf("%s.%x.tmp", b.archivePath(), r)
		jvm = append(jvm, "-XX:ArchiveClassesAtExit="+b.dumping)
	}
	jvm = append(jvm, b.opts.JVMOptions...)
	args := append(b.jvmArgs(jvm...), "kafka.Kafka", b.propertiesPath())
	// The JVM lives until Stop or Kill, not until ctx ends.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), b.java, args...)
	cmd.Dir = b.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return fmt.Errorf("starting broker JVM %s: %w", b.java, err)
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = out.Close()
		close(p.done)
	}()
	b.proc = p

	wctx, cancel := context.WithTimeout(ctx, b.opts.StartTimeout)
	defer cancel()
	if err := b.waitReady(wctx, p); err != nil {
		if !p.exited() {
			_ = signalGroup(p, syscall.SIGKILL)
			<-p.done
		}
		logTail := b.logTail()
		if strings.Contains(logTail, "Address already in use") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fmt.Errorf("starting Kafka %s broker on %s: %w\n--- tail of %s ---\n%s",
			b.opts.Version, b.addrLocked(), err, b.LogFile(), logTail)
	}
	b.startup = time.Since(started)
	b.logger.Info("broker ready", "addr", b.addrLocked(), "startup", b.startup.Round(time.Millisecond), "dir", b.dir)
	return nil
}

// waitReady polls metadata until the broker lists itself, the JVM exits or
// ctx ends.
func (b *Broker) waitReady(ctx context.Context, p *process) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.addrLocked()),
		kgo.DialTimeout(time.Second),
		kgo.RetryTimeout(time.Second),
		kgo.WithLogger(nil),
	)
	if err != nil {
		return fmt.Errorf("creating readiness client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := adm.Metadata(rctx)
		cancel()
		if err == nil && len(m.Brokers) > 0 {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-p.done:
			return fmt.Errorf("broker JVM exited before it was ready: %w", p.err)
		case <-ctx.Done():
			if last == nil {
				return fmt.Errorf("broker not ready: %w", ctx.Err())
			}
			return fmt.Errorf("broker not ready (last metadata error: %w): %w", last, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// terminate stops the running JVM, if any: SIGTERM, then SIGKILL after
// StopTimeout. b.mu is held.
func (b *Broker) terminate() error {
	p := b.proc
	if p == nil || p.exited() {
		return nil
	}
	if err := signalGroup(p, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping broker: %w", err)
	}
	select {
	case <-p.done:
		b.logger.Info("broker stopped", "addr", b.addrLocked())
		b.keepArchive()
		return nil
	case <-time.After(b.opts.StopTimeout):
	}
	b.logger.Warn("broker did not stop in time, killing it", "timeout", b.opts.StopTimeout)
	if err := signalGroup(p, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing broker after %s: %w", b.opts.StopTimeout, err)
	}
	<-p.done
	b.keepArchive()
	return nil
}

// archivePath is the JVM class archive shared by every broker of this
// Kafka version and this Java runtime: it lives beside the jars it was made
// from (Prepare removes archives when it resolves the jars again) and its
// name identifies the java binary, since an archive only fits the JVM that
// wrote it.
func (b *Broker) archivePath() string {
	id := b.java
	if real, err := filepath.EvalSymlinks(b.java); err == nil {
		id = real
	}
	if fi, err := os.Stat(id); err == nil {
		id = fmt.Sprintf("%s|%d|%d", id, fi.Size(), fi.ModTime().UnixNano())
	}
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(filepath.Dir(b.libs), fmt.Sprintf("kafka-%x.jsa", sum[:6]))
}

// keepArchive moves a class archive that the JVM wrote at exit into place,
// or removes a partial one. The JVM writes it only when it exits normally.
// b.mu is held and the JVM has exited.
func (b *Broker) keepArchive() {
	if b.dumping == "" {
		return
	}
	tmp := b.dumping
	b.dumping = ""
	if fi, err := os.Stat(tmp); err != nil || fi.Size() == 0 || !b.proc.cleanExit() {
		_ = os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, b.archivePath()); err != nil {
		b.logger.Warn("keeping the JVM class archive", "err", err)
		_ = os.Remove(tmp)
		return
	}
	b.logger.Info("JVM class archive written; later starts are faster", "path", b.archivePath())
}

func (b *Broker) cleanup() {
	if b.ownDir {
		if err := os.RemoveAll(b.dir); err != nil {
			b.logger.Warn("removing broker directory", "dir", b.dir, "err", err)
		}
	}
}

// formatStorage runs the StorageTool unless the data directory was
// formatted before (a persistent Options.Dir). b.mu is held.
func (b *Broker) formatStorage(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(b.dir, "data", "meta.properties")); err == nil {
		b.format = 0
		return nil
	}
	if b.clusterID == "" {
		var raw [16]byte
		_, _ = rand.Read(raw[:])
		b.clusterID = base64.RawURLEncoding.EncodeToString(raw[:])
	}
	started := time.Now()
	// A short-lived JVM: C1 only and a small heap start faster.
	args := append(b.jvmArgs("-Xmx256m", "-XX:TieredStopAtLevel=1"),
		// --cluster-id=ID, not "-t ID": a base64url id may start with '-',
		// which the tool's argument parser would take for an option.
		"kafka.tools.StorageTool", "format", "--cluster-id="+b.clusterID, "-c", b.propertiesPath())
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.java, args...)
	cmd.Dir = b.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("formatting broker storage in %s: %w\n%s", b.dir, err, tail(out, 30))
	}
	b.format = time.Since(started)
	b.logger.Info("broker storage formatted", "took", b.format.Round(time.Millisecond))
	return nil
}

func (b *Broker) jvmArgs(extra ...string) []string {
	return append(extra,
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile="+filepath.Join(b.dir, "log4j2.properties"),
		"-Dkafka.logs.dir="+filepath.Join(b.dir, "logs"),
		"-cp", filepath.Join(b.libs, "*"),
	)
}

func (b *Broker) propertiesPath() string { return filepath.Join(b.dir, "server.properties") }

// writeConfig writes server.properties and log4j2.properties. b.mu is held.
func (b *Broker) writeConfig() error {
	props := map[string]string{
		"process.roles":                    "broker,controller",
		"node.id":                          "1",
		"controller.quorum.voters":         fmt.Sprintf("1@%s:%d", listenHost, b.controllerPort),
		"listeners":                        fmt.Sprintf("PLAINTEXT://%s:%d,CONTROLLER://%s:%d", listenHost, b.brokerPort, listenHost, b.controllerPort),
		"advertised.listeners":             fmt.Sprintf("PLAINTEXT://%s:%d", listenHost, b.brokerPort),
		"listener.security.protocol.map":   "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name":       "PLAINTEXT",
		"controller.listener.names":        "CONTROLLER",
		"log.dirs":                         filepath.Join(b.dir, "data"),
		"num.network.threads":              "2",
		"num.io.threads":                   "4",
		"num.partitions":                   "1",
		"default.replication.factor":       "1",
		"min.insync.replicas":              "1",
		"auto.create.topics.enable":        "false",
		"offsets.topic.replication.factor": "1",
		"offsets.topic.num.partitions":     "10",
		"group.initial.rebalance.delay.ms": "0",
		// After Kill the restarted broker cannot register until the
		// controller expires the dead incarnation's session (default 9s).
		"broker.heartbeat.interval.ms": "500",
		"broker.session.timeout.ms":    "4000",
		// One broker: the transaction log cannot have more replicas.
		"transaction.state.log.replication.factor":         "1",
		"transaction.state.log.min.isr":                    "1",
		"transaction.state.log.num.partitions":             "10",
		"share.coordinator.state.topic.replication.factor": "1",
		"share.coordinator.state.topic.min.isr":            "1",
	}
	maps.Copy(props, b.opts.Config)
	var buf bytes.Buffer
	buf.WriteString("# Written by internal/testenv/broker; rewritten on every Start.\n")
	for _, k := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&buf, "%s=%s\n", k, props[k])
	}
	if err := os.WriteFile(b.propertiesPath(), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing server.properties: %w", err)
	}
	log4j := strings.Join([]string{
		"status = warn",
		"shutdownHook = disable",
		"appender.file.type = File",
		"appender.file.name = file",
		"appender.file.fileName = " + b.LogFile(),
		"appender.file.layout.type = PatternLayout",
		"appender.file.layout.pattern = [%d] %p %m (%c)%n",
		"rootLogger.level = INFO",
		"rootLogger.appenderRef.file.ref = file",
		"logger.request.name = kafka.request.logger",
		"logger.request.level = WARN",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(b.dir, "log4j2.properties"), []byte(log4j), 0o644); err != nil {
		return fmt.Errorf("writing log4j2.properties: %w", err)
	}
	return nil
}

// logTail returns the end of the broker log and of the JVM's own output.
func (b *Broker) logTail() string {
	var s strings.Builder
	if out, err := os.ReadFile(b.LogFile()); err == nil {
		// Drop the configuration dump ("\tkey = value" lines) that fills
		// the log at start, so the tail shows what happened.
		var kept [][]byte
		for _, line := range bytes.Split(out, []byte("\n")) {
			if !bytes.HasPrefix(line, []byte("\t")) || !bytes.Contains(line, []byte(" = ")) {
				kept = append(kept, line)
			}
		}
		s.WriteString(tail(bytes.Join(kept, []byte("\n")), 40))
	}
	if out, err := os.ReadFile(filepath.Join(b.dir, "logs", "stdout.log")); err == nil && len(bytes.TrimSpace(out)) > 0 {
		s.WriteString("\n--- JVM output ---\n")
		s.WriteString(tail(out, 20))
	}
	return s.String()
}

// cleanExit reports whether the JVM exited by itself with status 0, or on
// SIGTERM (the JVM then exits with 143).
func (p *process) cleanExit() bool {
	if p == nil || !p.exited() {
		return false
	}
	var ee *exec.ExitError
	return p.err == nil || (errors.As(p.err, &ee) && ee.ExitCode() == 143)
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signalGroup signals the JVM's process group (the JVM runs in its own).
func signalGroup(p *process, sig syscall.Signal) error {
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// freePorts picks two distinct free loopback ports.
func freePorts() (int, int, error) {
	var ports [2]int
	var ls [2]net.Listener
	for i := range ls {
		var lc net.ListenConfig
		l, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(listenHost, "0"))
		if err != nil {
			for _, o := range ls[:i] {
				_ = o.Close()
			}
			return 0, 0, fmt.Errorf("finding a free port: %w", err)
		}
		ls[i] = l
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports[0], ports[1], nil
}

// javaPath finds java in $JAVA_HOME/bin or on PATH.
func javaPath() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		p := filepath.Join(home, "bin", "java")
		if _, err := os.Stat(p); err == nil { //nolint:gosec // JAVA_HOME is the operator's own setting
			return p, nil
		}
	}
	p, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("finding java for the Kafka broker: install a Java 17+ runtime (apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME: %w", err)
	}
	return p, nil
}
