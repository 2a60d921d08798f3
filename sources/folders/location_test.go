package folders

import (
	"strings"
	"testing"
)

func TestLocation(t *testing.T) {
	tests := []struct {
		l         Location
		want      string // error substring; "" for none
		keyPrefix string
	}{
		{l: Location{Bucket: "b", Prefix: "a/b"}, keyPrefix: "a/b/"},
		{l: Location{Bucket: "b"}},
		{l: Location{}, want: "bucket is empty: want x://<bucket>"},
		{l: Location{Bucket: "a b"}, want: "not a bucket name"},
		{l: Location{Bucket: "a#b"}, want: "not a bucket name"},
		{l: Location{Bucket: "b", Prefix: "a//b"}, want: "empty"},
		{l: Location{Bucket: "b", Prefix: "a/./b"}, want: `"."`},
		{l: Location{Bucket: "b", Prefix: "a/../b"}, want: `".."`},
	}
	for _, tt := range tests {
		err := tt.l.Check("x://<bucket>")
		if tt.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tt.l, err)
			}
			if got := tt.l.KeyPrefix(); got != tt.keyPrefix {
				t.Errorf("%+v: KeyPrefix = %q, want %q", tt.l, got, tt.keyPrefix)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want it to contain %q", tt.l, err, tt.want)
		}
	}
}

func TestHolds(t *testing.T) {
	for _, tt := range []struct {
		prefix, key string
		want        bool
	}{
		{"app/", "app/v1/a.tar.gz", true},
		{"", "v1/a.tar.gz", true},
		{"app/", "other/v1/a.tar.gz", false},
		{"app/", "app/", false},
		{"app/", "app/v1/", false},
	} {
		if got := Holds(tt.prefix, tt.key); got != tt.want {
			t.Errorf("Holds(%q, %q) = %v, want %v", tt.prefix, tt.key, got, tt.want)
		}
	}
}
