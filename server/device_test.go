package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/clientaddr"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/throttle"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// Device clients: a public command line and a confidential kiosk that
// skips consent (which a device approval never does).
const (
	tvClientID    = "apps.tv"
	kioskClientID = "apps.kiosk"
)

var kioskSecret = mustSecret()

// runningClock is the wall clock moved by an offset: golang.org/x/oauth2
// polls on real time, and a test still skips ahead to expiry.
type runningClock struct{ offset atomic.Int64 }

func (c *runningClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *runningClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// newDeviceServer is a test server on a running clock, with the device
// clients registered.
func newDeviceServer(t *testing.T) (*testServer, *runningClock) {
	t.Helper()
	clk := &runningClock{}
	ts := newTestServerWith(t, func(o *Options) { o.Now = clk.Now })
	ts.addDeviceClients()
	return ts, clk
}

// addDeviceClients registers the device clients.
func (ts *testServer) addDeviceClients() {
	grants := func(gs ...oauthv1.GrantType) map[oauthv1.GrantType]bool {
		m := map[oauthv1.GrantType]bool{}
		for _, g := range gs {
			m[g] = true
		}
		return m
	}
	ts.update(func(s *config.Snapshot) {
		s.Clients = s.Clients.With(&config.Client{
			ID: tvClientID, DisplayName: "Orders TV", Public: true, AuthMethod: oauthv1.AuthNone,
			GrantTypes:    grants(oauthv1.GrantDeviceCode, oauthv1.GrantRefreshToken),
			AllowedScopes: []string{"openid", "profile", "offline_access", "orders:read"}, RequirePKCE: true,
		}).With(&config.Client{
			ID: kioskClientID, DisplayName: "Orders Kiosk", AuthMethod: oauthv1.AuthClientSecretBasic,
			GrantTypes: grants(oauthv1.GrantDeviceCode), AllowedScopes: []string{"orders:read"}, SkipConsent: true,
			SecretHashes: secretHash(kioskSecret), RequirePKCE: true,
		})
	})
}

func (ts *testServer) tvConfig(scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: tvClientID, Scopes: scopes, Endpoint: oauth2.Endpoint{
		DeviceAuthURL: ts.URL + endpoints.DeviceAuthorizationPath, TokenURL: ts.URL + endpoints.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
}

// kioskDeviceAuth starts a device authorization as the confidential
// kiosk, authenticating with Basic (RFC 8628 §3.1 applies RFC 6749
// §3.2.1): golang.org/x/oauth2's DeviceAuth sends a client_id only.
func (ts *testServer) kioskDeviceAuth(t *testing.T, scope string) *oauth2.DeviceAuthResponse {
	t.Helper()
	resp := ts.postForm(t, endpoints.DeviceAuthorizationPath, url.Values{"scope": {scope}}, kioskClientID, kioskSecret)
	defer resp.Body.Close()
	var da oauth2.DeviceAuthResponse
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&da) != nil || da.DeviceCode == "" {
		t.Fatalf("device authorization as the kiosk: %d %+v", resp.StatusCode, da)
	}
	return &da
}

// polls is how many token requests of the device grant ended with outcome.
func (ts *testServer) polls(outcome string) int {
	return int(testutil.ToFloat64(ts.srv.metrics.requests.WithLabelValues("token", string(oauthv1.GrantDeviceCode), outcome)))
}

var userCodeFieldRE = regexp.MustCompile(`name="user_code"[^>]*value="([^"]*)"`)

// deviceApproval is what the person saw on the way.
type deviceApproval struct {
	entryPage, consentPage, donePage string
	done                             *http.Response
}

// approveDevice plays the person: open verification_uri_complete, confirm
// the code, log in unless the browser's session knows them, and decide on
// the consent page.
func (b *browser) approveDevice(verificationURIComplete, decision string) deviceApproval {
	b.t.Helper()
	var a deviceApproval
	resp, page := b.get(verificationURIComplete)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("device page: %d %s", resp.StatusCode, page)
	}
	a.entryPage = page
	m := userCodeFieldRE.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("the device page has no user_code field:\n%s", page)
	}
	f := hiddenFields(page)
	f.Set("user_code", m[1])
	resp, page = b.post(b.ts.URL+endpoints.DevicePath, f)
	u := location(b.t, resp)
	if u.Path == endpoints.LoginPath {
		_, page = b.get(u.String())
		f := hiddenFields(page)
		f.Set("username", testUser)
		f.Set("password", testPassword)
		resp, page = b.post(b.ts.URL+endpoints.LoginPath, f)
		u = location(b.t, resp)
	}
	if u.Path != endpoints.ConsentPath {
		b.t.Fatalf("after the code (and login) the browser went to %s, want the consent page", u)
	}
	resp, a.consentPage = b.get(u.String())
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("consent page: %d %s", resp.StatusCode, a.consentPage)
	}
	cf := hiddenFields(a.consentPage)
	cf.Set("decision", decision)
	a.done, a.donePage = b.post(b.ts.URL+endpoints.ConsentPath, cf)
	_ = page
	return a
}

