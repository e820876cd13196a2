package resourceserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Defaults.
const (
	// DefaultLeeway absorbs clock skew between the issuer and us.
	DefaultLeeway = 30 * time.Second
	// DefaultMinRefreshInterval is the most often the JWKS is fetched.
	DefaultMinRefreshInterval = 10 * time.Second
	// DefaultRefreshInterval is how long a JWKS is used before it is
	// fetched again in the background, when the response did not say
	// (Cache-Control: max-age).
	DefaultRefreshInterval = 5 * time.Minute
	// DefaultFetchTimeout bounds one metadata or JWKS request.
	DefaultFetchTimeout = 10 * time.Second
)

// Config says which tokens a Validator accepts.
type Config struct {
	// Issuer is the AuthorizationServer's issuer URL, exactly as it
	// appears in tokens (status.issuer; the app Secret's issuer key).
	Issuer string
	// Audience is this resource server's identifier; a token is accepted
	// only if its aud claim contains it (RFC 9068 §4, step 3).
	Audience string

	// Realm is the realm of the WWW-Authenticate challenge (RFC 6750 §3).
	// Default: Audience.
	Realm string
	// Algorithms is the JWS algorithm allow-list. Default:
	// DefaultAlgorithms. none and HS* are always refused.
	Algorithms []string
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// DefaultLeeway; a negative value means none.
	Leeway time.Duration

	// Keys, if set, supplies the JWKS (StaticJWKS, JWKSFile, or your
	// own), and nothing is discovered or fetched over the network.
	Keys KeySource
	// JWKSURL, if set, is fetched instead of the jwks_uri discovered from
	// the issuer's RFC 8414 metadata.
	JWKSURL string
	// HTTPClient makes the metadata and JWKS requests. Default: a client
	// with a DefaultFetchTimeout timeout.
	HTTPClient *http.Client
	// MinRefreshInterval is the most often the JWKS is fetched, however
	// many tokens with unknown kids arrive. Default:
	// DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// RefreshInterval is how long a JWKS is used before it is refreshed
	// in the background when the response carries no Cache-Control
	// max-age. Default: DefaultRefreshInterval.
	RefreshInterval time.Duration

	// Metadata, if set, makes the Validator describe this resource
	// server as RFC 9728 Protected Resource Metadata: MetadataHandler
	// serves it at MetadataPath, and every refusal's WWW-Authenticate
	// challenge names its URL (resource_metadata), so that a client with
	// no configuration but this API's URL (an MCP client, an agent) finds
	// the authorization server and the scopes. Config.Audience is then
	// the resource identifier and must be the API's https URL.
	Metadata *ProtectedResourceMetadata

	// Now is the clock, for tests. Default: time.Now.
	Now func() time.Time
	// OnReject, if set, is told about every request the middleware
	// refuses, with the reason (for logs and metrics; the cause is in
	// err.Err). It must not write to the response.
	OnReject func(r *http.Request, err *Error)
}

// Validator checks Gatehouse access tokens (RFC 9068). It is safe for
// concurrent use; make one per issuer and audience and keep it.
type Validator struct {
	issuer   string
	audience string
	realm    string
	leeway   time.Duration
	allowed  map[string]bool
	now      func() time.Time
	onReject func(*http.Request, *Error)
	keys     *keyCache
	meta     *resourceMetadata // nil without Config.Metadata
}

// New checks cfg, discovers the issuer's jwks_uri from its RFC 8414
// metadata (unless cfg.JWKSURL or cfg.Keys is set) and fetches the keys,
// so that a misconfigured resource server fails at start rather than on
// its first request. ctx bounds only that start-up work.
func New(ctx context.Context, cfg Config) (*Validator, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("resourceserver: Config.Issuer is required")
	}
	if _, err := MetadataURL(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("resourceserver: %w", err)
	}
	if cfg.Audience == "" {
		return nil, errors.New("resourceserver: Config.Audience is required")
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	allowed := make(map[string]bool, len(algs))
	for _, a := range algs {
		if _, ok := algorithms[a]; !ok {
			return nil, fmt.Errorf("resourceserver: algorithm %q is not an asymmetric JWS algorithm this package verifies", a)
		}
		allowed[a] = true
	}
	v := &Validator{
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		realm:    cmp.Or(cfg.Realm, cfg.Audience),
		leeway:   cfg.Leeway,
		allowed:  allowed,
		now:      cfg.Now,
		onReject: cfg.OnReject,
	}
	if cfg.Metadata != nil {
		var err error
		if v.meta, err = newResourceMetadata(cfg.Metadata, &cfg); err != nil {
			return nil, fmt.Errorf("resourceserver: %w", err)
		}
	}
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	if v.now == nil {
		v.now = time.Now
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: DefaultFetchTimeout}
	}
	source := cfg.Keys
	if source == nil {
		jwksURL := cfg.JWKSURL
		if jwksURL == "" {
			var err error
			if jwksURL, err = discoverJWKSURI(ctx, client, cfg.Issuer); err != nil {
				return nil, fmt.Errorf("resourceserver: %w", err)
			}
		}
		source = &remoteJWKS{url: jwksURL, client: client}
	}
	v.keys = &keyCache{
		source:       source,
		allowed:      allowed,
		now:          v.now,
		minInterval:  positive(cfg.MinRefreshInterval, DefaultMinRefreshInterval),
		defaultTTL:   positive(cfg.RefreshInterval, DefaultRefreshInterval),
		fetchTimeout: DefaultFetchTimeout,
	}
	if err := v.keys.refresh(ctx); err != nil {
		return nil, fmt.Errorf("resourceserver: %w", err)
	}
	return v, nil
}

func positive(d, fallback time.Duration) time.Duration {
	if d <= 0 {
		return fallback
	}
	return d
}
