package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/tracing"
)

// OIDCConfig is an upstream OpenID Provider (the AuthorizationServer's
// identityProviders[].oidc, with its Secrets read).
type OIDCConfig struct {
	Name, DisplayName string
	Issuer            string
	ClientID          string
	ClientSecret      string
	// Scopes requested; openid is added when missing.
	Scopes []string
	// Claim names; preferred_username, email and groups when empty.
	UsernameClaim, EmailClaim, GroupsClaim string
	// AllowedGroups, when set, admits only members of one of them.
	AllowedGroups []string
	// OfflineAccess asks for offline_access too, when the provider offers
	// it, so that its refresh token can re-check the person (Recheck).
	OfflineAccess bool
	// HTTPClient talks to the provider (its CA, a timeout); a client with
	// a 10s timeout when nil.
	HTTPClient *http.Client
	// Now is the clock for ID-token expiry; time.Now when nil.
	Now func() time.Time
}

// OIDCSource logs people in at an upstream OpenID Provider with the
// authorization-code flow (OpenID Connect Core §3.1) with PKCE (RFC 7636),
// state and nonce, and verifies the ID token it returns: signature by a key
// of the provider's JWKS, issuer, audience, expiry and nonce.
//
// Discovery happens at the first login and is kept once it succeeds; a
// provider that is down is asked again at the next login.
type OIDCSource struct {
	cfg OIDCConfig

	mu       sync.Mutex
	provider *oidc.Provider
}

// NewOIDC makes an OIDCSource; it does not contact the provider.
func NewOIDC(cfg OIDCConfig) *OIDCSource {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: tracing.Transport(nil), Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "preferred_username"
	}
	if cfg.EmailClaim == "" {
		cfg.EmailClaim = "email"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	return &OIDCSource{cfg: cfg}
}

// Name implements Source.
func (s *OIDCSource) Name() string { return s.cfg.Name }

// DisplayName implements Source.
func (s *OIDCSource) DisplayName() string { return s.cfg.DisplayName }

// discover returns the provider, fetching its discovery document once.
// The context only bounds this fetch: go-oidc keeps the one it is given
// for later JWKS fetches, so it gets one that is never cancelled.
func (s *OIDCSource) discover(ctx context.Context) (*oidc.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider != nil {
		return s.provider, nil
	}
	type result struct {
		p   *oidc.Provider
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := oidc.NewProvider(oidc.ClientContext(context.Background(), s.cfg.HTTPClient), s.cfg.Issuer)
		done <- result{p, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("%w: oidc %s: discovery at %s: %v", ErrUnavailable, s.cfg.Name, s.cfg.Issuer, r.err)
		}
		s.provider = r.p
		return r.p, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: oidc %s: discovery at %s: %v", ErrUnavailable, s.cfg.Name, s.cfg.Issuer, ctx.Err())
	}
}

// oauth2Config authenticates at the token endpoint as discovery says:
// client_secret_basic, the default (RFC 8414 §2), unless only
// client_secret_post is offered. Never by trial: a retry in the other
// style would blur what the provider answered.
func (s *OIDCSource) oauth2Config(p *oidc.Provider, redirectURI string) *oauth2.Config {
	var meta struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
		Scopes  []string `json:"scopes_supported"`
	}
	_ = p.Claims(&meta)
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if len(meta.Methods) > 0 && !slices.Contains(meta.Methods, "client_secret_basic") && slices.Contains(meta.Methods, "client_secret_post") {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	scopes := s.cfg.Scopes
	if s.cfg.OfflineAccess && slices.Contains(meta.Scopes, oidc.ScopeOfflineAccess) && !slices.Contains(scopes, oidc.ScopeOfflineAccess) {
		scopes = append(slices.Clip(scopes), oidc.ScopeOfflineAccess)
	}
	return &oauth2.Config{
		ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret,
		Endpoint: ep, RedirectURL: redirectURI, Scopes: scopes,
	}
}

// Start implements RedirectSource.
func (s *OIDCSource) Start(ctx context.Context, redirectURI string) (string, Pending, error) {
	p, err := s.discover(ctx)
	if err != nil {
		return "", Pending{}, err
	}
	pend := Pending{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier()}
	u := s.oauth2Config(p, redirectURI).AuthCodeURL(pend.State, oauth2.S256ChallengeOption(pend.Verifier), oidc.Nonce(pend.Nonce))
	return u, pend, nil
}

