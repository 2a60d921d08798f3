package atomicfile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestJSONRoundTrip: what WriteJSON writes ReadJSON reads back; a missing
// file leaves the value as it was; a damaged one is an error naming the file.
func TestJSONRoundTrip(t *testing.T) {
	type rec struct {
		Version string `json:"version"`
		PIDs    []int  `json:"pids"`
	}
	path := filepath.Join(t.TempDir(), "records.json")

	missing := []rec{{Version: "keep"}}
	if err := ReadJSON(path, &missing); err != nil || len(missing) != 1 || missing[0].Version != "keep" {
		t.Fatalf("ReadJSON(missing) = %v, %+v; want no error and the value untouched", err, missing)
	}

	want := []rec{{Version: "v1.0.0", PIDs: []int{10, 11}}, {Version: "v1.1.0"}}
	if err := WriteJSON(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasSuffix(string(b), "}\n]\n") || !strings.Contains(string(b), "\n  {") {
		t.Errorf("file = %q, %v; want indented JSON ending in a newline", b, err)
	}
	var got []rec
	if err := ReadJSON(path, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ReadJSON = %+v, %v; want %+v", got, err, want)
	}

	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ReadJSON(path, &got); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadJSON(damaged) = %v, want an error naming %s", err, path)
	}
}
