package userdata

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"time"
)

// Defaults of Config.
const (
	defaultCacheSize    = 256 << 20
	defaultMemTableSize = 64 << 20
)

// DefaultConfig returns the configuration of a DB in dir with every
// default spelled out (but Logger, left nil for slog.Default(), and
// DiskReserve, left 0 for 1% of the file system, which only Open can
// measure).
func DefaultConfig(dir string) Config {
	c := Config{Dir: dir}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.CacheSize == 0 {
		c.CacheSize = defaultCacheSize
	}
	if c.MemTableSize == 0 {
		c.MemTableSize = defaultMemTableSize
	}
	if c.LoginCache == 0 {
		c.LoginCache = defaultLoginCache
	}
	if c.LoginCacheTTL == 0 {
		c.LoginCacheTTL = defaultLoginCacheTTL
	}
	if c.Argon2 == (Argon2Params{}) {
		c.Argon2 = DefaultArgon2()
	}
}

// Validate reports every problem with c at once, each naming its field,
// in one error wrapping ErrInvalid. Zero values are valid (they mean the
// defaults) but for Dir, which must be set.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("field Dir: no directory"))
	}
	if c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("field CacheSize: negative (%d)", c.CacheSize))
	}
	if c.Mirror != "" && c.Dir != "" && filepath.Clean(c.Mirror) == filepath.Clean(c.Dir) {
		errs = append(errs, fmt.Errorf("field Mirror: the same directory as Dir (%s)", c.Dir))
	}
	errs = append(errs, passwordConfigErrors(c.Argon2, c.LoginCacheTTL)...)
	return configError("config", errs)
}

// passwordConfigErrors are the problems with the password settings that
// Config and MemoryConfig share.
func passwordConfigErrors(p Argon2Params, ttl time.Duration) []error {
	var errs []error
	if p != (Argon2Params{}) {
		if err := p.check(); err != nil {
			errs = append(errs, fmt.Errorf("field Argon2: %w", err))
		}
	}
	if ttl < 0 {
		errs = append(errs, fmt.Errorf("field LoginCacheTTL: negative (%v)", ttl))
	}
	return errs
}

// configError joins the problems found with a configuration (what names
// it) into one error wrapping ErrInvalid, or nil if there are none.
func configError(what string, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", ErrInvalid, what, errors.Join(errs...))
}

// check reports argon2id parameters outside the bounds a hash may have to
// be verified (see parseHash): 1 to 16 passes, at least one lane, 8 KiB per
// lane up to 1 GiB.
func (p Argon2Params) check() error {
	if p.Time == 0 || p.Threads == 0 || p.Memory < 8*uint32(p.Threads) || p.Memory > 1<<20 || p.Time > 16 {
		return fmt.Errorf("time %d, memory %d KiB, threads %d: want 1 to 16 passes, at least one thread and 8 KiB per thread up to 1 GiB",
			p.Time, p.Memory, p.Threads)
	}
	return nil
}

// DefaultPasswordLimiterConfig returns the configuration a zero
// PasswordLimiterConfig means on this machine, with every default spelled
// out.
func DefaultPasswordLimiterConfig() PasswordLimiterConfig {
	n := runtime.GOMAXPROCS(0)
	return PasswordLimiterConfig{MaxChecks: n, MaxMemory: defaultLimiterMemory, MaxWaiting: 4 * n, MaxWait: defaultLimiterWait}
}

// Validate reports every problem with c at once, each naming its field,
// in one error wrapping ErrInvalid. Zero values are valid (defaults), as
// are a negative MaxWaiting or MaxWait (no queue).
// NewPasswordLimiter, which cannot fail, takes a negative MaxChecks or
// MaxMemory for its default.
func (c PasswordLimiterConfig) Validate() error {
	var errs []error
	if c.MaxChecks < 0 {
		errs = append(errs, fmt.Errorf("field MaxChecks: negative (%d)", c.MaxChecks))
	}
	if c.MaxMemory < 0 {
		errs = append(errs, fmt.Errorf("field MaxMemory: negative (%d)", c.MaxMemory))
	}
	return configError("password limiter config", errs)
}
