package mtasts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// fileVersion is the version of the cache file's format.
const fileVersion = 1

// cacheFile is the cache file's content.
type cacheFile struct {
	Version  int          `json:"version"`
	Policies []filePolicy `json:"policies"`
}

// filePolicy is a policy in the cache file.
type filePolicy struct {
	Domain  string    `json:"domain"`
	ID      string    `json:"id"`
	Mode    Mode      `json:"mode"`
	MX      []string  `json:"mx"`
	MaxAge  int64     `json:"max_age"` // seconds
	Fetched time.Time `json:"fetched"`
}

// load reads the policies of c.file that have not expired and verify,
// most recently used first, up to c.max. A file that does not exist is
// none; one that is not JSON of this format is logged and left, to be
// replaced at the next save.
func (c *Cache) load() error {
	b, err := os.ReadFile(c.file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mtasts: reading the policies: %w", err)
	}
	var f cacheFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != fileVersion {
		c.log.Error("MTA-STS policies file not read: it will be replaced", "file", c.file, "err", err, "version", f.Version)
		return nil
	}
	now := c.now()
	dropped := 0
	for _, fp := range f.Policies {
		p, ok := fp.policy()
		if ok && p.Fetched.After(now) {
			p.Fetched = now // the clock went back: do not keep it longer
		}
		if !ok || !now.Before(p.Expires()) || c.entries[fp.Domain] != nil || c.lru.Len() == c.max {
			dropped++
			continue
		}
		c.entries[fp.Domain] = c.lru.PushBack(&entry{domain: fp.Domain, policy: p})
	}
	c.log.Debug("MTA-STS policies read", "file", c.file, "policies", c.lru.Len(), "dropped", dropped)
	return nil
}

// policy returns the policy fp holds, ok only if it is one Parse and a
// Cache could have made.
func (fp *filePolicy) policy() (*Policy, bool) {
	if d, err := canonical(fp.Domain); err != nil || d != fp.Domain || !validID(fp.ID) {
		return nil, false
	}
	if fp.Mode != Enforce && fp.Mode != Testing && fp.Mode != None {
		return nil, false
	}
	if len(fp.MX) == 0 && fp.Mode != None {
		return nil, false
	}
	for _, mx := range fp.MX {
		if !validPattern(mx) {
			return nil, false
		}
	}
	maxAge := time.Duration(fp.MaxAge) * time.Second
	if fp.MaxAge < 0 || maxAge > MaxMaxAge {
		return nil, false
	}
	return &Policy{Mode: fp.Mode, MX: fp.MX, MaxAge: maxAge, ID: fp.ID, Fetched: fp.Fetched}, true
}

// save writes the policies held to c.file, unless it holds them
// already; a failure is logged (the policies are still held in memory).
func (c *Cache) save() {
	if c.file == "" {
		return
	}
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	version := c.version
	if version == c.saved {
		c.mu.Unlock()
		return
	}
	f := cacheFile{Version: fileVersion, Policies: make([]filePolicy, 0, c.lru.Len())}
	now := c.now()
	for el := c.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*entry)
		if p := e.policy; p != nil && now.Before(p.Expires()) {
			f.Policies = append(f.Policies, filePolicy{Domain: e.domain, ID: p.ID, Mode: p.Mode, MX: p.MX,
				MaxAge: int64(p.MaxAge / time.Second), Fetched: p.Fetched})
		}
	}
	c.mu.Unlock()
	b, err := json.Marshal(&f)
	if err == nil {
		err = writeAtomic(c.file, b)
	}
	if err != nil {
		c.log.Error("MTA-STS policies not saved", "file", c.file, "err", err)
		return
	}
	c.saved = version
}

// writeAtomic replaces name with b, so that a crash leaves the old file
// or the new one: b is written to a temporary file in the same
// directory, synced, and renamed over name, and the directory synced.
// The file has mode 0600.
func writeAtomic(name string, b []byte) (err error) {
	dir := filepath.Dir(name)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = tmp.Write(b); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), name); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