// TestDeviceFlow is RFC 8628 end to end with golang.org/x/oauth2 as the
// device: it asks for codes and polls (authorization_pending, never
// slow_down at its own pace) while the person enters the code, logs in
// and approves; then it has an access, a refresh and an ID token, as from
// the code flow, and the device code is spent: a replay revokes them.
func TestDeviceFlow(t *testing.T) {
	ts, _ := newDeviceServer(t)
	cfg := ts.tvConfig("openid", "profile", "offline_access", "orders:read")
	da, err := cfg.DeviceAuth(ctx(t))
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(da.UserCode) {
		t.Errorf("user_code %q: want XXXX-XXXX of the unambiguous alphabet", da.UserCode)
	}
	if da.VerificationURI != ts.URL+endpoints.DevicePath || da.VerificationURIComplete != da.VerificationURI+"?user_code="+da.UserCode ||
		da.Interval != 5 || time.Until(da.Expiry) < 9*time.Minute || time.Until(da.Expiry) > 10*time.Minute || len(da.DeviceCode) < 43 {
		t.Errorf("device authorization response %+v", da)
	}

	type polled struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan polled, 1)
	go func() {
		tok, err := cfg.DeviceAccessToken(context.Background(), da)
		done <- polled{tok, err}
	}()
	// The person arrives after the device has polled in vain.
	deadline := time.Now().Add(20 * time.Second)
	for ts.polls(ErrAuthorizationPending) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	a := newBrowser(t, ts).approveDevice(da.VerificationURIComplete, "approve")
	if !strings.Contains(a.entryPage, `value="`+da.UserCode+`"`) || !strings.Contains(a.entryPage, "Check that your device shows this same code") {
		t.Errorf("the device page does not show the code of the link for confirmation:\n%s", a.entryPage)
	}
	for _, want := range []string{"Orders TV", "on another device", "A device, not this browser, will get access", "If someone else gave you the code", "Read your orders"} {
		if !strings.Contains(a.consentPage, want) {
			t.Errorf("the consent page does not say %q:\n%s", want, a.consentPage)
		}
	}
	if strings.Contains(a.consentPage, "Remember this decision") {
		t.Error("a device approval offers to remember the decision")
	}
	if a.done.StatusCode != http.StatusOK || !strings.Contains(a.donePage, "Orders TV on your device is now signed in as alice") {
		t.Errorf("after approving: %d\n%s", a.done.StatusCode, a.donePage)
	}

	var res polled
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("DeviceAccessToken did not return within 30 s of the approval")
	}
	if res.err != nil {
		t.Fatalf("DeviceAccessToken: %v", res.err)
	}
	if n := ts.polls(ErrSlowDown); n != 0 {
		t.Errorf("golang.org/x/oauth2, polling at the interval, was told slow_down %d times", n)
	}
	tok := res.tok
	claims, _ := ts.parseAccessToken(t, tok.AccessToken)
	if claims["sub"] != testSubject || claims["client_id"] != tvClientID || claims["scope"] != "openid profile offline_access orders:read" {
		t.Errorf("access token claims %v", claims)
	}
	idToken, _ := tok.Extra("id_token").(string)
	id := jwtPayload(t, idToken)
	if id["sub"] != testSubject || fmt.Sprint(id["aud"]) != "["+tvClientID+"]" || id["sid"] != nil || id["auth_time"] == nil || id["nonce"] != nil {
		t.Errorf("ID token claims %v", id)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token with offline_access")
	}
	refreshed, err := cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || refreshed.AccessToken == "" || refreshed.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %v %+v", err, refreshed)
	}

	// Single use: the device code again is invalid_grant, and what it
	// issued is revoked.
	resp := ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {string(oauthv1.GrantDeviceCode)},
		"device_code": {da.DeviceCode}, "client_id": {tvClientID}}, "", "")
	e := assertOAuthError(t, resp, http.StatusBadRequest, ErrInvalidGrant)
	if !strings.Contains(e.Description, "already been used") {
		t.Errorf("replay: %q", e.Description)
	}
	if ts.introspect(t, tok.AccessToken)["active"] != false {
		t.Error("the replayed device code's access token is still active")
	}
	if _, err := cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token(); err == nil {
		t.Error("the replayed device code's refresh family still refreshes")
	}
}

