package pgcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// runAs describes the OS identity the PostgreSQL programs run under. A nil
// cred means the current identity.
type runAs struct {
	cred *syscall.Credential
	name string
}

// newRunAs returns the identity to run the server as: osUser when the current
// process is root, the current user otherwise.
func newRunAs(osUser string) (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{}, nil
	}
	u, err := user.Lookup(osUser)
	if err != nil {
		return runAs{}, fmt.Errorf("looking up OS user %q to run PostgreSQL as (initdb refuses root; "+
			"`apt-get install postgresql-15` creates it): %w", osUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return runAs{}, fmt.Errorf("parsing uid %q of OS user %q: %w", u.Uid, osUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return runAs{}, fmt.Errorf("parsing gid %q of OS user %q: %w", u.Gid, osUser, err)
	}
	return runAs{
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
		name: osUser,
	}, nil
}

// command builds a command for a PostgreSQL program that ends with ctx, run
// as r in dir.
func (r runAs) command(ctx context.Context, dir, path string, args ...string) *exec.Cmd {
	return r.prepare(exec.CommandContext(ctx, path, args...), dir)
}

// prepare sets cmd to run as r in dir with the caller's environment minus
// PG* variables (which would override our explicit flags).
func (r runAs) prepare(cmd *exec.Cmd, dir string) *exec.Cmd {
	cmd.Dir = dir
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	return cmd
}

func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// chown hands path to the run-as user; a no-op when not running as root.
func (r runAs) chown(path string) error {
	if r.cred == nil {
		return nil
	}
	if err := os.Lchown(path, int(r.cred.Uid), int(r.cred.Gid)); err != nil {
		return fmt.Errorf("handing %s to OS user %q: %w", path, r.name, err)
	}
	return nil
}

// checkTraversable reports a clear error when the run-as user cannot reach
// dir because a parent directory denies it search permission (typically a
// directory under /root, or t.TempDir()). It reads permission bits only.
func (r runAs) checkTraversable(dir string) error {
	if r.cred == nil {
		return nil
	}
	uid, gid := r.cred.Uid, r.cred.Gid
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("checking access to %s: %w", p, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			mode := fi.Mode().Perm()
			var allowed bool
			switch {
			case st.Uid == uid:
				allowed = mode&0o100 != 0
			case st.Gid == gid:
				allowed = mode&0o010 != 0
			default:
				allowed = mode&0o001 != 0
			}
			if !allowed {
				return fmt.Errorf("cluster directory %s is not reachable by OS user %q: %s has mode %s; "+
					"choose a directory under a world-searchable parent (e.g. /var/lib or /tmp) or chmod o+x %s",
					dir, r.name, p, mode, p)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
