package main

import "syscall"

// childAttr makes a node die with the launcher, should the launcher be
// killed without the chance to stop it.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} }
