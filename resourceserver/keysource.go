package resourceserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// KeySource supplies the issuer's JWK Set (RFC 7517 §5). The validator
// caches what it returns and asks again when the cache is stale or a token
// names a kid it does not know, never more often than
// Config.MinRefreshInterval.
type KeySource interface {
	// FetchJWKS returns the JWK Set document and, if the source knows,
	// how long it may be cached; zero means Config.RefreshInterval.
	FetchJWKS(ctx context.Context) (doc []byte, maxAge time.Duration, err error)
}

// maxJWKSSize bounds what we read from a JWKS endpoint or file. A set of a
// few dozen RSA keys is well below it.
const maxJWKSSize = 1 << 20

// StaticJWKS is a fixed JWK Set, for tests and for keys pinned in
// configuration. Keys missing from it are never found.
func StaticJWKS(doc []byte) KeySource { return staticJWKS(doc) }

type staticJWKS []byte

func (s staticJWKS) FetchJWKS(context.Context) ([]byte, time.Duration, error) {
	return s, 0, nil
}

// JWKSFile reads the JWK Set from a file on every refresh: for a resource
// server in the cluster that mounts the AuthorizationServer's JWKS
// ConfigMap (data key jwks.json) as a volume, so that validating tokens
// needs no network call to the token server. The kubelet replaces the file
// when the operator rotates keys; the operator publishes a key long before
// it signs, so re-reading the file every 30 s is ample.
func JWKSFile(path string) KeySource { return jwksFile(path) }

type jwksFile string

// jwksFileMaxAge is how often a mounted JWKS file is re-read.
const jwksFileMaxAge = 30 * time.Second

func (f jwksFile) FetchJWKS(context.Context) ([]byte, time.Duration, error) {
	file, err := os.Open(string(f))
	if err != nil {
		return nil, 0, err
	}
	defer file.Close() //nolint:errcheck // read only: closing loses nothing
	doc, err := readLimited(file)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", string(f), err)
	}
	return doc, jwksFileMaxAge, nil
}

// remoteJWKS fetches the set from the issuer's jwks_uri.
type remoteJWKS struct {
	url    string
	client *http.Client
}

func (r *remoteJWKS) FetchJWKS(ctx context.Context) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %s", r.url, resp.Status)
	}
	doc, err := readLimited(resp.Body)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", r.url, err)
	}
	return doc, cacheMaxAge(resp.Header), nil
}

func readLimited(r io.Reader) ([]byte, error) {
	doc, err := io.ReadAll(io.LimitReader(r, maxJWKSSize+1))
	if err != nil {
		return nil, err
	}
	if len(doc) > maxJWKSSize {
		return nil, fmt.Errorf("larger than %d bytes", maxJWKSSize)
	}
	return doc, nil
}

// cacheMaxAge reads the freshness lifetime a response allows (RFC 9111
// §5.2.2): max-age, or -1 for no-store and no-cache, which ask us to
// revalidate as soon as we may. Zero means the response said nothing.
func cacheMaxAge(h http.Header) time.Duration {
	for _, v := range h.Values("Cache-Control") {
		for _, directive := range strings.Split(v, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return -1
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
				if err != nil || secs < 0 {
					continue
				}
				if secs == 0 {
					return -1
				}
				return time.Duration(min(secs, int64(maxRefreshInterval/time.Second))) * time.Second
			}
		}
	}
	return 0
}
