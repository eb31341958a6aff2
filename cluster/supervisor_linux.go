package cluster

import "syscall"

// childAttr makes a module's process die with the supervisor (SIGKILL
// when the supervisor's thread ends), so that a supervisor killed with
// SIGKILL leaves no orphan behind to hold its ports.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
