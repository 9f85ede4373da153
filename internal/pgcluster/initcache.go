package pgcluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// initFromCache fills c.data with a copy of a cached initdb result, building
// the cache entry first when missing. Concurrent processes may build the
// same entry; the first rename wins and the others discard theirs.
func (c *Cluster) initFromCache(ctx context.Context) error {
	entry, err := c.cacheEntry()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(entry, "complete")); err != nil {
		if err := c.buildCacheEntry(ctx, entry); err != nil {
			return err
		}
	}
	if err := c.copyTree(filepath.Join(entry, "data"), c.data); err != nil {
		return fmt.Errorf("copying cached initdb result %s: %w", entry, err)
	}
	return nil
}

// cacheEntry names the cache directory for this binary, run-as user and
// initdb arguments.
func (c *Cluster) cacheEntry() (string, error) {
	bin := filepath.Join(c.bin, "postgres")
	fi, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", bin, err)
	}
	h := sha256.New()
	// Writes to a hash never fail.
	_, _ = fmt.Fprintf(h, "%s\n%d\n%d\n%s\n", bin, fi.Size(), fi.ModTime().UnixNano(), c.as.name)
	_, _ = fmt.Fprintln(h, strings.Join(c.initdbArgs(""), " "))
	_, _ = h.Write([]byte(hbaConf))
	base := c.opts.TempDir
	if base == "" {
		base = os.TempDir()
	}
	return filepath.Join(base, "alertsync-pginit-"+hex.EncodeToString(h.Sum(nil))[:16]), nil
}

func (c *Cluster) buildCacheEntry(ctx context.Context, entry string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(entry), filepath.Base(entry)+".tmp-")
	if err != nil {
		return fmt.Errorf("creating initdb cache directory: %w", err)
	}
	// Gone after a successful rename; after a failure, removal is best effort.
	defer func() { _ = os.RemoveAll(tmp) }()
	data := filepath.Join(tmp, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return fmt.Errorf("creating initdb cache directory: %w", err)
	}
	for _, d := range []string{tmp, data} {
		if err := c.as.chown(d); err != nil {
			return err
		}
	}
	if err := c.runInitdb(ctx, data); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o644); err != nil {
		return fmt.Errorf("marking initdb cache entry complete: %w", err)
	}
	if err := os.Rename(tmp, entry); err != nil {
		if _, statErr := os.Stat(filepath.Join(entry, "complete")); statErr == nil {
			return nil // another process built it first
		}
		return fmt.Errorf("installing initdb cache entry %s: %w", entry, err)
	}
	return nil
}

// copyTree copies the regular files and directories under src into dst
// (which exists), keeping permission bits and handing them to the run-as user.
func (c *Cluster) copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if rel != "." {
				if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
					return err
				}
			}
		case d.Type().IsRegular():
			if err := copyFile(path, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected file type %s at %s", d.Type(), path)
		}
		return c.as.chown(target)
	})
}

func copyFile(src, dst string, perm fs.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read only
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}