func jwtPayload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDeviceFlowDenied: the person's "Deny" reaches the device as
// access_denied, which golang.org/x/oauth2 returns as the error.
func TestDeviceFlowDenied(t *testing.T) {
	ts, _ := newDeviceServer(t)
	cfg := ts.tvConfig("orders:read")
	da, err := cfg.DeviceAuth(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	a := newBrowser(t, ts).approveDevice(da.VerificationURIComplete, "deny")
	if !strings.Contains(a.donePage, "Orders TV on your device was not given access") {
		t.Errorf("after denying:\n%s", a.donePage)
	}
	_, err = cfg.DeviceAccessToken(ctx(t), da)
	if re := retrieveError(t, err); re.ErrorCode != ErrAccessDenied || re.Response.StatusCode != http.StatusBadRequest {
		t.Fatalf("DeviceAccessToken after the denial: %v", err)
	}
	// The exact shape, and it stays denied.
	resp := ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {string(oauthv1.GrantDeviceCode)},
		"device_code": {da.DeviceCode}, "client_id": {tvClientID}}, "", "")
	assertOAuthError(t, resp, http.StatusBadRequest, ErrAccessDenied)

	// The code is spent for the page too.
	b := newBrowser(t, ts)
	_, page := b.get(da.VerificationURIComplete)
	f := hiddenFields(page)
	f.Set("user_code", da.UserCode)
	resp2, page := b.post(ts.URL+endpoints.DevicePath, f)
	if resp2.StatusCode != http.StatusBadRequest || !strings.Contains(page, "This code has been used already") {
		t.Errorf("entering a decided code: %d\n%s", resp2.StatusCode, page)
	}
}

// TestDeviceFlowSlowDown pins RFC 8628 §3.5's interval enforcement exactly:
// a poll sooner than the interval is slow_down, and the interval is 5 s
// longer for that poll and every later one.
func TestDeviceFlowSlowDown(t *testing.T) {
	ts, clk := newDeviceServer(t)
	da := ts.kioskDeviceAuth(t, "orders:read")
	poll := func() *http.Response {
		return ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {string(oauthv1.GrantDeviceCode)}, "device_code": {da.DeviceCode}},
			kioskClientID, kioskSecret)
	}
	assertOAuthError(t, poll(), http.StatusBadRequest, ErrAuthorizationPending)
	e := assertOAuthError(t, poll(), http.StatusBadRequest, ErrSlowDown)
	if !strings.Contains(e.Description, "10 s") {
		t.Errorf("slow_down says %q; want the new interval, 10 s", e.Description)
	}
	clk.Advance(6 * time.Second) // enough for the old 5 s, not the new 10
	assertOAuthError(t, poll(), http.StatusBadRequest, ErrSlowDown)
	clk.Advance(15 * time.Second)
	assertOAuthError(t, poll(), http.StatusBadRequest, ErrAuthorizationPending)
	if got := ts.polls(ErrSlowDown); got != 2 {
		t.Errorf("slow_down counted %d times, want 2", got)
	}

	// Once approved, the next poll gets the tokens, however soon: the
	// confidential kiosk's skipConsent does not skip a device's consent.
	a := newBrowser(t, ts).approveDevice(da.VerificationURIComplete, "approve")
	if !strings.Contains(a.consentPage, "A device, not this browser, will get access") {
		t.Errorf("a skipConsent client's device approval went without the consent page:\n%s", a.consentPage)
	}
	resp := poll()
	var tok map[string]any
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&tok) != nil || tok["access_token"] == nil {
		t.Fatalf("poll after the approval: %d %v", resp.StatusCode, tok)
	}
	resp.Body.Close()
	if tok["refresh_token"] != nil || tok["id_token"] != nil {
		t.Errorf("the kiosk may not refresh and did not ask for openid, yet got %v", tok)
	}
}

