package e2e

import (
	"os"
	"testing"
)

// TestMain installs the real clients (when npm can) before any test starts;
// a test that needs one skips or fails in clientsPrefix when that failed.
func TestMain(m *testing.M) {
	_, _ = installedClients()
	os.Exit(m.Run())
}
