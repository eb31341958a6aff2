package msstore

import (
	"errors"
	"fmt"
	"log/slog"
)

// Config configures a [Volumes] store. The zero value of every field but Dirs
// means its default; [DefaultConfig] fills them in for one directory.
type Config struct {
	// Dirs are the data directories (typically one per disk). New volumes
	// go to the writable directories in proportion to their weights. At least
	// one is required; each is created if missing. What the store creates
	// is private to the process's user whatever the umask (directories
	// 0700, files 0600), and opening a directory (OpenVolumes, AddDir)
	// takes the group and other permissions off what is in it already,
	// logging each change.
	Dirs []Dir

	// Node is this store's node number, recorded in every Ref it returns.
	// Refs of other nodes are not found here.
	Node uint32

	// VolumeSize is the size at which a volume file is sealed and the next
	// one begun. Zero means 1 GiB; at most 4 GiB - 1.
	VolumeSize int64

	// MaxBodySize is the largest body Put accepts. Zero means 256 MiB, or
	// half of VolumeSize if that is less.
	MaxBodySize int64

	// SpoolMemory is how many bytes of a body Put holds in memory before it
	// spills the rest to a temporary file while reading. Zero means 256 KiB.
	SpoolMemory int

	// NoSync turns off per-Put durability, for bulk imports: Put returns
	// once the record is written, before it is on stable storage. Call Sync
	// (or Close) to make everything durable. The default is durable Puts.
	NoSync bool

	// CompactRatio is the fraction of a sealed volume's bytes that must be
	// released before Compact rewrites it. Zero means 0.5.
	CompactRatio float64

	// Logger receives the store's log records. Nil means slog.Default().
	Logger *slog.Logger
}

// Dir is one data directory of a [Volumes] store.
type Dir struct {
	// Path is the directory. Volume files are named vol-NNNNNNNN.msv in it.
	Path string
	// Weight is the share of new volumes this directory takes, relative to
	// the other writable directories. Zero means 1.
	Weight int
	// Masked makes the directory read-only: its volumes stay readable but
	// no new volume is created in it.
	Masked bool
}

// Limits of the on-disk format.
const (
	maxVolumeSize  = 1<<32 - 1
	defVolumeSize  = 1 << 30
	defMaxBody     = 256 << 20
	defSpoolMemory = 256 << 10
	defCompact     = 0.5
)

// DefaultConfig returns the configuration of a store with one data directory
// and every default spelled out (but Logger, left nil for slog.Default()).
func DefaultConfig(dir string) Config {
	c := Config{Dirs: []Dir{{Path: dir}}}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.VolumeSize == 0 {
		c.VolumeSize = defVolumeSize
	}
	if c.MaxBodySize == 0 {
		c.MaxBodySize = min(defMaxBody, c.VolumeSize/2)
	}
	if c.SpoolMemory == 0 {
		c.SpoolMemory = defSpoolMemory
	}
	if c.CompactRatio == 0 {
		c.CompactRatio = defCompact
	}
	c.Dirs = append([]Dir(nil), c.Dirs...)
	for i := range c.Dirs {
		if c.Dirs[i].Weight == 0 {
			c.Dirs[i].Weight = 1
		}
	}
}

// Validate reports every problem with c at once. Zero values are valid
// (they mean the defaults), except that Dirs must not be empty.
func (c Config) Validate() error {
	var errs []error
	if len(c.Dirs) == 0 {
		errs = append(errs, errors.New("no data directory"))
	}
	seen := map[string]bool{}
	for i, d := range c.Dirs {
		if d.Path == "" {
			errs = append(errs, fmt.Errorf("data directory %d: empty path", i))
		}
		if seen[d.Path] {
			errs = append(errs, fmt.Errorf("data directory %d: %q listed twice", i, d.Path))
		}
		seen[d.Path] = true
		if d.Weight < 0 {
			errs = append(errs, fmt.Errorf("data directory %d: negative weight %d", i, d.Weight))
		}
	}
	if c.VolumeSize < 0 || c.VolumeSize > maxVolumeSize {
		errs = append(errs, fmt.Errorf("VolumeSize %d out of range [0, %d]", c.VolumeSize, int64(maxVolumeSize)))
	} else if c.VolumeSize > 0 && c.VolumeSize < 1<<16 {
		errs = append(errs, fmt.Errorf("VolumeSize %d below the minimum of 64 KiB", c.VolumeSize))
	}
	if c.MaxBodySize < 0 {
		errs = append(errs, fmt.Errorf("negative MaxBodySize %d", c.MaxBodySize))
	}
	vs := c.VolumeSize
	if vs == 0 {
		vs = defVolumeSize
	}
	if c.MaxBodySize > vs/2 {
		errs = append(errs, fmt.Errorf("MaxBodySize %d above half of VolumeSize %d", c.MaxBodySize, vs))
	}
	if c.SpoolMemory < 0 {
		errs = append(errs, fmt.Errorf("negative SpoolMemory %d", c.SpoolMemory))
	}
	if c.CompactRatio < 0 || c.CompactRatio > 1 {
		errs = append(errs, fmt.Errorf("CompactRatio %v out of range [0, 1]", c.CompactRatio))
	}
	if len(errs) > 0 {
		return fmt.Errorf("msstore: invalid config: %w", errors.Join(errs...))
	}
	return nil
}
