package testkit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEventually(t *testing.T) {
	var n atomic.Int32
	Eventually(t, 5*time.Second, "three polls", func() bool { return n.Add(1) >= 3 })
	if n.Load() < 3 {
		t.Errorf("returned after %d polls, want 3", n.Load())
	}
}

func TestTarGz(t *testing.T) {
	b := TarGz(map[string]string{"b.txt": "bee", "a.txt": "ay"})
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		got = append(got, h.Name+"="+string(body))
		if h.Mode != 0o644 {
			t.Errorf("%s mode %o, want 644", h.Name, h.Mode)
		}
	}
	if len(got) != 2 || got[0] != "a.txt=ay" || got[1] != "b.txt=bee" {
		t.Errorf("entries = %q, want a.txt=ay, b.txt=bee in order", got)
	}
}

func TestLoadCountsFailures(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "v1")
	}))
	defer srv.Close()
	for _, ka := range []KeepAlive{KeepAliveNone, KeepAliveAll, KeepAliveHalf} {
		t.Run(string(ka), func(t *testing.T) {
			l := StartLoad(srv.URL, LoadOptions{Workers: 3, KeepAlive: ka})
			Eventually(t, 10*time.Second, "40 requests", func() bool { sent, _ := l.Counts(); return sent >= 40 })
			res := l.Stop()
			if res.Failed == 0 || len(res.Errors) == 0 {
				t.Errorf("failed = %d, errors %v; want the 503s counted", res.Failed, res.Errors)
			}
			if res.Answers["v1"] != res.Sent-res.Failed {
				t.Errorf("answers %v, want %d of v1", res.Answers, res.Sent-res.Failed)
			}
			if len(res.Latencies) != res.Answers["v1"] || res.Quantile(1) < res.Quantile(0) {
				t.Errorf("%d latencies for %d answers, or not sorted", len(res.Latencies), res.Answers["v1"])
			}
		})
	}
}

func TestProgramTBKeepsFirstFailureAndRunsCleanupsInReverse(t *testing.T) {
	p := &ProgramTB{}
	var order []int
	p.Cleanup(func() { order = append(order, 1) })
	p.Cleanup(func() { order = append(order, 2) })
	if p.Err() != nil {
		t.Fatalf("Err before any failure = %v", p.Err())
	}
	p.Fatalf("first %d", 1)
	p.Errorf("second")
	if p.Err() == nil || p.Err().Error() != "first 1" {
		t.Fatalf("Err = %v, want first 1", p.Err())
	}
	p.Close()
	if !slices.Equal(order, []int{2, 1}) {
		t.Fatalf("cleanups ran in order %v, want [2 1]", order)
	}
	p.Close()
	if len(order) != 2 {
		t.Fatalf("second Close ran cleanups again: %v", order)
	}
}

func TestWorkDir(t *testing.T) {
	for _, keep := range []bool{false, true} {
		var said []string
		dir, done, err := WorkDir("testkit-workdir-", keep, func(format string, args ...any) {
			said = append(said, fmt.Sprintf(format, args...))
		})
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("keep=%v: %s is not a folder: %v", keep, dir, err)
		}
		done()
		_, err = os.Stat(dir)
		if gone := os.IsNotExist(err); gone == keep {
			t.Errorf("keep=%v: after done the folder is gone=%v", keep, gone)
		}
		if keep != (len(said) == 1 && strings.Contains(said[0], dir)) {
			t.Errorf("keep=%v: said %q", keep, said)
		}
		os.RemoveAll(dir)
	}
}
