package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type testConfig struct {
	Kafka struct {
		Brokers []string `key:"brokers" default:"localhost:9092" doc:"Brokers."`
		SASL    struct {
			Password Secret `key:"password" doc:"SASL password."`
		} `key:"sasl"`
	} `key:"kafka"`
	NOMIS    NOMIS    `key:"nomis"`
	Admin    Admin    `key:"admin"`
	Shutdown Shutdown `key:"shutdown"`
	Workers  int      `key:"workers" default:"4" doc:"Workers."`
	Token    Secret   `key:"token" required:"true" doc:"A required secret."`
	Verbose  bool     `key:"verbose" doc:"Verbose."`
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "c.yaml", `
kafka:
  brokers: [a:1, b:2]
nomis:
  dialect: oracle
workers: 8
shutdown:
  timeout: 5s
`)
	tests := []struct {
		name        string
		env         map[string]string
		flags       map[string]string
		wantBrokers []string
		wantWorkers int
		wantDialect string
	}{
		{"file over default", nil, nil, []string{"a:1", "b:2"}, 8, "oracle"},
		{"env over file", map[string]string{"ALERTSYNC_KAFKA_BROKERS": "e:1,e:2", "ALERTSYNC_WORKERS": "9"}, nil, []string{"e:1", "e:2"}, 9, "oracle"},
		{"flag over env", map[string]string{"ALERTSYNC_WORKERS": "9"}, map[string]string{"workers": "10", "nomis.dialect": "postgres"}, []string{"a:1", "b:2"}, 10, "postgres"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c testConfig
			require.NoError(t, Load(&c, Sources{File: file, LookupEnv: envOf(tc.env), Flags: tc.flags}))
			require.Equal(t, tc.wantBrokers, c.Kafka.Brokers)
			require.Equal(t, tc.wantWorkers, c.Workers)
			require.Equal(t, tc.wantDialect, c.NOMIS.Dialect)
			require.Equal(t, 5*time.Second, c.Shutdown.Timeout)
			require.Equal(t, "127.0.0.1:9464", c.Admin.Listen, "default kept")
		})
	}
}

func TestDefaultsOnly(t *testing.T) {
	t.Parallel()
	var c testConfig
	require.NoError(t, Load(&c, Sources{LookupEnv: envOf(nil)}))
	require.Equal(t, []string{"localhost:9092"}, c.Kafka.Brokers)
	require.Equal(t, 30*time.Second, c.Shutdown.Timeout)
	require.Equal(t, "postgres", c.NOMIS.Dialect)
}

