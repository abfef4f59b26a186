//go:build !linux

package main

import "syscall"

// childAttr has no parent-death signal outside Linux; the driver stops its
// children on every exit path it controls.
func childAttr() *syscall.SysProcAttr { return nil }
