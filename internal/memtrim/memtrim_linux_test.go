package memtrim

import (
	"testing"
)

// TestTrimPagesOutTheExecutable checks that Trim finds the test binary's
// read-only mappings and that resident memory goes down: the test binary,
// like the agent, has touched much of its code and data while starting.
func TestTrimPagesOutTheExecutable(t *testing.T) {
	regions, err := exeRegions()
	if err != nil {
		t.Fatal(err)
	}
	if len(regions) == 0 {
		t.Fatal("no read-only mappings of the executable found")
	}
	r, err := Trim()
	if err != nil {
		t.Skipf("this kernel refuses MADV_PAGEOUT: %v", err)
	}
	if r.Regions != len(regions) {
		t.Errorf("paged out %d regions, want %d", r.Regions, len(regions))
	}
	if r.Before <= 0 || r.After <= 0 {
		t.Fatalf("RSS not read: before %d, after %d", r.Before, r.After)
	}
	if r.After >= r.Before {
		t.Errorf("RSS did not go down: %d bytes before, %d after", r.Before, r.After)
	}
	t.Logf("RSS %d KiB -> %d KiB", r.Before>>10, r.After>>10)
}