// TestFileContent: content read by the caller is loaded instead of the
// file's, and errors still name the file.
func TestFileContent(t *testing.T) {
	t.Parallel()
	f := writeFile(t, "c.yaml", "workers: 2\n")
	var c testConfig
	require.NoError(t, Load(&c, Sources{File: f, FileContent: []byte("workers: 7\n"), LookupEnv: envOf(nil)}))
	require.Equal(t, 7, c.Workers)
	require.NoError(t, Load(&c, Sources{File: f, FileContent: []byte{}, LookupEnv: envOf(nil)}))
	require.Equal(t, 4, c.Workers, "empty content: the defaults, not the file")
	err := Load(&c, Sources{File: f, FileContent: []byte("workers: [\n"), LookupEnv: envOf(nil)})
	require.ErrorContains(t, err, f)
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	secretFile := writeFile(t, "pw", "s3cret-from-file\n")

	t.Run("env", func(t *testing.T) {
		t.Parallel()
		var c testConfig
		require.NoError(t, Load(&c, Sources{LookupEnv: envOf(map[string]string{"ALERTSYNC_KAFKA_SASL_PASSWORD": "hunter2"})}))
		require.Equal(t, "hunter2", c.Kafka.SASL.Password.Reveal())
	})
	t.Run("env file", func(t *testing.T) {
		t.Parallel()
		var c testConfig
		require.NoError(t, Load(&c, Sources{LookupEnv: envOf(map[string]string{"ALERTSYNC_TOKEN_FILE": secretFile})}))
		require.Equal(t, "s3cret-from-file", c.Token.Reveal(), "trailing newline trimmed")
	})
	t.Run("yaml _file key", func(t *testing.T) {
		t.Parallel()
		f := writeFile(t, "c.yaml", "nomis:\n  password_file: "+secretFile+"\n")
		var c testConfig
		require.NoError(t, Load(&c, Sources{File: f, LookupEnv: envOf(nil)}))
		require.Equal(t, "s3cret-from-file", c.NOMIS.Password.Reveal())
	})
	t.Run("inline yaml refused", func(t *testing.T) {
		t.Parallel()
		f := writeFile(t, "c.yaml", "nomis:\n  password: plain-text-pw\n")
		var c testConfig
		err := Load(&c, Sources{File: f, LookupEnv: envOf(nil)})
		require.Error(t, err)
		require.Contains(t, err.Error(), "nomis.password")
		require.Contains(t, err.Error(), "ALERTSYNC_NOMIS_PASSWORD")
		require.NotContains(t, err.Error(), "plain-text-pw")
	})
	t.Run("no flag", func(t *testing.T) {
		t.Parallel()
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		FlagValues(fs, &testConfig{})
		require.Nil(t, fs.Lookup("token"))
		require.Nil(t, fs.Lookup("kafka.sasl.password"))
		require.Error(t, fs.Parse([]string{"--token=abc"}))
	})
	t.Run("missing file names key not content", func(t *testing.T) {
		t.Parallel()
		var c testConfig
		err := Load(&c, Sources{LookupEnv: envOf(map[string]string{"ALERTSYNC_TOKEN_FILE": "/nonexistent/pw"})})
		var ke *KeyError
		require.ErrorAs(t, err, &ke)
		require.Equal(t, "token", ke.Key)
	})
	t.Run("never printed", func(t *testing.T) {
		t.Parallel()
		s := NewSecret("hunter2")
		var buf strings.Builder
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "pw", s)
		for _, out := range []string{s.String(), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), buf.String(), strings.Join(Effective(&testConfig{Token: s}), "\n")} {
			require.NotContains(t, out, "hunter2")
		}
	})
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		flags   map[string]string
		wantKey string
	}{
		{"unknown yaml key", "kafka:\n  brokerz: x\n", nil, nil, "kafka.brokerz"},
		{"unknown section", "kafak:\n  brokers: x\n", nil, nil, "kafak"},
		{"bad int env", "", map[string]string{"ALERTSYNC_WORKERS": "many"}, nil, "workers"},
		{"bad duration yaml", "shutdown:\n  timeout: forever\n", nil, nil, "shutdown.timeout"},
		{"bad bool flag", "", nil, map[string]string{"verbose": "perhaps"}, "verbose"},
		{"mapping for value", "workers:\n  a: 1\n", nil, nil, "workers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := Sources{LookupEnv: envOf(tc.env), Flags: tc.flags}
			if tc.yaml != "" {
				src.File = writeFile(t, "c.yaml", tc.yaml)
			}
			err := Load(&testConfig{}, src)
			var ke *KeyError
			require.ErrorAs(t, err, &ke, "got %v", err)
			require.Equal(t, tc.wantKey, ke.Key)
		})
	}
	t.Run("bad yaml syntax", func(t *testing.T) {
		t.Parallel()
		err := Load(&testConfig{}, Sources{File: writeFile(t, "c.yaml", "kafka: [\n"), LookupEnv: envOf(nil)})
		require.ErrorContains(t, err, "parsing config file")
	})
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		err := Load(&testConfig{}, Sources{File: "/nonexistent.yaml", LookupEnv: envOf(nil)})
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}