// Finish implements RedirectSource. Errors never carry the code or a
// token.
func (s *OIDCSource) Finish(ctx context.Context, redirectURI string, pend Pending, q map[string][]string) (Person, error) {
	get := func(k string) string {
		if v := q[k]; len(v) == 1 {
			return v[0]
		}
		return ""
	}
	// RFC 6749 §10.12: the state binds the callback to this browser's
	// login; a callback from someone else's is refused before anything
	// else is looked at.
	if st := get("state"); pend.State == "" || subtle.ConstantTimeCompare([]byte(st), []byte(pend.State)) != 1 {
		return Person{}, fmt.Errorf("%w: oidc %s: the state does not match this browser's sign-in", ErrRejected, s.cfg.Name)
	}
	if e := get("error"); e != "" {
		if e == "access_denied" {
			return Person{}, fmt.Errorf("%w: oidc %s: the provider said access_denied", ErrNotAllowed, s.cfg.Name)
		}
		return Person{}, fmt.Errorf("%w: oidc %s: the provider answered error=%.64q", ErrRejected, s.cfg.Name, e)
	}
	code := get("code")
	if code == "" {
		return Person{}, fmt.Errorf("%w: oidc %s: the callback has no code", ErrRejected, s.cfg.Name)
	}
	p, err := s.discover(ctx)
	if err != nil {
		return Person{}, err
	}
	tok, err := s.oauth2Config(p, redirectURI).Exchange(oidc.ClientContext(ctx, s.cfg.HTTPClient), code, oauth2.VerifierOption(pend.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return Person{}, fmt.Errorf("%w: oidc %s: the token endpoint answered %d %s", ErrRejected, s.cfg.Name, re.Response.StatusCode, re.ErrorCode)
		}
		return Person{}, fmt.Errorf("%w: oidc %s: redeeming the code: %v", ErrUnavailable, s.cfg.Name, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Person{}, fmt.Errorf("%w: oidc %s: the token response has no id_token", ErrRejected, s.cfg.Name)
	}
	person, err := s.verify(ctx, p, raw, pend.Nonce)
	person.Handle.RefreshToken = tok.RefreshToken
	return person, err
}

// Recheck implements Rechecker with the provider's refresh token from the
// person's login (OpenID Connect Core §12): a provider that refuses it
// (invalid_grant: the person was removed or disabled, or their grant
// revoked) says the person is gone. The claims come from the refreshed ID
// token, or from userinfo when the provider sends none (§12.2 allows
// that), and must be about the same person. The new refresh token, if the
// provider rotates them, is the Handle for next time.
func (s *OIDCSource) Recheck(ctx context.Context, subject string, h Handle) (Person, error) {
	if h.RefreshToken == "" {
		return Person{}, fmt.Errorf("%w: oidc %s: no refresh token from the person's login to ask with", ErrUnavailable, s.cfg.Name)
	}
	p, err := s.discover(ctx)
	if err != nil {
		return Person{}, err
	}
	cctx := oidc.ClientContext(ctx, s.cfg.HTTPClient)
	tok, err := s.oauth2Config(p, "").TokenSource(cctx, &oauth2.Token{RefreshToken: h.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		switch {
		case errors.As(err, &re) && re.ErrorCode == "invalid_grant":
			return Person{}, fmt.Errorf("%w: oidc %s: the provider refused the person's refresh token (invalid_grant)", ErrGone, s.cfg.Name)
		case errors.As(err, &re):
			return Person{}, fmt.Errorf("%w: oidc %s: the token endpoint answered %d %s", ErrUnavailable, s.cfg.Name, re.Response.StatusCode, re.ErrorCode)
		}
		return Person{}, fmt.Errorf("%w: oidc %s: refreshing: %v", ErrUnavailable, s.cfg.Name, err)
	}
	var person Person
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		v := p.Verifier(&oidc.Config{ClientID: s.cfg.ClientID, Now: s.cfg.Now})
		idt, err := v.Verify(cctx, raw)
		if err != nil {
			return Person{}, fmt.Errorf("%w: oidc %s: refreshed ID token: %v", ErrUnavailable, s.cfg.Name, err)
		}
		var claims map[string]any
		if err := idt.Claims(&claims); err != nil {
			return Person{}, fmt.Errorf("%w: oidc %s: refreshed ID token claims: %v", ErrUnavailable, s.cfg.Name, err)
		}
		person = s.person(idt.Issuer, idt.Subject, claims)
	} else {
		info, err := p.UserInfo(cctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return Person{}, fmt.Errorf("%w: oidc %s: userinfo: %v", ErrUnavailable, s.cfg.Name, err)
		}
		var claims map[string]any
		if err := info.Claims(&claims); err != nil {
			return Person{}, fmt.Errorf("%w: oidc %s: userinfo claims: %v", ErrUnavailable, s.cfg.Name, err)
		}
		person = s.person(s.cfg.Issuer, info.Subject, claims)
	}
	if person.Subject != subject {
		return Person{}, fmt.Errorf("%w: oidc %s: the refreshed tokens are about someone else", ErrGone, s.cfg.Name)
	}
	if !s.allowed(person) {
		return Person{}, fmt.Errorf("%w: oidc %s: %s is in none of the allowed groups any more", ErrGone, s.cfg.Name, person.Username)
	}
	person.Handle.RefreshToken = tok.RefreshToken
	if person.Handle.RefreshToken == "" {
		person.Handle.RefreshToken = h.RefreshToken
	}
	return person, nil
}

// allowed applies AllowedGroups.
func (s *OIDCSource) allowed(p Person) bool {
	return len(s.cfg.AllowedGroups) == 0 || slices.ContainsFunc(p.Groups, func(g string) bool { return slices.Contains(s.cfg.AllowedGroups, g) })
}

// verify checks the ID token (Core §3.1.3.7) and maps its claims.
func (s *OIDCSource) verify(ctx context.Context, p *oidc.Provider, raw, nonce string) (Person, error) {
	v := p.Verifier(&oidc.Config{ClientID: s.cfg.ClientID, Now: s.cfg.Now})
	idt, err := v.Verify(oidc.ClientContext(ctx, s.cfg.HTTPClient), raw)
	if err != nil {
		return Person{}, fmt.Errorf("%w: oidc %s: ID token: %v", ErrRejected, s.cfg.Name, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Person{}, fmt.Errorf("%w: oidc %s: ID token: the nonce does not match this sign-in (a replayed token?)", ErrRejected, s.cfg.Name)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Person{}, fmt.Errorf("%w: oidc %s: ID token claims: %v", ErrRejected, s.cfg.Name, err)
	}
	person := s.person(idt.Issuer, idt.Subject, claims)
	if !s.allowed(person) {
		return Person{}, fmt.Errorf("%w: oidc %s: %s is in none of the allowed groups", ErrNotAllowed, s.cfg.Name, person.Username)
	}
	return person, nil
}

func (s *OIDCSource) person(issuer, sub string, claims map[string]any) Person {
	str := func(k string) string { v, _ := claims[k].(string); return v }
	p := Person{
		// The issuer and sub together identify the person (Core §2);
		// NUL cannot occur in an issuer URL.
		Subject:  UpstreamSubject(s.cfg.Name, issuer+"\x00"+sub),
		Username: str(s.cfg.UsernameClaim),
		Name:     str("name"),
		Email:    str(s.cfg.EmailClaim),
	}
	p.EmailVerified, _ = claims["email_verified"].(bool)
	if p.Username == "" {
		p.Username = p.Email
	}
	if p.Username == "" {
		p.Username = sub
	}
	switch g := claims[s.cfg.GroupsClaim].(type) {
	case string:
		p.Groups = []string{g}
	case []any:
		for _, x := range g {
			if name, ok := x.(string); ok && name != "" {
				p.Groups = append(p.Groups, name)
			}
		}
	}
	return p
}

// Check fetches the discovery document afresh and asks the token endpoint
// to redeem a code that does not exist: a provider that accepts the client
// credentials answers invalid_grant, one that refuses them invalid_client
// (RFC 6749 §5.2). It is for the operator's status, never the login path.
func (s *OIDCSource) Check(ctx context.Context) error {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, s.cfg.HTTPClient), s.cfg.Issuer)
	if err != nil {
		return fmt.Errorf("%w: discovery at %s: %v", ErrUnavailable, s.cfg.Issuer, err)
	}
	_, err = s.oauth2Config(p, "").Exchange(oidc.ClientContext(ctx, s.cfg.HTTPClient), "gatehouse-credential-check-"+random())
	var re *oauth2.RetrieveError
	switch {
	case err == nil:
		return fmt.Errorf("%w: the token endpoint accepted a made-up code", ErrRejected)
	case errors.As(err, &re) && (re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client" || re.Response.StatusCode == http.StatusUnauthorized):
		return fmt.Errorf("%w: client %s (%s)", ErrCredentialsRejected, s.cfg.ClientID, re.ErrorCode)
	case errors.As(err, &re):
		return nil // invalid_grant and the like: the client authenticated.
	default:
		return fmt.Errorf("%w: token endpoint: %v", ErrUnavailable, err)
	}
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
