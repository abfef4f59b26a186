//go:build !linux

package server

// ReleaseStartupPages releases nothing outside Linux (pages_linux.go).
func ReleaseStartupPages() int64 { return 0 }
