// Package server is the Gatehouse token server: the OAuth 2.0 endpoints of
// one AuthorizationServer (RFC 6749, 7636, 7009, 7662, 8414, 9068, 9207).
// Configuration comes from a config.Source snapshot; state shared between
// replicas goes through a storage.Store.
package server

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/clientaddr"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/internal/servercontract"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/admission"
	"github.com/gatehouse-dev/gatehouse/server/internal/cors"
	"github.com/gatehouse-dev/gatehouse/server/internal/devicecookie"
	"github.com/gatehouse-dev/gatehouse/server/internal/jose"
	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
	"github.com/gatehouse-dev/gatehouse/server/internal/seal"
	"github.com/gatehouse-dev/gatehouse/server/internal/throttle"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// Options configure a Server.
type Options struct {
	Source config.Source
	Store  storage.Store
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer receives the server's metrics; a new registry when nil.
	Registerer prometheus.Registerer
	// SessionTTL is how long a login lasts; 8h when zero.
	SessionTTL time.Duration
	// ConsentTTL is how long a remembered consent lasts; 90 days when zero.
	ConsentTTL time.Duration
	// LoginThrottle limits failed logins; throttle.Default when zero.
	LoginThrottle ThrottleConfig
	// DeviceAuthorizationLimit limits device authorizations per client and
	// per client address; throttle.DefaultDeviceAuthorizations when zero.
	DeviceAuthorizationLimit throttle.IssuanceConfig
	// TrustedProxies may report the client address in a forwarding
	// header; without them the connection's peer is the client.
	TrustedProxies clientaddr.TrustedProxies
	// TLSCertificate returns the certificate the public port serves, for
	// the expiry metric; nil when TLS ends before the server.
	TLSCertificate func() *x509.Certificate
	// ServiceAccountIssuer verifies the service-account tokens of clients
	// that authenticate as a ServiceAccount; without it they are refused.
	ServiceAccountIssuer ServiceAccountIssuer
	// Backchannel tunes the delivery of logout tokens (RunBackchannel).
	Backchannel BackchannelOptions
	// Events records Events about OAuthClients; none when nil.
	Events ClientEvents
	// MaxConcurrentRequests bounds the requests served at once, other than
	// the public documents and password logins; the excess is answered
	// 503 with Retry-After. DefaultMaxConcurrentRequests when zero.
	MaxConcurrentRequests int
	// MaxConcurrentLogins bounds the password logins (bcrypt) served at
	// once, apart from the other requests, so that a flood of logins
	// cannot starve token issuance. DefaultMaxConcurrentLogins when zero.
	MaxConcurrentLogins int
	// RefreshRetry lets every client, public ones too, retry a refresh
	// whose answer it never got, whatever the AuthorizationServer's
	// spec.refreshTokenRetry says (by default it covers confidential
	// clients): the successor is derived from the presented token, so the
	// retry gets the same one within storage.RotationRetryWindow, while it
	// is unused, instead of revoking the family as reuse. The price: a
	// stolen rotated token presented in that window gets the successor
	// too, and the theft is detected only when both have used it.
	RefreshRetry bool
	// Audit receives the audit log's lines; nil records none.
	Audit *audit.Log
}

// DefaultMaxConcurrentRequests is 8 requests per CPU the Go runtime may
// use (GOMAXPROCS, which follows the container's CPU limit), at least 16:
// enough to keep the CPUs and the database pool busy, few enough that
// each admitted request still gets its share of CPU promptly.
func DefaultMaxConcurrentRequests() int { return max(16, 8*runtime.GOMAXPROCS(0)) }

// DefaultMaxConcurrentLogins is half the CPUs, at least one: bcrypt takes
// all of a CPU for tens of milliseconds, so the rest are left to
// everything else.
func DefaultMaxConcurrentLogins() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// ThrottleConfig limits failed logins per account and per client address
// (package throttle).
type ThrottleConfig = throttle.Config

