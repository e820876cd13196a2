package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	gatehouseoidc "github.com/gatehouse-dev/gatehouse/internal/oidc"
)

// execCredentialAPIVersion is what `gatehouse login` answers in unless
// kubectl asks for another (client-go's exec credential plugins).
const execCredentialAPIVersion = "client.authentication.k8s.io/v1"

type loginFlags struct {
	issuer, clientID, caFile, cacheDir string
	scopes                             []string
	timeout                            time.Duration
	openBrowser                        bool
	// device asks for the device flow; deviceSet says --device was given
	// at all, so that --device=false rules out the automatic choice.
	device, deviceSet bool
}

func parseLoginFlags(args []string, stderr io.Writer) (*loginFlags, error) {
	f := &loginFlags{}
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.issuer, "issuer", "", "the Gatehouse issuer URL (required)")
	fs.StringVar(&f.clientID, "client-id", "", "client_id of a public OAuthClient allowing the redirect URI http://127.0.0.1/callback (required)")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM CA certificate to trust for the issuer, e.g. gatehouse dev's local CA (default: the system's)")
	scopes := fs.String("scopes", strings.Join([]string{gatehouseoidc.ScopeOpenID, gatehouseoidc.ScopeProfile, gatehouseoidc.ScopeEmail,
		gatehouseoidc.ScopeGroups, gatehouseoidc.ScopeOfflineAccess}, " "), "scopes to request, space-separated; must include openid")
	def, _ := os.UserCacheDir()
	fs.StringVar(&f.cacheDir, "cache-dir", filepath.Join(def, "gatehouse", "login"), "where ID and refresh tokens are kept between runs")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long to wait for the login in the browser, or for the approval of the device flow's code")
	fs.BoolVar(&f.openBrowser, "open-browser", true, "open the login page with xdg-open or open; it is printed either way")
	fs.BoolVar(&f.device, "device", false, "log in with a code entered in a browser on any other device (RFC 8628 device flow), for hosts with no browser; "+
		"chosen by itself when no browser can open here (no DISPLAY or WAYLAND_DISPLAY, or no xdg-open; on macOS, an SSH session) and the issuer offers it; --device=false never")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gatehouse login --issuer URL --client-id ID [flags]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Logs in with OpenID Connect (authorization code with PKCE, loopback redirect, RFC 8252;")
		fmt.Fprintln(stderr, "or, with --device or where no browser can open, the device flow of RFC 8628) and prints a")
		fmt.Fprintln(stderr, "client.authentication.k8s.io ExecCredential holding the ID token: a kubectl exec credential")
		fmt.Fprintln(stderr, "plugin. Tokens are cached; a refresh token renews them without a browser.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	fs.Visit(func(fl *flag.Flag) { f.deviceSet = f.deviceSet || fl.Name == "device" })
	f.scopes = strings.Fields(*scopes)
	switch {
	case f.issuer == "" || f.clientID == "":
		return nil, fmt.Errorf("%w: --issuer and --client-id are required", errUsage)
	case !strings.HasPrefix(f.issuer, "https://") && !strings.HasPrefix(f.issuer, "http://"):
		return nil, fmt.Errorf("%w: --issuer must be an http(s) URL, not %q", errUsage, f.issuer)
	case !slices.Contains(f.scopes, gatehouseoidc.ScopeOpenID):
		return nil, fmt.Errorf("%w: --scopes must include openid: the credential is an ID token", errUsage)
	case f.timeout <= 0:
		return nil, fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	return f, nil
}

// login is one run of `gatehouse login`.
type login struct {
	flags    *loginFlags
	stderr   io.Writer
	ctx      context.Context // carries the HTTP client trusting --ca-file
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	cache    string
}

// openBrowser shows the login page to the person; tests replace it.
var openBrowser = func(url string) error {
	for _, cmd := range []string{"xdg-open", "open"} {
		if path, err := exec.LookPath(cmd); err == nil {
			return exec.Command(path, url).Start()
		}
	}
	return errors.New("no xdg-open or open")
}

// runLogin is `gatehouse login`: a cached ID token while it is valid for
// another minute, else one from the refresh token, else a login in the
// browser, on this host or (the device flow) on any other.
func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseLoginFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	l, err := newLogin(ctx, f, stderr)
	if err != nil {
		return err
	}
	c := l.readCache()
	raw := c.IDToken
	tok, err := l.verify(raw, "")
	if err != nil || time.Until(tok.Expiry) < time.Minute {
		if raw, err = l.refresh(c.RefreshToken); err != nil {
			raw, err = l.logIn()
		}
		if err != nil {
			return err
		}
		if tok, err = l.verify(raw, ""); err != nil {
			return err
		}
	}
	return writeExecCredential(stdout, raw, tok.Expiry)
}

func newLogin(ctx context.Context, f *loginFlags, stderr io.Writer) (*login, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", f.caFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	ctx = oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, hc), hc)
	provider, err := oidc.NewProvider(ctx, f.issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	key := sha256.Sum256([]byte(f.issuer + "\x00" + f.clientID + "\x00" + strings.Join(f.scopes, " ")))
	return &login{
		flags: f, stderr: stderr, ctx: ctx,
		oauth:    oauth2.Config{ClientID: f.clientID, Endpoint: provider.Endpoint(), Scopes: f.scopes},
		verifier: provider.Verifier(&oidc.Config{ClientID: f.clientID}),
		cache:    filepath.Join(f.cacheDir, hex.EncodeToString(key[:12])+".json"),
	}, nil
}

// loginCache is what is kept between runs, readable only by its owner.
type loginCache struct {
	IDToken      string `json:"id_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

func (l *login) readCache() loginCache {
	var c loginCache
	if b, err := os.ReadFile(l.cache); err == nil {
		_ = json.Unmarshal(b, &c) // a damaged cache only costs a login
	}
	return c
}

func (l *login) writeCache(c loginCache) error {
	if err := os.MkdirAll(filepath.Dir(l.cache), 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(c)
	tmp := l.cache + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, l.cache)
}

// verify checks an ID token's signature (keys from discovery), issuer,
// audience and expiry, and the nonce of the request that got it.
func (l *login) verify(raw, nonce string) (*oidc.IDToken, error) {
	if raw == "" {
		return nil, errors.New("no ID token")
	}
	tok, err := l.verifier.Verify(l.ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("the ID token: %w", err)
	}
	if nonce != "" && tok.Nonce != nonce {
		return nil, errors.New("the ID token's nonce is not this login's")
	}
	return tok, nil
}

// keep caches a token response's ID and refresh tokens and returns the ID
// token.
func (l *login) keep(tok *oauth2.Token, old string) (string, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errors.New("the token response has no id_token")
	}
	refresh := tok.RefreshToken
	if refresh == "" {
		refresh = old
	}
	return raw, l.writeCache(loginCache{IDToken: raw, RefreshToken: refresh})
}

// refresh renews the ID token with the refresh token (OpenID Connect Core
// §12), which rotates.
func (l *login) refresh(refreshToken string) (string, error) {
	if refreshToken == "" {
		return "", errors.New("no refresh token")
	}
	tok, err := l.oauth.TokenSource(l.ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return "", err
	}
	return l.keep(tok, refreshToken)
}

// writeExecCredential prints the ID token as kubectl's exec plugin answer,
// in the API version kubectl asked for; kubectl runs the plugin again
// when the token expires.
func writeExecCredential(w io.Writer, raw string, expiry time.Time) error {
	apiVersion := execCredentialAPIVersion
	var info struct {
		APIVersion string `json:"apiVersion"`
	}
	if json.Unmarshal([]byte(os.Getenv("KUBERNETES_EXEC_INFO")), &info) == nil && strings.HasPrefix(info.APIVersion, "client.authentication.k8s.io/") {
		apiVersion = info.APIVersion
	}
	return json.NewEncoder(w).Encode(map[string]any{
		"apiVersion": apiVersion,
		"kind":       "ExecCredential",
		"status":     map[string]any{"token": raw, "expirationTimestamp": expiry.UTC().Format(time.RFC3339)},
	})
}
