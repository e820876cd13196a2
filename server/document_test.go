package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// JWKS and the metadata documents carry a strong ETag; a cache that sends
// it back in If-None-Match gets 304 without a body, and a new key set
// changes the JWKS's tag.
func TestDocumentsRevalidateWithETag(t *testing.T) {
	ts := newTestServer(t)
	get := func(path, inm string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, path := range []string{endpoints.JWKSPath, endpoints.MetadataWellKnown, endpoints.OpenIDConfigurationPath} {
		resp, body := get(path, "")
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != http.StatusOK || body == "" || len(etag) < 10 || etag[0] != '"' {
			t.Fatalf("%s: %d ETag %q body %d bytes", path, resp.StatusCode, etag, len(body))
		}
		if !strings.HasPrefix(resp.Header.Get("Cache-Control"), "public, max-age=") {
			t.Errorf("%s: Cache-Control %q", path, resp.Header.Get("Cache-Control"))
		}
		for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
			resp, body = get(path, inm)
			if resp.StatusCode != http.StatusNotModified || body != "" || resp.Header.Get("ETag") != etag {
				t.Errorf("%s If-None-Match %s: %d, %d bytes, ETag %q; want 304, empty, the same tag", path, inm, resp.StatusCode, len(body), resp.Header.Get("ETag"))
			}
		}
		if resp, _ = get(path, `"stale"`); resp.StatusCode != http.StatusOK {
			t.Errorf("%s with a stale tag: %d, want 200", path, resp.StatusCode)
		}
	}
	resp, _ := get(endpoints.JWKSPath, "")
	old := resp.Header.Get("ETag")
	ts.update(func(s *config.Snapshot) {
		s.Keys = &keyset.Set{Keys: append(s.Keys.Keys, activeKey(t, keyset.RS256, ts.clock.Now().Add(time.Hour)))}
	})
	if resp, _ = get(endpoints.JWKSPath, old); resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == old {
		t.Errorf("after a key was added: %d with ETag %q, want 200 with a new tag", resp.StatusCode, resp.Header.Get("ETag"))
	}
}
