package sources

import (
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    string
		want time.Time
		ok   bool
	}{
		{name: "seconds", v: "120", want: now.Add(2 * time.Minute), ok: true},
		{name: "seconds with spaces", v: " 5 ", want: now.Add(5 * time.Second), ok: true},
		{name: "negative seconds", v: "-5", want: now, ok: true},
		{name: "huge seconds are bounded", v: "99999999999999", want: now.Add(365 * 24 * time.Hour), ok: true},
		{name: "HTTP date", v: "Sun, 06 Dec 2026 12:30:00 GMT", want: now.Add(30 * time.Minute), ok: true},
		{name: "HTTP date in the past", v: "Sun, 06 Dec 2026 11:00:00 GMT", want: now, ok: true},
		{name: "RFC 850 date", v: "Sunday, 06-Dec-26 12:00:10 GMT", want: now.Add(10 * time.Second), ok: true},
		{name: "empty", v: ""},
		{name: "garbage", v: "soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseRetryAfter(tt.v, now)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.v, got, ok, tt.want, tt.ok)
			}
		})
	}
}
