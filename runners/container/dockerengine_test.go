package container

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// dockerAPI is an httptest server answering the Docker engine API's paths the
// cases need, in the engine's error format.
func dockerAPI(t *testing.T, routes map[string]func(http.ResponseWriter)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_ping" {
			w.Header().Set("Api-Version", "1.47")
			fmt.Fprint(w, "OK")
			return
		}
		path := r.Method + " " + strings.TrimPrefix(r.URL.Path, "/v1.47")
		if h, ok := routes[path]; ok {
			h(w)
			return
		}
		t.Errorf("unexpected request %s", path)
		http.Error(w, `{"message":"unexpected"}`, http.StatusNotImplemented)
	}))
	t.Cleanup(srv.Close)
	return "tcp://" + strings.TrimPrefix(srv.URL, "http://")
}

func apiError(status int, msg string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":%q}`, msg)
	}
}

// TestDockerEngineErrors: the Docker client's errors are classified as the
// Engine contract says.
func TestDockerEngineErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		msg    string
		call   func(context.Context, Engine) error
		want   error // nil: none of the Engine errors
	}{
		{
			name: "no such container", status: 404, msg: "No such container: abc",
			call: func(ctx context.Context, e Engine) error { _, err := e.InspectContainer(ctx, "abc"); return err },
			want: ErrNotFound,
		},
		{
			name: "no such image", status: 404, msg: "No such image: registry.test/app:v1",
			call: func(ctx context.Context, e Engine) error { return e.RemoveImage(ctx, "registry.test/app:v1") },
			want: ErrNotFound,
		},
		{
			name: "missing executable", status: 400, msg: `failed to create task for container: exec: "/app": stat /app: no such file or directory: unknown`,
			call: func(ctx context.Context, e Engine) error { return e.StartContainer(ctx, "abc") },
			want: ErrCannotRun,
		},
		{
			name: "other architecture", status: 500, msg: "failed to create task for container: exec /app: exec format error: unknown",
			call: func(ctx context.Context, e Engine) error { return e.StartContainer(ctx, "abc") },
			want: ErrCannotRun,
		},
		{
			name: "port taken", status: 500, msg: "driver failed programming external connectivity: Bind for 127.0.0.1:8080 failed: port is already allocated",
			call: func(ctx context.Context, e Engine) error { return e.StartContainer(ctx, "abc") },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := dockerAPI(t, map[string]func(http.ResponseWriter){
				"GET /containers/abc/json":            apiError(tc.status, tc.msg),
				"POST /containers/abc/start":          apiError(tc.status, tc.msg),
				"DELETE /images/registry.test/app:v1": apiError(tc.status, tc.msg),
			})
			t.Setenv("DOCKER_HOST", host)
			t.Setenv("DOCKER_API_VERSION", "")
			eng, err := newDockerEngine()
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			err = tc.call(t.Context(), eng)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v; want the engine's message %q", err, tc.msg)
			}
			for _, kind := range []error{ErrNotFound, ErrEngineUnavailable, ErrCannotRun} {
				if got := errors.Is(err, kind); got != (kind == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, kind, got)
				}
			}
		})
	}
}

// TestDockerEngineUnreachable: an engine nobody answers for is unavailable,
// not a missing container or a bad image.
func TestDockerEngineUnreachable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "tcp://"+testkit.ClosedAddr(t))
	t.Setenv("DOCKER_API_VERSION", "")
	eng, err := newDockerEngine()
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for name, call := range map[string]func() error{
		"platform": func() error { _, err := eng.Platform(t.Context()); return err },
		"inspect":  func() error { _, err := eng.InspectContainer(t.Context(), "abc"); return err },
		"start":    func() error { return eng.StartContainer(t.Context(), "abc") },
		"list": func() error {
			_, err := eng.ListContainers(t.Context(), map[string]string{LabelApp: "app"})
			return err
		},
	} {
		err := call()
		if !errors.Is(err, ErrEngineUnavailable) || errors.Is(err, ErrCannotRun) || errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v; want only an unavailable engine", name, err)
		}
	}
}
