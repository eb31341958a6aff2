package main

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// vmHWMKiB returns the process's peak resident set size (VmHWM) in KiB, from
// /proc/self/status, or 0 if it is not available.
func vmHWMKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				n, _ := strconv.ParseInt(fields[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// describeFS names the filesystem dir is on, from the longest mount point in
// /proc/mounts that contains it. Best effort.
func describeFS(dir string) string {
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	best, desc := -1, "unknown"
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		mnt := unescapeMount(f[1])
		if !(dir == mnt || mnt == "/" || strings.HasPrefix(dir, mnt+"/")) {
			continue
		}
		// The last matching line of equal length wins: later mounts hide
		// earlier ones.
		if len(mnt) >= best {
			best = len(mnt)
			desc = f[2] + " (" + unescapeMount(f[0]) + " on " + mnt + ", " + f[3] + ")"
		}
	}
	return desc
}

// unescapeMount undoes the octal escapes of /proc/mounts (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// treeUsage counts the regular files and directories under root (root itself
// excluded) and sums the blocks allocated to the files.
func treeUsage(root string) (files, dirs int, diskBytes int64, err error) {
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		if d.IsDir() {
			dirs++
			return nil
		}
		files++
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			diskBytes += st.Blocks * 512
		} else {
			diskBytes += info.Size()
		}
		return nil
	})
	return files, dirs, diskBytes, err
}
