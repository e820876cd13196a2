package resourceserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// wellKnownMetadata is the RFC 8414 §3 well-known suffix.
const wellKnownMetadata = "/.well-known/oauth-authorization-server"

// MetadataURL is where RFC 8414 §3.1 puts an issuer's metadata: the
// well-known suffix goes between the host and the issuer's path, so
// https://example.com/tenants/a is described at
// https://example.com/.well-known/oauth-authorization-server/tenants/a.
func MetadataURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return "", fmt.Errorf("issuer: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		// RFC 8414 §2: an https URL without query or fragment (http is
		// tolerated for development servers).
		return "", fmt.Errorf("issuer %q is not an http(s) URL without query or fragment", issuer)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	u.RawPath = ""
	u.Path = wellKnownMetadata + path
	return u.String(), nil
}

// discoverJWKSURI fetches the issuer's metadata and returns its jwks_uri.
// The metadata's issuer must be exactly ours (RFC 8414 §3.3): otherwise an
// attacker who can answer for one URL could vouch for keys of another.
func discoverJWKSURI(ctx context.Context, client *http.Client, issuer string) (string, error) {
	metaURL, err := MetadataURL(issuer)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metaURL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discovery: GET %s: %s", metaURL, resp.Status)
	}
	body, err := readLimited(resp.Body)
	if err != nil {
		return "", fmt.Errorf("discovery: GET %s: %w", metaURL, err)
	}
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &meta); err != nil {
		return "", fmt.Errorf("discovery: metadata at %s is not JSON: %w", metaURL, err)
	}
	if meta.Issuer != issuer {
		return "", fmt.Errorf("discovery: metadata at %s names issuer %q, want %q", metaURL, meta.Issuer, issuer)
	}
	u, err := url.Parse(meta.JWKSURI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("discovery: metadata at %s has no usable jwks_uri (%q)", metaURL, meta.JWKSURI)
	}
	return meta.JWKSURI, nil
}