// Server serves the public endpoints (ServeHTTP) and the operational ones
// (OpsHandler).
type Server struct {
	src   config.Source
	store storage.Store
	now   func() time.Time
	// refreshRetry is Options.RefreshRetry.
	refreshRetry bool
	log          *slog.Logger
	metrics      *metrics
	gatherer     prometheus.Gatherer
	sessionTTL   time.Duration
	consentTTL   time.Duration
	throttle     *throttle.Logins
	// deviceLimit limits /device_authorization (device_authorization.go).
	deviceLimit *throttle.Issuance
	proxies     clientaddr.TrustedProxies
	saIssuer    ServiceAccountIssuer
	// reusedTokens remembers the verified signatures of client assertions
	// that may be presented again (clientassertion.go).
	reusedTokens *jwtverify.Cache
	audit        *audit.Log
	pages        *pages.Renderer
	grants       map[string]grantHandler
	// backchannel delivers logout tokens (backchannel.go).
	backchannel *dispatcher
	events      ClientEvents
	// requests and logins admit requests (package admission).
	requests, logins *admission.Limiter

	derived atomic.Pointer[derived]
}

// New builds a Server.
func New(o Options) (*Server, error) {
	if o.Source == nil || o.Store == nil {
		return nil, errors.New("server: Source and Store are required")
	}
	s := &Server{
		src: o.Source, store: storage.Traced(o.Store, storage.SystemOf(o.Store)), now: o.Now, log: o.Logger, refreshRetry: o.RefreshRetry,
		sessionTTL: o.SessionTTL, consentTTL: o.ConsentTTL, proxies: o.TrustedProxies,
		saIssuer: o.ServiceAccountIssuer, audit: o.Audit, reusedTokens: jwtverify.NewCache(reusedTokenCacheSize),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.sessionTTL == 0 {
		s.sessionTTL = 8 * time.Hour
	}
	if s.consentTTL == 0 {
		s.consentTTL = 90 * 24 * time.Hour
	}
	reg := o.Registerer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, s.gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		s.gatherer = g
	}
	m, err := newMetrics(reg, &stateCollector{src: o.Source, now: s.now, tlsLeaf: o.TLSCertificate}, o.Store)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if err := o.Audit.Register(reg); err != nil {
		return nil, err
	}
	s.throttle = throttle.New(o.LoginThrottle)
	s.deviceLimit = throttle.NewIssuance(o.DeviceAuthorizationLimit)
	s.backchannel = newDispatcher(s, o.Backchannel)
	if o.Events != nil {
		s.events = o.Events
	}
	s.requests, s.logins = newLimiters(o.MaxConcurrentRequests, o.MaxConcurrentLogins)
	if s.pages, err = pages.New(); err != nil {
		return nil, err
	}
	s.grants = map[string]grantHandler{
		"authorization_code":               s.grantAuthorizationCode,
		"refresh_token":                    s.grantRefreshToken,
		"client_credentials":               s.grantClientCredentials,
		string(oauthv1.GrantDeviceCode):    s.grantDeviceCode,
		string(oauthv1.GrantTokenExchange): s.grantTokenExchange,
	}
	return s, nil
}

// derived holds per-snapshot values computed once: the paths the server
// answers on, the metadata document and the JWKS.
type derived struct {
	snap         *config.Snapshot
	basePath     string
	metadataPath string
	metadata     *document
	// openIDConfiguration is the OpenID Connect discovery document.
	openIDConfiguration *document
	jwks                *document
	jwksErr             error
	// brandLogo is the brand's logo from its ConfigMap; nil without one.
	brandLogo  *document
	deviceKeys devicecookie.Keys
	// handleKeys seal upstream identities' handles (recheck.go), flowKeys
	// the upstream login's flow cookie (login_upstream.go).
	handleKeys, flowKeys seal.Keys
	signers              jose.Signers
	verified             *verifiedTokens
}

