package msstore

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mailsys/mailsys/internal/fsutil"
)

// manifestName is the file, in every data directory, that lists all the
// store's data directories, so that opening the store with one of them left
// out of the configuration is an error rather than a silent loss.
const manifestName = "msstore.dirs"

func (s *Volumes) prepareDir(d Dir) (*dataDir, error) {
	path, err := filepath.Abs(d.Path)
	if err != nil {
		return nil, fmt.Errorf("msstore: data directory %q: %w", d.Path, err)
	}
	if err := os.MkdirAll(filepath.Join(path, "tmp"), fsutil.DirMode); err != nil {
		return nil, fmt.Errorf("msstore: data directory: %w", err)
	}
	// Bodies are private mail: a tree made by an older version, or by
	// hand, loses its group and other permissions (logged; not fatal).
	fsutil.TightenLog(s.log, path)
	lock, err := lockDir(path)
	if err != nil {
		return nil, fmt.Errorf("msstore: data directory: %w", err)
	}
	dd := &dataDir{path: path, weight: d.Weight, lock: lock}
	if dd.weight == 0 {
		dd.weight = 1
	}
	dd.masked.Store(d.Masked)
	return dd, nil
}

// AddDir adds a data directory to an open store; new volumes start going to
// it at once, in proportion to its weight.
func (s *Volumes) AddDir(d Dir) error {
	if d.Path == "" || d.Weight < 0 {
		return fmt.Errorf("msstore: AddDir: invalid directory %+v", d)
	}
	if vols, _ := filepath.Glob(filepath.Join(d.Path, "vol-*.msv")); len(vols) > 0 {
		return fmt.Errorf("msstore: AddDir: %s holds volumes already; list it in Config.Dirs and reopen the store", d.Path)
	}
	dd, err := s.prepareDir(d)
	if err != nil {
		return err
	}
	dd.id = newID()
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.dirs {
		if o.path == dd.path {
			dd.lock.Close()
			return fmt.Errorf("msstore: AddDir: %s is already a data directory", dd.path)
		}
	}
	s.dirs = append(s.dirs, dd)
	return s.writeManifests()
}

// MaskDir sets whether the data directory at path is masked (read-only): a
// masked directory gets no new volume; its volumes stay readable. Masking
// the directory of the volume being written seals that volume.
func (s *Volumes) MaskDir(path string, masked bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	for _, d := range s.dirs {
		if d.path == abs {
			d.masked.Store(masked)
			if masked && s.active != nil && s.active.dir == d {
				return s.sealActive()
			}
			return nil
		}
	}
	return fmt.Errorf("msstore: MaskDir: %s is not a data directory", abs)
}

// pickDir chooses the directory of a new volume by smooth weighted
// round-robin over the unmasked directories. appendMu must be held.
func (s *Volumes) pickDir() *dataDir {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var best *dataDir
	total := 0
	for _, d := range s.dirs {
		if d.masked.Load() {
			continue
		}
		d.cur += d.weight
		total += d.weight
		if best == nil || d.cur > best.cur {
			best = d
		}
	}
	if best != nil {
		best.cur -= total
	}
	return best
}

// A manifest, in every data directory, names the store, the directory
// itself and every directory of the store, by random ids (paths change when
// disks are remounted or copied). Opening the store with a directory left
// out of the configuration, or with a directory of another store, is then an
// error instead of a silent loss of the bodies there.
//
//	store <id>
//	self <id>
//	dir <id> <path when last opened>
//	...
type manifest struct {
	store, self string
	dirs        map[string]string // id -> last path
}

func readManifest(dir string) (*manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, err
	}
	m := &manifest{dirs: map[string]string{}}
	for _, line := range strings.Split(string(b), "\n") {
		key, rest, _ := strings.Cut(line, " ")
		switch key {
		case "store":
			m.store = rest
		case "self":
			m.self = rest
		case "dir":
			id, path, _ := strings.Cut(rest, " ")
			m.dirs[id] = path
		}
	}
	if m.store == "" || m.self == "" {
		return nil, fmt.Errorf("%w: %s is incomplete", ErrCorrupt, filepath.Join(dir, manifestName))
	}
	return m, nil
}

// checkManifests compares the directories each configured one remembers with
// the configured ones, then records the configured set in all of them.
func (s *Volumes) checkManifests() error {
	store := ""
	members := map[string]string{} // every directory the store had: id -> last path
	present := map[string]bool{}
	for _, d := range s.dirs {
		m, err := readManifest(d.path)
		if errors.Is(err, fs.ErrNotExist) {
			d.id = newID()
			continue
		}
		if err != nil {
			return fmt.Errorf("msstore: %w", err)
		}
		if store != "" && m.store != store {
			return fmt.Errorf("msstore: %s belongs to another store than the other data directories", d.path)
		}
		if present[m.self] {
			return fmt.Errorf("msstore: %s is a copy of another configured data directory", d.path)
		}
		store, d.id, present[m.self] = m.store, m.self, true
		for id, path := range m.dirs {
			members[id] = path
		}
	}
	var missing []string
	for id, path := range members {
		if !present[id] {
			missing = append(missing, path)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("msstore: data directories of this store are not configured (last seen at %s); "+
			"configure them, or, if their volumes were moved into the configured ones, remove %s from those",
			strings.Join(missing, ", "), manifestName)
	}
	if store == "" {
		store = newID()
	}
	s.storeID = store
	return s.writeManifests()
}

// writeManifests records the data directories in each of them.
func (s *Volumes) writeManifests() error {
	var b strings.Builder
	fmt.Fprintf(&b, "store %s\n", s.storeID)
	for _, d := range s.dirs {
		fmt.Fprintf(&b, "dir %s %s\n", d.id, d.path)
	}
	for _, d := range s.dirs {
		data := []byte(fmt.Sprintf("self %s\n%s", d.id, b.String()))
		err := replaceFile(d.path, manifestName, func(w *bufio.Writer) error {
			_, err := w.Write(data)
			return err
		})
		if err != nil {
			return fmt.Errorf("msstore: %w", err)
		}
	}
	return nil
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// replaceFile replaces dir/name durably with what write writes: into a
// temporary file, synced, renamed over the old one, and the directory
// synced. write gets a buffered writer; replaceFile flushes it.
func replaceFile(dir, name string, write func(w *bufio.Writer) error) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fsutil.FileMode)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = fsutil.SyncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
