package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProcKiB(t *testing.T) {
	rss, err := ProcKiB(os.Getpid(), "status", "VmRSS:")
	if err != nil || rss <= 0 {
		t.Fatalf("VmRSS of this process: %d, %v", rss, err)
	}
	if _, err := ProcKiB(os.Getpid(), "status", "NoSuchKey:"); err == nil {
		t.Error("a missing key read without an error")
	}
}

func TestDeployedVersion(t *testing.T) {
	dir := t.TempDir()
	if v := DeployedVersion(dir, "site"); v != "" {
		t.Errorf("no state.json: version %q", v)
	}
	WriteFile(t, filepath.Join(dir, "apps", "site", "state.json"), `{"version": "v1.2.0"}`)
	if v := DeployedVersion(dir, "site"); v != "v1.2.0" {
		t.Errorf("version %q, want v1.2.0", v)
	}
}
