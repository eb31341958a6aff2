package mailauth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/mailsys/mailsys/internal/fsutil"
)

// tmpPrefix starts the names of the files being written: what a crash
// leaves of them is removed when the keys are loaded again.
const tmpPrefix = ".tmp-"

// domainKeys are the keys of one domain, as its directory holds them.
type domainKeys struct {
	// mu is held while the keys are read, made or removed: so a domain's
	// first keys are made once when many messages from it are signed at
	// once.
	mu sync.Mutex
	// pairs are the complete pairs, oldest first: the last one signs.
	pairs []*keyPair
	// taken names every pair with a file, complete or not (a crash
	// between the two renames leaves half of one), so that no new pair
	// is given its name.
	taken []pairName
}

// signing returns the pair that signs, or nil.
func (d *domainKeys) signing() *keyPair {
	if len(d.pairs) == 0 {
		return nil
	}
	return d.pairs[len(d.pairs)-1]
}

// keyStore reads and writes the keys in dir: one directory per domain,
// one file per selector (see the package documentation).
type keyStore struct {
	dir string
	log *slog.Logger
}

// load reads the keys of every domain in the store.
func (ks keyStore) load() (map[string]*domainKeys, error) {
	entries, err := os.ReadDir(ks.dir)
	if err != nil {
		return nil, fmt.Errorf("mailauth: key directory: %w", err)
	}
	domains := map[string]*domainKeys{}
	var errs []error
	for _, e := range entries {
		d, ok := normDomain(e.Name())
		if !e.IsDir() || !ok || d != e.Name() {
			ks.log.Warn("DKIM key directory: ignoring an entry that is not a domain's directory", "path", filepath.Join(ks.dir, e.Name()))
			continue
		}
		dk, err := ks.loadDomain(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		domains[d] = dk
	}
	return domains, errors.Join(errs...)
}

// loadDomain reads the keys of domain.
func (ks keyStore) loadDomain(domain string) (*domainKeys, error) {
	dir := filepath.Join(ks.dir, domain)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("mailauth: keys of %s: %w", domain, err)
	}
	type half struct {
		ed  ed25519.PrivateKey
		rsa *rsa.PrivateKey
	}
	halves := map[pairName]*half{}
	var errs []error
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.Remove(path); err != nil {
				errs = append(errs, fmt.Errorf("mailauth: removing %s: %w", path, err))
			}
			continue
		}
		sel, isPEM := strings.CutSuffix(e.Name(), ".pem")
		name, isEd, ok := parseSelector(sel)
		if !isPEM || !ok || !e.Type().IsRegular() {
			ks.log.Warn("DKIM key directory: ignoring a file that is not a key", "path", path)
			continue
		}
		key, err := readKey(path, isEd)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h := halves[name]
		if h == nil {
			h = &half{}
			halves[name] = h
		}
		switch k := key.(type) {
		case ed25519.PrivateKey:
			h.ed = k
		case *rsa.PrivateKey:
			h.rsa = k
		}
	}
	dk := &domainKeys{}
	for name, h := range halves {
		dk.taken = append(dk.taken, name)
		if h.ed == nil || h.rsa == nil {
			ks.log.Warn("DKIM key directory: ignoring half a key pair (a crash while it was made?)", "domain", domain, "selector", name.base())
			continue
		}
		dk.pairs = append(dk.pairs, &keyPair{name: name, ed: h.ed, rsa: h.rsa})
	}
	slices.SortFunc(dk.pairs, func(a, b *keyPair) int { return a.name.compare(b.name) })
	return dk, errors.Join(errs...)
}

// readKey reads a PKCS#8 PEM file holding an ed25519 key (ed) or an RSA
// one.
func readKey(path string, ed bool) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mailauth: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("mailauth: %s: %w: no PKCS#8 PEM block", path, ErrBadKey)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("mailauth: %s: %w: %w", path, ErrBadKey, err)
	}
	switch key.(type) {
	case ed25519.PrivateKey:
		if ed {
			return key, nil
		}
	case *rsa.PrivateKey:
		if !ed {
			return key, nil
		}
	}
	return nil, fmt.Errorf("mailauth: %s: %w: a %T under a selector for the other algorithm", path, ErrBadKey, key)
}

// writePair stores a new pair of domain's keys: each written to a
// temporary file and synced, then both renamed and the directory synced,
// so that a pair is on disk whole, or in half (which load ignores), or
// not at all.
func (ks keyStore) writePair(domain string, p *keyPair) error {
	dir := filepath.Join(ks.dir, domain)
	if err := mkdirSynced(dir); err != nil {
		return err
	}
	var tmps []string
	defer func() {
		for _, t := range tmps {
			os.Remove(t) // those not renamed yet, on failure
		}
	}()
	keys := p.keys()
	for _, k := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			return fmt.Errorf("mailauth: key %s: %w", k.selector, err)
		}
		tmp, err := writeSynced(dir, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		if err != nil {
			return err
		}
		tmps = append(tmps, tmp)
	}
	for _, k := range keys {
		if err := os.Rename(tmps[0], filepath.Join(dir, k.selector+".pem")); err != nil {
			return fmt.Errorf("mailauth: %w", err)
		}
		tmps = tmps[1:] // renamed: no longer to remove
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return fmt.Errorf("mailauth: %w", err)
	}
	return nil
}

// removePair removes the files of domain's pair n, RSA key first, and
// syncs the directory.
func (ks keyStore) removePair(domain string, n pairName) error {
	dir := filepath.Join(ks.dir, domain)
	for _, sel := range []string{n.rsa(), n.ed()} {
		if err := os.Remove(filepath.Join(dir, sel+".pem")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("mailauth: %w", err)
		}
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return fmt.Errorf("mailauth: %w", err)
	}
	return nil
}

// mkdirSynced makes dir (mode 0700) if it is not there, and syncs its
// parent so that the new entry is durable.
func mkdirSynced(dir string) error {
	err := os.Mkdir(dir, fsutil.DirMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mailauth: %w", err)
	}
	if err := fsutil.SyncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("mailauth: %w", err)
	}
	return nil
}

// writeSynced writes b to a new temporary file in dir (mode 0600), syncs
// and closes it, and returns its path.
func writeSynced(dir string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("mailauth: %w", err)
	}
	err = f.Chmod(fsutil.FileMode)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("mailauth: %w", err)
	}
	return f.Name(), nil
}