// TestDeviceFlowExpired: a device code the person did not approve in time
// is expired_token, which golang.org/x/oauth2 returns; so is its user code
// on the page, and once the collector took it, the device code is unknown.
func TestDeviceFlowExpired(t *testing.T) {
	ts, clk := newDeviceServer(t)
	cfg := ts.tvConfig("orders:read")
	da, err := cfg.DeviceAuth(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(config.DefaultDeviceCodeTTL)

	_, err = cfg.DeviceAccessToken(ctx(t), da)
	if re := retrieveError(t, err); re.ErrorCode != ErrExpiredToken {
		t.Fatalf("DeviceAccessToken after expiry: %v", err)
	}
	b := newBrowser(t, ts)
	_, page := b.get(da.VerificationURIComplete)
	f := hiddenFields(page)
	f.Set("user_code", da.UserCode)
	resp, page := b.post(ts.URL+endpoints.DevicePath, f)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "That code is not valid, or it has expired") {
		t.Errorf("entering an expired code: %d\n%s", resp.StatusCode, page)
	}

	if _, err := ts.store.DeleteExpired(ctx(t), clk.Now().Add(storage.DeviceExpiredRetention)); err != nil {
		t.Fatal(err)
	}
	resp = ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {string(oauthv1.GrantDeviceCode)},
		"device_code": {da.DeviceCode}, "client_id": {tvClientID}}, "", "")
	assertOAuthError(t, resp, http.StatusBadRequest, ErrInvalidGrant)
}

