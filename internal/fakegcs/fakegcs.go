// Package fakegcs runs fake-gcs-server on 127.0.0.1 for tests: the Google
// Cloud Storage JSON and XML APIs, found by the real client through
// STORAGE_EMULATOR_HOST.
package fakegcs

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// Start serves a fake GCS with the given buckets until the test ends and
// returns it with its host:port (the value for STORAGE_EMULATOR_HOST). wrap,
// when not nil, wraps its handler (to count or fail requests). Objects are
// served at their public host, so reads work with the default client.
func Start(t testing.TB, wrap func(http.Handler) http.Handler, buckets ...string) (srv *fakestorage.Server, host string) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	host = ts.Listener.Addr().String()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", NoListener: true, PublicHost: host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	for _, b := range buckets {
		srv.CreateBucket(b)
	}
	h := srv.HTTPHandler()
	if wrap != nil {
		h = wrap(h)
	}
	ts.Config.Handler = h
	ts.Start()
	t.Cleanup(ts.Close)
	return srv, host
}