func (s *Server) derive(snap *config.Snapshot) *derived {
	// Client changes publish new snapshots with the same server-wide part:
	// nothing here depends on clients.
	if d := s.derived.Load(); d != nil && d.snap.SameServer(snap) {
		return d
	}
	d := &derived{snap: snap}
	if u, err := url.Parse(snap.Issuer); err == nil {
		d.basePath = strings.TrimSuffix(u.Path, "/")
	}
	if u, err := url.Parse(endpoints.MetadataURL(snap.Issuer)); err == nil {
		d.metadataPath = u.Path
	}
	d.metadata = buildMetadata(snap, s.federatedJWT(snap))
	d.openIDConfiguration = buildOpenIDConfiguration(snap, s.federatedJWT(snap))
	d.jwks, d.jwksErr = buildJWKS(snap)
	if logo := snap.BrandLogo; logo != nil {
		d.brandLogo = newDocument(logo.Image, logo.ContentType, brandLogoCacheControl)
	}
	d.deviceKeys = devicecookie.DeriveKeys(snap.Keys)
	d.handleKeys, d.flowKeys = handleKeysFor(snap), flowKeysFor(snap)
	d.signers = jose.NewSigners(snap.Keys)
	d.verified = newVerifiedTokens()
	s.derived.Store(d)
	return d
}

// result is what a handler reports for metrics: the grant (token
// endpoint only) and the outcome, "success" or an error code.
type result struct {
	grant   string
	outcome string
	// err is the error answered, when there was one: the audit line's
	// reason and message.
	err *Error
}

const outcomeSuccess = "success"

func failed(e *Error) result { return result{outcome: e.Code, err: e} }

// handlerFunc is a method expression ((*Server).handleX), not a method
// value: a method value bound to s would be allocated on every request.
type handlerFunc func(s *Server, w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result

// ServeHTTP routes a public request under the issuer's path, in a span of
// its own when tracing is on (tracing.go).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if t := tracing.Tracer(); t != nil {
		s.serveTraced(t, w, r)
		return
	}
	s.serve(r.Context(), w, r)
}

// serve answers a request and says which endpoint it was for and with
// what result. ctx is the request's context, with its span when it is
// traced: the handlers get it with the request's info, in one copy of
// the request.
func (s *Server) serve(ctx context.Context, w http.ResponseWriter, r *http.Request) (string, result) {
	start := time.Now()
	snap := s.src.Current()
	if snap == nil {
		writeError(w, newError(ErrTemporarilyUnavailable, "the server is starting"), "")
		res := result{outcome: ErrTemporarilyUnavailable}
		s.metrics.observe("unknown", res, start)
		return "unknown", res
	}
	d := s.derive(snap)
	endpoint, h := s.route(d, r.URL.Path)
	if h == nil {
		http.NotFound(w, r)
		res := result{outcome: "not_found"}
		s.metrics.observe("not_found", res, start)
		return "not_found", res
	}
	if isDocument(endpoint) {
		// The public documents are the same bytes for every caller and
		// readable from any origin (document.serve): no CORS decision, and
		// nothing in them needs the request's info, whose context and
		// request copy would be most of the server's own work here.
		res := h(s, w, r, snap)
		s.metrics.observe(endpoint, res, start)
		return endpoint, res
	}
	if methods, ok := corsMethods[endpoint]; ok {
		allowed := snap.Clients.AllowsOrigin
		if endpoint == "introspect" {
			allowed = snap.Clients.ListsOrigin
		}
		if cors.Apply(w, r, allowed, methods) {
			res := result{outcome: "preflight"}
			s.metrics.observe(endpoint, res, start)
			return endpoint, res
		}
	}
	lim := s.requests
	if endpoint == "login" && r.Method == http.MethodPost {
		lim = s.logins
	}
	if !lim.Acquire(r.Context()) {
		s.shed(w, r, snap, endpoint)
		res := result{outcome: outcomeOverloaded}
		s.metrics.observe(endpoint, res, start)
		return endpoint, res
	}
	defer lim.Release()
	ic := &infoContext{Context: ctx, info: requestInfo{s: s, endpoint: endpoint, addr: s.proxies.ClientAddr(r)}}
	if s.audit != nil {
		ic.info.audit.event = auditEvents[endpoint]
		ic.info.traceID = requestTraceID(ctx, r)
	}
	r = r.WithContext(ic)
	res := h(s, w, r, snap)
	s.metrics.observe(endpoint, res, start)
	if s.audit != nil && ic.info.audit.event != "" {
		s.writeAudit(r, &ic.info, snap, res, start)
	}
	return endpoint, res
}