// TestDeviceAuthorizationEndpoint: client authentication by the client's
// own method, the grant and the scopes are checked, and errors are RFC
// 6749 §5.2's.
func TestDeviceAuthorizationEndpoint(t *testing.T) {
	ts, _ := newDeviceServer(t)
	post := func(form url.Values, user, pass string) *http.Response {
		return ts.postForm(t, endpoints.DeviceAuthorizationPath, form, user, pass)
	}
	resp := post(url.Values{"client_id": {tvClientID}, "scope": {"openid orders:read"}}, "", "")
	var body map[string]any
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("public client: %d %v %v", resp.StatusCode, body, resp.Header)
	}
	resp.Body.Close()
	for _, k := range []string{"device_code", "user_code", "verification_uri", "verification_uri_complete", "expires_in", "interval"} {
		if body[k] == nil {
			t.Errorf("the response lacks %s: %v", k, body)
		}
	}

	ts.kioskDeviceAuth(t, "orders:read")
	assertOAuthError(t, post(url.Values{"scope": {"orders:read"}}, kioskClientID, "wrong"), http.StatusUnauthorized, ErrInvalidClient)
	assertOAuthError(t, post(url.Values{"client_id": {kioskClientID}}, "", ""), http.StatusBadRequest, ErrInvalidClient)
	assertOAuthError(t, post(url.Values{"client_id": {"apps.nobody"}}, "", ""), http.StatusBadRequest, ErrInvalidClient)
	assertOAuthError(t, post(url.Values{"client_id": {spaClientID}}, "", ""), http.StatusBadRequest, ErrUnauthorizedClient)
	assertOAuthError(t, post(url.Values{"client_id": {tvClientID}, "scope": {"orders:write"}}, "", ""), http.StatusBadRequest, ErrInvalidScope)
	assertOAuthError(t, post(url.Values{"client_id": {tvClientID}, "resource": {"https://billing.internal"}}, "", ""), http.StatusBadRequest, ErrInvalidTarget)
	resp, err := http.Get(ts.URL + endpoints.DeviceAuthorizationPath + "?client_id=" + tvClientID)
	if err != nil {
		t.Fatal(err)
	}
	assertOAuthError(t, resp, http.StatusMethodNotAllowed, ErrInvalidRequest)

	// At the token endpoint: the grant's parameters and its permission.
	tokenPost := func(form url.Values, user, pass string) *http.Response {
		form.Set("grant_type", string(oauthv1.GrantDeviceCode))
		return ts.postForm(t, endpoints.TokenPath, form, user, pass)
	}
	assertOAuthError(t, tokenPost(url.Values{"client_id": {tvClientID}}, "", ""), http.StatusBadRequest, ErrInvalidRequest)
	assertOAuthError(t, tokenPost(url.Values{"client_id": {spaClientID}, "device_code": {"x"}}, "", ""), http.StatusBadRequest, ErrUnauthorizedClient)
	// Another client's device code is invalid_grant, and its owner's
	// next poll is undisturbed.
	da, err := ts.tvConfig("orders:read").DeviceAuth(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	assertOAuthError(t, tokenPost(url.Values{"device_code": {da.DeviceCode}}, kioskClientID, kioskSecret), http.StatusBadRequest, ErrInvalidGrant)
	assertOAuthError(t, tokenPost(url.Values{"client_id": {tvClientID}, "device_code": {da.DeviceCode}}, "", ""), http.StatusBadRequest, ErrAuthorizationPending)
}

