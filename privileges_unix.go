//go:build unix

package mailsys

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dropPrivileges makes dataDir belong to runAs ("user" or "user:group")
// and switches the process to it for every thread: supplementary groups
// dropped, then the group, then the user. Not running as root, it only
// checks that the process already is that user.
func dropPrivileges(runAs, dataDir string, log *slog.Logger) error {
	name, group, _ := strings.Cut(runAs, ":")
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("mailsys: run as %q: %w", runAs, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("mailsys: run as %q: user %s has no numeric ids", runAs, name)
	}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return fmt.Errorf("mailsys: run as %q: %w", runAs, err)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return fmt.Errorf("mailsys: run as %q: group %s has no numeric id", runAs, group)
		}
	}
	if os.Geteuid() != 0 {
		if os.Geteuid() != uid {
			return fmt.Errorf("mailsys: run as %q: not running as root, cannot switch from uid %d", runAs, os.Geteuid())
		}
		return nil
	}
	if uid == 0 {
		return fmt.Errorf("mailsys: run as %q: that is root", runAs)
	}
	// The data directory, made by root before, becomes the user's: the
	// components go on creating files in it.
	err = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("mailsys: run as %q: %w", runAs, err)
	}
	// Go applies these to every thread of the process (Linux, Go 1.16+).
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("mailsys: run as %q: setgroups: %w", runAs, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("mailsys: run as %q: setgid: %w", runAs, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("mailsys: run as %q: setuid: %w", runAs, err)
	}
	if os.Geteuid() != uid || os.Getegid() != gid {
		return fmt.Errorf("mailsys: run as %q: still uid %d gid %d", runAs, os.Geteuid(), os.Getegid())
	}
	// The components create files in the data directory as they go: make
	// sure the user can, rather than fail at the first new volume.
	probe, err := os.CreateTemp(dataDir, ".runas-*")
	if err != nil {
		return fmt.Errorf("mailsys: run as %q: the data directory is out of the user's reach (its parent directories must let %s through): %w", runAs, name, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	log.Info("dropped root", "user", name, "uid", uid, "gid", gid)
	return nil
}