// corsMethods are the endpoints open to browsers, with their methods: a
// single-page app redeems, refreshes and revokes, and reads userinfo
// (OpenID Connect Core §5.3), from the browser. The origins allowed are
// those of public clients' redirect URIs, where a single-page app needs
// CORS, and those clients list in spec.allowedCORSOrigins
// (config.ClientMap.AllowsOrigin). Introspection is open only to listed
// origins (ListsOrigin): it needs client authentication, which a
// single-page app cannot do. Nothing admits cookies
// (Access-Control-Allow-Credentials is never sent), so an allowed origin
// reads only answers to requests that carry their own credentials.
var corsMethods = map[string]string{"token": "POST", "revoke": "POST", "userinfo": "GET, POST", "introspect": "POST"}

// isDocument: the endpoints that serve a document (document.go).
func isDocument(endpoint string) bool {
	return endpoint == "jwks" || endpoint == "metadata" || endpoint == "openid_configuration"
}

func (s *Server) route(d *derived, path string) (string, handlerFunc) {
	if path == d.metadataPath {
		return "metadata", (*Server).handleMetadata
	}
	rest, ok := strings.CutPrefix(path, d.basePath)
	if !ok {
		return "", nil
	}
	switch rest {
	case endpoints.TokenPath:
		return "token", (*Server).handleToken
	case endpoints.AuthorizePath:
		return "authorize", (*Server).handleAuthorize
	case endpoints.LoginPath:
		return "login", (*Server).handleLogin
	case UpstreamStartPath:
		return "login_upstream", (*Server).handleUpstreamStart
	case UpstreamCallbackPath:
		return "login_callback", (*Server).handleUpstreamCallback
	case endpoints.ConsentPath:
		return "consent", (*Server).handleConsent
	case endpoints.RevokePath:
		return "revoke", (*Server).handleRevoke
	case endpoints.IntrospectPath:
		return "introspect", (*Server).handleIntrospect
	case endpoints.JWKSPath:
		return "jwks", (*Server).handleJWKS
	case endpoints.DeviceAuthorizationPath:
		return "device_authorization", (*Server).handleDeviceAuthorization
	case endpoints.DevicePath:
		return "device", (*Server).handleDevice
	case endpoints.PushedAuthorizationRequestPath:
		return "par", (*Server).handlePAR
	case endpoints.EndSessionPath:
		return "end_session", (*Server).handleEndSession
	case endpoints.UserinfoPath:
		return "userinfo", (*Server).handleUserinfo
	case endpoints.OpenIDConfigurationPath:
		return "openid_configuration", (*Server).handleOpenIDConfiguration
	case endpoints.BrandLogoPath:
		return "brand_logo", (*Server).handleBrandLogo
	}
	return "", nil
}

// OpsHandler serves /healthz (the process runs), /readyz (configuration
// synced, a key signs, storage answers) and /metrics, on a port apart from
// the public one so they are never exposed through the public Service.
func (s *Server) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+servercontract.HealthzPath, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET "+servercontract.ReadyzPath, func(w http.ResponseWriter, r *http.Request) {
		if err := s.Ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if s.gatherer != nil {
		mux.Handle("GET "+servercontract.MetricsPath, promHandler(s.gatherer))
	}
	return mux
}

// Ready reports why the server cannot serve, or nil.
func (s *Server) Ready(ctx context.Context) error {
	if err := s.src.Ready(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return errors.New("storage is not reachable")
	}
	return nil
}

// RunGC deletes expired storage objects every interval until ctx ends.
func (s *Server) RunGC(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.store.DeleteExpired(ctx, s.now())
			if err != nil {
				s.log.Warn("deleting expired state", "error", err)
			} else if n > 0 {
				s.log.Debug("deleted expired state", "objects", n)
			}
		}
	}
}