// TestDeviceUserCodeEntry: the page forgives case, dashes and spaces; a
// code that is not one of ours is refused without a lookup; wrong codes
// spend the address's login allowance, so guessing codes and passwords
// from one address share one budget.
func TestDeviceUserCodeEntry(t *testing.T) {
	ts, _ := newDeviceServer(t)
	da, err := ts.tvConfig("orders:read").DeviceAuth(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ts)
	resp, page := b.get(ts.URL + endpoints.DevicePath)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<label for="user_code">`) {
		t.Fatalf("device page: %d\n%s", resp.StatusCode, page)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "form-action 'self';") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("device page CSP %q", csp)
	}
	f := hiddenFields(page)
	enter := func(code string) (*http.Response, string) {
		f.Set("user_code", code)
		return b.post(ts.URL+endpoints.DevicePath, f)
	}
	if resp, page := enter("BCDFGHJK?"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "A code is 8 letters") {
		t.Errorf("malformed code: %d\n%s", resp.StatusCode, page)
	}
	g := url.Values{"user_code": {da.UserCode}, "csrf_token": {"forged"}}
	if resp, _ := b.post(ts.URL+endpoints.DevicePath, g); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a forged CSRF token: %d", resp.StatusCode)
	}
	sloppy := " " + strings.ToLower(da.UserCode[:2]) + " " + da.UserCode[2:4] + "--" + strings.ToLower(da.UserCode[5:]) + "\t"
	if resp, page := enter(sloppy); resp.StatusCode != http.StatusSeeOther || location(t, resp).Path != endpoints.LoginPath {
		t.Errorf("the code typed as %q: %d\n%s", sloppy, resp.StatusCode, page)
	}

	for i := range throttle.Default.IPBurst {
		wrong := "ZZZZZZZ" + string(userCodeAlphabet[i%len(userCodeAlphabet)])
		if resp, page := enter(wrong); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "That code is not valid") {
			t.Fatalf("wrong code %d: %d\n%s", i, resp.StatusCode, page)
		}
	}
	resp, page = enter(da.UserCode)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(page, "Too many wrong codes") {
		t.Fatalf("after %d wrong codes, the right one: %d %v\n%s", throttle.Default.IPBurst, resp.StatusCode, resp.Header, page)
	}
	if n := testutil.ToFloat64(ts.srv.metrics.security.WithLabelValues(EventLoginThrottled)); n != 1 {
		t.Errorf("login_throttled events: %v, want 1", n)
	}
	// The same address's password logins wait too.
	resp, _ = b.get(ts.webConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	lf := hiddenFields(func() string { _, p := b.get(location(t, resp).String()); return p }())
	lf.Set("username", testUser)
	lf.Set("password", testPassword)
	if resp, _ := b.post(ts.URL+endpoints.LoginPath, lf); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a login from the address that guessed codes: %d, want 429", resp.StatusCode)
	}
}

// TestDeviceApprovalInSignedInBrowser: a browser with a session goes from
// the code straight to the consent page, which names who is signed in.
func TestDeviceApprovalInSignedInBrowser(t *testing.T) {
	ts, _ := newDeviceServer(t)
	b := newBrowser(t, ts)
	ts.codeFor(t, b, "orders:read") // signs the browser in
	da, err := ts.tvConfig("orders:read").DeviceAuth(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	a := b.approveDevice(da.VerificationURIComplete, "approve")
	if !strings.Contains(a.consentPage, "(alice)") || a.done.StatusCode != http.StatusOK {
		t.Errorf("consent page in a signed-in browser:\n%s", a.consentPage)
	}
	tok, err := ts.tvConfig().DeviceAccessToken(ctx(t), da)
	if err != nil {
		t.Fatal(err)
	}
	if claims, _ := ts.parseAccessToken(t, tok.AccessToken); claims["sub"] != testSubject {
		t.Errorf("claims %v", claims)
	}
}

// TestDeviceMetadata: RFC 8414 metadata and OpenID Connect discovery both
// advertise the endpoint and the grant (RFC 8628 §4).
func TestDeviceMetadata(t *testing.T) {
	ts, _ := newDeviceServer(t)
	for _, path := range []string{endpoints.MetadataWellKnown, endpoints.OpenIDConfigurationPath} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
			GrantTypesSupported         []string `json:"grant_types_supported"`
		}
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil || m.DeviceAuthorizationEndpoint != ts.URL+endpoints.DeviceAuthorizationPath ||
			!strings.Contains(strings.Join(m.GrantTypesSupported, " "), string(oauthv1.GrantDeviceCode)) {
			t.Errorf("%s: %+v %v", path, m, err)
		}
	}
}

// A device approval survives no change of the client: a client that lost
// the device grant cannot be approved, and its device gets nothing.
func TestDeviceApprovalOfWithdrawnClient(t *testing.T) {
	ts, _ := newDeviceServer(t)
	da, err := ts.tvConfig("orders:read").DeviceAuth(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	ts.update(func(s *config.Snapshot) { s.Clients = s.Clients.Without(tvClientID) })
	b := newBrowser(t, ts)
	_, page := b.get(da.VerificationURIComplete)
	f := hiddenFields(page)
	f.Set("user_code", da.UserCode)
	if resp, page := b.post(ts.URL+endpoints.DevicePath, f); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "no longer registered") {
		t.Errorf("approving a removed client's code: %d\n%s", resp.StatusCode, page)
	}
}

func TestUserCodes(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	const n = 20000
	for range n {
		c := newUserCode()
		if len(c) != userCodeLength {
			t.Fatalf("user code %q", c)
		}
		for _, r := range c {
			if !strings.ContainsRune(userCodeAlphabet, r) {
				t.Fatalf("user code %q has %q", c, r)
			}
			counts[r]++
		}
		seen[c] = true
	}
	// 20,000 draws of 2.56·10^10 repeat a code with probability 0.8 %;
	// more than a few repeats would be a broken generator.
	if len(seen) < n-3 {
		t.Errorf("%d distinct user codes in %d draws", len(seen), n)
	}
	// Uniform: each letter near 1/20 of 160,000 (8,000; σ ≈ 87).
	for _, r := range userCodeAlphabet {
		if c := counts[r]; c < 7400 || c > 8600 {
			t.Errorf("letter %c drawn %d times, want about 8000", r, c)
		}
	}
	for typed, want := range map[string]string{
		"WDJB-MJHT": "WDJBMJHT", "wdjbmjht": "WDJBMJHT", " wdjb mjht ": "WDJBMJHT", "WD-JB-MJ-HT": "WDJBMJHT", "wdjb\u00a0mjht": "WDJBMJHT",
		"WDJB-MJH": "", "WDJB-MJHTB": "", "WDJB-MJH0": "", "WAJB-MJHT": "", "WDJB_MJHT": "", "ŴDJB-MJHT": "", strings.Repeat("-", 100) + "WDJBMJHT": "",
	} {
		got, ok := normalizeUserCode(typed)
		if got != want || ok != (want != "") {
			t.Errorf("normalizeUserCode(%q) = %q, %v; want %q", typed, got, ok, want)
		}
	}
	if displayUserCode("WDJBMJHT") != "WDJB-MJHT" {
		t.Error("displayUserCode")
	}
}

// TestDeviceApprovalWithUpstreamLogin: the person approving a device may
// log in through an upstream OpenID Provider (here a second Gatehouse),
// like any login; the device's tokens are for the upstream's person.
func TestDeviceApprovalWithUpstreamLogin(t *testing.T) {
	f := newFederation(t)
	f.a.addDeviceClients()
	cfg := f.a.tvConfig("openid", "orders:read")
	da, err := cfg.DeviceAuth(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	b := newFederatedBrowser(t, f)
	_, page := b.get(da.VerificationURIComplete)
	form := hiddenFields(page)
	form.Set("user_code", da.UserCode)
	resp, _ := b.post(f.a.URL+endpoints.DevicePath, form)
	resp, page = f.run(t, b, location(t, resp).String(), false)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Orders TV on your device is now signed in") {
		t.Fatalf("after the upstream login and the consent: %d\n%s", resp.StatusCode, page)
	}
	tok, err := cfg.DeviceAccessToken(ctx(t), da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	if sub, _ := jwtPayload(t, tok.AccessToken)["sub"].(string); !strings.HasPrefix(sub, "idp:corp:") {
		t.Errorf("the device's token is for %q, want the upstream's person", sub)
	}
}

// TestDeviceAuthorizationLimit: /device_authorization hands out a limited
// number of device authorizations per client address and per client
// (throttle.Issuance); beyond it, 429 with Retry-After and slow_down,
// nothing stored, a security event; another address is not held up by
// one that flooded, until the client's own allowance is spent.
func TestDeviceAuthorizationLimit(t *testing.T) {
	clk := &runningClock{}
	ts := newTestServerWith(t, func(o *Options) {
		o.Now = clk.Now
		o.DeviceAuthorizationLimit = throttle.IssuanceConfig{ClientBurst: 4, ClientInterval: time.Minute, AddressBurst: 3, AddressInterval: 10 * time.Second}
		tp, err := clientaddr.ParseTrustedProxies([]string{"127.0.0.1/32", "::1/128"}, "")
		if err != nil {
			t.Fatal(err)
		}
		o.TrustedProxies = tp
	})
	ts.addDeviceClients()
	ask := func(from string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, ts.URL+endpoints.DeviceAuthorizationPath,
			strings.NewReader(url.Values{"client_id": {tvClientID}, "scope": {"orders:read"}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i := range 3 {
		if resp := ask("192.0.2.1"); resp.StatusCode != http.StatusOK {
			t.Fatalf("device authorization %d: %d", i, resp.StatusCode)
		}
	}
	e := assertOAuthError(t, ask("192.0.2.1"), http.StatusTooManyRequests, ErrSlowDown)
	if e.Header.Get("Retry-After") != "10" || !strings.Contains(e.Description, "from this address") {
		t.Errorf("the fourth from one address: Retry-After %q, %q", e.Header.Get("Retry-After"), e.Description)
	}
	if n := testutil.ToFloat64(ts.srv.metrics.security.WithLabelValues(EventDeviceAuthorizationThrottled)); n != 1 {
		t.Errorf("device_authorization_throttled events: %v, want 1", n)
	}
	// Another address gets the client's last one; then the client's
	// allowance is spent for every address.
	if resp := ask("192.0.2.2"); resp.StatusCode != http.StatusOK {
		t.Fatalf("another address: %d", resp.StatusCode)
	}
	e = assertOAuthError(t, ask("192.0.2.3"), http.StatusTooManyRequests, ErrSlowDown)
	if e.Header.Get("Retry-After") != "60" || !strings.Contains(e.Description, "for this client") {
		t.Errorf("beyond the client's allowance: Retry-After %q, %q", e.Header.Get("Retry-After"), e.Description)
	}
	// The kiosk, another client, is not held up by the TV's allowance.
	ts.kioskDeviceAuth(t, "orders:read")
	clk.Advance(time.Minute)
	if resp := ask("192.0.2.3"); resp.StatusCode != http.StatusOK {
		t.Errorf("a minute later: %d", resp.StatusCode)
	}
}

// TestDeviceGrantIsNotInTheBrowserSession: a person signed in to an app
// in their browser approves two devices there. The devices are other user
// agents: their ID token has no sid, and the browser's sign-out leaves
// their refresh tokens working (one without offline_access, which a
// family of the browser's session would lose); a device's ID token as an
// id_token_hint ends no browser session. Ending the person everywhere
// (RevokePerson, as a SessionRevocation does) still revokes the device.
func TestDeviceGrantIsNotInTheBrowserSession(t *testing.T) {
	ts, _ := newDeviceServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid")
	b := newBrowser(t, ts)
	appTok := rp.login(t, b, "n", true)
	device := func(scope string) map[string]any {
		t.Helper()
		da, err := ts.tvConfig(scope).DeviceAuth(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if a := b.approveDevice(da.VerificationURIComplete, "approve"); a.done.StatusCode != http.StatusOK {
			t.Fatalf("approval: %d", a.done.StatusCode)
		}
		resp := ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {string(oauthv1.GrantDeviceCode)},
			"device_code": {da.DeviceCode}, "client_id": {tvClientID}}, "", "")
		defer resp.Body.Close()
		var tok map[string]any
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&tok) != nil {
			t.Fatalf("device token: %d", resp.StatusCode)
		}
		return tok
	}
	api := device("orders:read")
	idDevice := device("openid profile")
	if id := jwtPayload(t, idDevice["id_token"].(string)); id["sid"] != nil || id["sub"] != testSubject {
		t.Errorf("the device's ID token %v: want the person and no sid", id)
	}
	refresh := func(rt string) (string, error) {
		tok, err := ts.tvConfig().TokenSource(ctx(t), &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			return "", err
		}
		return tok.RefreshToken, nil
	}
	rt, err := refresh(api["refresh_token"].(string))
	if err != nil {
		t.Fatalf("device refresh: %v", err)
	}

	// The device's ID token as a hint, from the device's side (no cookie).
	resp, err := http.Get(endSessionURL(ts, url.Values{"id_token_hint": {idDevice["id_token"].(string)}}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !signedIn(t, b, rp) {
		t.Fatal("the device's id_token_hint ended the browser's session")
	}

	// The browser signs out of the app.
	resp, _ = b.get(endSessionURL(ts, url.Values{"id_token_hint": {appTok.Extra("id_token").(string)}}))
	if resp.StatusCode != http.StatusOK || signedIn(t, b, rp) {
		t.Fatalf("the browser's sign-out: %d, or still signed in", resp.StatusCode)
	}
	if rt, err = refresh(rt); err != nil {
		t.Fatalf("the browser's sign-out revoked the device's grant: %v", err)
	}

	if _, err := ts.srv.RevokePerson(ctx(t), testSubject, "INC-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := refresh(rt); err == nil {
		t.Error("ending the person left the device's grant working")
	}
}
