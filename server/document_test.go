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

// The documents are readable from any origin, a list of tags split over
// several If-None-Match lines still matches, and every answer is counted
// in the request metrics by outcome, although the documents skip the
// request info other endpoints get.
func TestDocumentsCORSAndMetrics(t *testing.T) {
	ts := newTestServer(t)
	etag := ""
	for _, path := range []string{endpoints.JWKSPath, endpoints.MetadataWellKnown, endpoints.OpenIDConfigurationPath} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		req.Header.Set("Origin", "https://any.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %d, Access-Control-Allow-Origin %q; want 200, *", path, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		if path == endpoints.JWKSPath {
			etag = resp.Header.Get("ETag")
		}
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+endpoints.JWKSPath, nil)
	req.Header.Add("If-None-Match", `"other"`)
	req.Header.Add("If-None-Match", `"another", `+etag)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("tag on the second If-None-Match line: %d, want 304", resp.StatusCode)
	}
	resp, err = http.Post(ts.URL+endpoints.JWKSPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST to the JWKS: %d Allow %q, want 405 GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, err = http.Get(httptestServer(t, ts.srv.OpsHandler()) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{
		`gatehouse_server_requests_total{endpoint="jwks",grant="",outcome="success"} 1`,
		`gatehouse_server_requests_total{endpoint="jwks",grant="",outcome="not_modified"} 1`,
		`gatehouse_server_requests_total{endpoint="jwks",grant="",outcome="method_not_allowed"} 1`,
		`gatehouse_server_requests_total{endpoint="metadata",grant="",outcome="success"} 1`,
		`gatehouse_server_requests_total{endpoint="openid_configuration",grant="",outcome="success"} 1`,
		`gatehouse_server_request_duration_seconds_count{endpoint="jwks",grant=""} 3`,
	} {
		if !strings.Contains(string(body), line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}
