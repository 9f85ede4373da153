package repocheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const root = "../.."

type composeFile struct {
	Name     string `yaml:"name"`
	Services map[string]struct {
		Image     string         `yaml:"image"`
		Build     any            `yaml:"build"`
		Command   []string       `yaml:"command"`
		Env       map[string]any `yaml:"environment"`
		Volumes   []string       `yaml:"volumes"`
		Secrets   []string       `yaml:"secrets"`
		DependsOn any            `yaml:"depends_on"`
		Ports     []string       `yaml:"ports"`
		Restart   string         `yaml:"restart"`
		StopGrace string         `yaml:"stop_grace_period"`
		Health    map[string]any `yaml:"healthcheck"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestComposeFile parses docker-compose.yml strictly and checks that what it
// references exists: mounted repository files, secret files, named volumes,
// declared secrets, services named in depends_on, and the alertsync
// subcommands and ALERTSYNC_* variables it uses.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var c composeFile
	require.NoError(t, dec.Decode(&c))
	require.NotEmpty(t, c.Services)

	for name, s := range c.Services {
		require.True(t, s.Image != "" || s.Build != nil, "service %s has neither image nor build", name)
		if s.Build != nil {
			require.FileExists(t, filepath.Join(root, "Dockerfile"))
		}
		for _, v := range s.Volumes {
			src := strings.SplitN(v, ":", 2)[0]
			if strings.HasPrefix(src, "./") {
				require.FileExists(t, filepath.Join(root, src), "service %s mounts a missing file", name)
			} else {
				require.Contains(t, c.Volumes, src, "service %s uses an undeclared volume", name)
			}
		}
		for _, sec := range s.Secrets {
			require.Contains(t, c.Secrets, sec, "service %s uses an undeclared secret", name)
		}
		deps := map[string]bool{}
		switch d := s.DependsOn.(type) {
		case []any:
			for _, x := range d {
				deps[x.(string)] = true
			}
		case map[string]any:
			for k := range d {
				deps[k] = true
			}
		}
		for d := range deps {
			require.Contains(t, c.Services, d, "service %s depends on a missing service", name)
		}
		for k := range s.Env {
			if strings.HasPrefix(k, "ALERTSYNC_") {
				docs, err := os.ReadFile(filepath.Join(root, "docs/configuration.md"))
				require.NoError(t, err)
				require.Contains(t, string(docs), "`"+k+"`", "service %s sets %s, which is no documented key", name, k)
			}
		}
	}
	for name, s := range c.Secrets {
		require.FileExists(t, filepath.Join(root, s.File), "secret %s", name)
	}

	// The whole pipeline runs, each component once, with its own host port
	// for the admin server, and every secret file a service names is one
	// it mounts.
	commands := map[string]string{}
	hostPorts := map[string]string{}
	for name, s := range c.Services {
		if s.Build != nil {
			cmd := strings.Join(s.Command, " ")
			require.NotContains(t, commands, cmd, "services %s and %s both run alertsync %s", name, commands[cmd], cmd)
			commands[cmd] = name
			if !strings.HasPrefix(cmd, "migrate ") {
				// Compose's default grace is 10s: it would kill a component
				// still draining within shutdown.timeout.
				shutdown := 30 * time.Second
				if v, ok := s.Env["ALERTSYNC_SHUTDOWN_TIMEOUT"].(string); ok {
					var err error
					shutdown, err = time.ParseDuration(v)
					require.NoError(t, err)
				}
				grace, err := time.ParseDuration(s.StopGrace)
				require.NoError(t, err, "service %s: stop_grace_period", name)
				require.GreaterOrEqual(t, grace, shutdown+10*time.Second, "service %s: stop_grace_period must outlast shutdown.timeout", name)
			}
		}
		for _, p := range s.Ports {
			host := p[:strings.LastIndex(p, ":")]
			require.NotContains(t, hostPorts, host, "services %s and %s publish the same host port", name, hostPorts[host])
			hostPorts[host] = name
		}
		for k, v := range s.Env {
			if !strings.HasSuffix(k, "_FILE") {
				continue
			}
			path, _ := v.(string)
			sec, ok := strings.CutPrefix(path, "/run/secrets/")
			require.True(t, ok, "service %s: %s=%v is not a compose secret", name, k, v)
			require.Contains(t, s.Secrets, sec, "service %s reads secret %s without mounting it", name, sec)
		}
	}
	for _, want := range []string{"capture dps", "capture nomis", "transform", "apply dps", "apply nomis", "migrate dps", "migrate nomis", "reconcile --every 1h"} {
		require.Contains(t, commands, want, "no service runs alertsync %s", want)
	}
}

func TestReadmeFirstScreen(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	first := strings.Join(strings.SplitN(string(b), "\n", 60)[:50], "\n")
	require.Contains(t, first, "make demo")
	require.Contains(t, first, "make test")
}

// TestChangelog keeps CHANGELOG.md in keep-a-changelog form.
func TestChangelog(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(root, "CHANGELOG.md"))
	require.NoError(t, err)
	s := string(b)
	require.Contains(t, s, "## [Unreleased]")
	heading := regexp.MustCompile(`(?m)^### (.+)$`)
	allowed := map[string]bool{"Added": true, "Changed": true, "Deprecated": true, "Removed": true, "Fixed": true, "Security": true}
	for _, m := range heading.FindAllStringSubmatch(s, -1) {
		require.True(t, allowed[m[1]], "CHANGELOG section %q is not a keep-a-changelog kind", m[1])
	}
}

func TestCIRunsMakeTest(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(root, ".ci/run"))
	require.NoError(t, err)
	require.Regexp(t, `(?m)^make test\b`, string(b))
}