func TestValidate(t *testing.T) {
	t.Parallel()
	valid := func() *testConfig {
		var c testConfig
		require.NoError(t, Load(&c, Sources{LookupEnv: envOf(map[string]string{"ALERTSYNC_TOKEN": "x"})}))
		return &c
	}
	require.NoError(t, Validate(valid()))

	tests := []struct {
		name    string
		mutate  func(*testConfig)
		wantKey string
	}{
		{"required secret", func(c *testConfig) { c.Token = Secret{} }, "token"},
		{"enum", func(c *testConfig) { c.NOMIS.Dialect = "mysql" }, "nomis.dialect"},
		{"section validate", func(c *testConfig) { c.Admin.Listen = "nonsense" }, "admin.listen"},
		{"section validate nested", func(c *testConfig) { c.Shutdown.Timeout = 0 }, "shutdown.timeout"},
		{"dsn required", func(c *testConfig) { c.NOMIS.DSN = " " }, "nomis.dsn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tc.mutate(c)
			err := Validate(c)
			require.Error(t, err)
			var ke *KeyError
			require.ErrorAs(t, err, &ke)
			require.Equal(t, tc.wantKey, ke.Key, "error: %v", err)
		})
	}
	t.Run("several errors all reported", func(t *testing.T) {
		t.Parallel()
		c := valid()
		c.NOMIS.Dialect = "x"
		c.Admin.Listen = "y"
		err := Validate(c)
		require.ErrorContains(t, err, "nomis.dialect")
		require.ErrorContains(t, err, "admin.listen")
	})
}

func TestRedactDSN(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://u:pw@h:5432/db?sslmode=disable", "postgres://u:[redacted]@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"host=h user=u password=pw dbname=d", "host=h user=u password=[redacted] dbname=d"},
		{"host=h password='p w' dbname=d", "host=h password=[redacted] dbname=d"},
		{"postgres://h/db?password=pw&sslmode=disable", "postgres://h/db?password=%5Bredacted%5D&sslmode=disable"},
		{`user/pw@//db:1521/XE`, `user/[redacted]@//db:1521/XE`},
		{`user="u" password="pw" connectString="db:1521/XE"`, `user="u" password=[redacted] connectString="db:1521/XE"`},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, RedactDSN(tc.in), tc.in)
	}
}

func TestFlagValues(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	got := FlagValues(fs, &testConfig{})
	require.NoError(t, fs.Parse([]string{"--kafka.brokers=x:1,y:2", "--workers", "3"}))
	var c testConfig
	require.NoError(t, Load(&c, Sources{Flags: got, LookupEnv: envOf(nil)}))
	require.Equal(t, []string{"x:1", "y:2"}, c.Kafka.Brokers)
	require.Equal(t, 3, c.Workers)
	require.Error(t, fs.Parse([]string{"--nope"}))
}

func TestInlinedSection(t *testing.T) {
	t.Parallel()
	type common struct {
		Admin Admin `key:"admin"`
		Log   Log   `key:"log"`
	}
	type component struct {
		Common common `key:""`
		Slot   string `key:"slot" default:"s1" doc:"Slot."`
	}
	var c component
	require.NoError(t, Load(&c, Sources{LookupEnv: envOf(map[string]string{"ALERTSYNC_ADMIN_LISTEN": "bad"})}))
	var keys []string
	for _, f := range Fields(&c) {
		keys = append(keys, f.Key)
	}
	require.Equal(t, []string{"admin.listen", "admin.pprof", "log.level", "log.format", "slot"}, keys)
	var ke *KeyError
	require.ErrorAs(t, Validate(&c), &ke)
	require.Equal(t, "admin.listen", ke.Key)
}

// topChecked is a config whose top level has checks of its own.
type topChecked struct {
	Admin Admin `key:"admin"`
	Count int   `key:"count" default:"1" doc:"A count."`
}

func (c *topChecked) Validate() error {
	if c.Count < 1 {
		return &KeyError{Key: "count", Err: errors.New("must be positive")}
	}
	return nil
}

// TestValidateCallsTopLevel: Validate runs the Validate method of the
// config itself too, not only those of its sections, once.
func TestValidateCallsTopLevel(t *testing.T) {
	t.Parallel()
	c := &topChecked{Admin: Admin{Listen: "127.0.0.1:0"}, Count: 0}
	err := Validate(c)
	require.ErrorContains(t, err, "count: must be positive")
	require.Equal(t, 1, strings.Count(err.Error(), "must be positive"))
	c.Count = 2
	require.NoError(t, Validate(c))
}
