//go:build unix

package mta

import "syscall"

// defaultMaxConns is GuardConfig.MaxConns's default: below the process's
// limit on open files, leaving room for the components' own.
func defaultMaxConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 || rl.Cur > 1<<31 {
		return fallbackMaxConns
	}
	return connsFor(int(rl.Cur))
}
