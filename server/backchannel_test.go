package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// logoutReceiver is a relying party's back-channel logout endpoint
// (Back-Channel Logout 1.0 §2.5): it records the logout tokens POSTed to
// it and answers with status (200 unless set), after delay.
type logoutReceiver struct {
	*httptest.Server
	status atomic.Int32
	delay  atomic.Int64
	got    chan string
}

func newLogoutReceiver(t testing.TB) *logoutReceiver {
	r := &logoutReceiver{got: make(chan string, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if d := time.Duration(r.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-req.Context().Done():
				return
			}
		}
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "want a form POST", http.StatusBadRequest)
			return
		}
		_ = req.ParseForm()
		r.got <- req.PostForm.Get("logout_token")
		if s := r.status.Load(); s != 0 {
			w.WriteHeader(int(s))
		}
	}))
	t.Cleanup(func() { r.CloseClientConnections(); r.Close() })
	return r
}

// next waits for the next logout token.
func (r *logoutReceiver) next(t testing.TB) string {
	t.Helper()
	select {
	case tok := <-r.got:
		return tok
	case <-time.After(10 * time.Second):
		t.Fatal("no logout token arrived")
		return ""
	}
}

// none checks that no logout token arrives for a while.
func (r *logoutReceiver) none(t testing.TB, wait time.Duration) {
	t.Helper()
	select {
	case tok := <-r.got:
		t.Fatalf("an unexpected logout token arrived: %s", tok)
	case <-time.After(wait):
	}
}

// withBackchannelRP registers another OpenID Connect client, apps.<name>,
// with a back-channel logout URI (nil receiver: none), and returns its
// relying party.
func withBackchannelRP(t *testing.T, ts *testServer, name string, r *logoutReceiver, sessionRequired bool) *relyingParty {
	t.Helper()
	id, secret := "apps."+name, mustSecret()
	c := &config.Client{
		ID: id, Namespace: "apps", DisplayName: name, AuthMethod: oauthv1.AuthClientSecretBasic, SkipConsent: true,
		GrantTypes:   map[oauthv1.GrantType]bool{oauthv1.GrantAuthorizationCode: true, oauthv1.GrantRefreshToken: true},
		RedirectURIs: []string{oidcRedirect}, RequirePKCE: true, SecretHashes: secretHash(secret),
		AllowedScopes: []string{"openid", "profile", "offline_access", "orders:read"},
	}
	if r != nil {
		c.Backchannel = &config.Backchannel{URI: r.URL + "/backchannel-logout", SessionRequired: sessionRequired}
	}
	ts.update(func(s *config.Snapshot) { s.Clients = s.Clients.With(c) })
	rp := newRelyingParty(t, ts, "openid")
	rp.cfg.ClientID, rp.cfg.ClientSecret = id, secret
	rp.verifier = rp.provider.Verifier(&oidc.Config{ClientID: id, Now: ts.clock.Now})
	return rp
}

// runBackchannel runs the server's dispatcher for the test.
func runBackchannel(t *testing.T, ts *testServer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ts.srv.RunBackchannel(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// fastRetries: deliveries retried after 1s, 2s, 4s… of the test clock,
// the outbox read every 10ms of real time.
func fastRetries(o *Options) {
	o.Backchannel = BackchannelOptions{Poll: 10 * time.Millisecond, FirstRetry: time.Second, MaxRetryWait: 4 * time.Second,
		MaxAttempts: 4, Timeout: 500 * time.Millisecond}
}

// verifyLogoutToken checks a logout token as Back-Channel Logout 1.0 §2.6
// says a relying party must, with go-oidc's verifier (signature against
// the discovered JWKS, iss, aud, exp) and the rest by hand, and returns
// its claims.
func verifyLogoutToken(t *testing.T, rp *relyingParty, raw string) map[string]any {
	t.Helper()
	if typ := jwtHeader(t, raw)["typ"]; typ != "logout+jwt" {
		t.Errorf("logout token typ = %v, want logout+jwt", typ)
	}
	idt, err := rp.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("go-oidc rejects the logout token: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	events, _ := claims["events"].(map[string]any)
	if _, ok := events["http://schemas.openid.net/event/backchannel-logout"].(map[string]any); !ok || len(events) != 1 {
		t.Errorf("events = %v", claims["events"])
	}
	if _, ok := claims["nonce"]; ok {
		t.Error("a logout token carries a nonce (§2.4 forbids it)")
	}
	for _, c := range []string{"iat", "exp", "jti"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("the logout token has no %s", c)
		}
	}
	if claims["sub"] == nil && claims["sid"] == nil {
		t.Error("the logout token has neither sub nor sid")
	}
	return claims
}

// TestEndSessionByIDTokenHintWithoutCookie: a relying party's back end
// (no cookie) sending end_session the person's ID token ends the session
// that ID token names (its sid), and only that one.
func TestEndSessionByIDTokenHintWithoutCookie(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid")
	laptop, phone := newBrowser(t, ts), newBrowser(t, ts)
	tok := rp.login(t, laptop, "n", true)
	rp.login(t, phone, "n", true)
	_, claims := rp.verify(t, tok)
	sid, _ := claims["sid"].(string)
	if _, err := ts.store.GetSessionByID(ctx(t), sid, ts.clock.Now()); err != nil {
		t.Fatalf("the ID token's sid %q names no session: %v", sid, err)
	}

	backEnd := &http.Client{} // no cookie jar
	resp, err := backEnd.Get(endSessionURL(ts, url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("back-channel end_session: %d", resp.StatusCode)
	}
	if signedIn(t, laptop, rp) {
		t.Error("the session the hint names survived")
	}
	if !signedIn(t, phone, rp) {
		t.Error("another session of the same person ended")
	}
	// A second call finds nothing to end and still answers.
	resp, err = backEnd.Get(endSessionURL(ts, url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("ending an ended session: %d", resp.StatusCode)
	}
}

// TestBackchannelLogoutOnEndSession: the person signed in to three apps in
// one browser session; one of them signs them out. The other two with a
// back-channel URI get a logout token naming the session (sid, as in
// their ID tokens) and the person, signed like their ID tokens; the one
// that asked gets none. A family without offline_access ends with the
// session, an offline one does not.
func TestBackchannelLogoutOnEndSession(t *testing.T) {
	ts := newTestServerWith(t, fastRetries)
	withOIDC(t, ts)
	runBackchannel(t, ts)
	wikiRecv, chatRecv, askerRecv := newLogoutReceiver(t), newLogoutReceiver(t), newLogoutReceiver(t)
	wiki := withBackchannelRP(t, ts, "wiki", wikiRecv, true)
	chat := withBackchannelRP(t, ts, "chat", chatRecv, false)
	asker := withBackchannelRP(t, ts, "asker", askerRecv, false)
	b := newBrowser(t, ts)
	wikiTok := wiki.login(t, b, "n", false)
	chat.cfg.Scopes = []string{"openid", "offline_access"}
	chatTok := chat.login(t, b, "n", false)
	askerTok := asker.login(t, b, "n", false)
	_, wikiClaims := wiki.verify(t, wikiTok)
	sid := wikiClaims["sid"].(string)
	// A plain OAuth app in the same session: its refresh token has no
	// offline access, and ends with the session.
	web := &oauth2.Config{ClientID: webClientID, ClientSecret: webSecret, RedirectURL: webRedirect, Scopes: []string{"orders:read"},
		Endpoint: oauth2.Endpoint{AuthURL: ts.URL + "/authorize", TokenURL: ts.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
	v := oauth2.GenerateVerifier()
	back := b.authorize(web.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), "approve", false)
	webTok, err := web.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil || webTok.RefreshToken == "" {
		t.Fatalf("web app: %+v, %v", webTok, err)
	}

	resp, _ := b.get(endSessionURL(ts, url.Values{"id_token_hint": {askerTok.Extra("id_token").(string)}}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("end_session: %d", resp.StatusCode)
	}
	for _, c := range []struct {
		rp   *relyingParty
		recv *logoutReceiver
		id   string
	}{{wiki, wikiRecv, "apps.wiki"}, {chat, chatRecv, "apps.chat"}} {
		claims := verifyLogoutToken(t, c.rp, c.recv.next(t))
		if claims["sid"] != sid || claims["sub"] != testSubject || claims["aud"] != c.id || claims["iss"] != ts.URL {
			t.Errorf("%s's logout token: %v", c.id, claims)
		}
	}
	askerRecv.none(t, 200*time.Millisecond)

	// The web app's refresh token ended with the session; the chat's
	// offline one did not.
	if _, err := web.TokenSource(ctx(t), &oauth2.Token{RefreshToken: webTok.RefreshToken}).Token(); err == nil {
		t.Error("a refresh token without offline_access outlived its session")
	}
	if _, err := chat.cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: chatTok.RefreshToken}).Token(); err != nil {
		t.Errorf("an offline refresh token ended with the session: %v", err)
	}
	if n := testutil.ToFloat64(ts.srv.metrics.backchannelLogouts.WithLabelValues("delivered")); n != 2 {
		t.Errorf("delivered = %v, want 2", n)
	}
}

// TestBackchannelRetriesThenGivesUp: a relying party that fails is tried
// again with backoff until it answers; one that never does is abandoned
// after MaxAttempts, with a Warning Event on its OAuthClient and the
// abandoned count.
func TestBackchannelRetriesThenGivesUp(t *testing.T) {
	events := &recordedEvents{}
	ts := newTestServerWith(t, func(o *Options) { fastRetries(o); o.Events = events })
	withOIDC(t, ts)
	runBackchannel(t, ts)
	flakyRecv, deadRecv := newLogoutReceiver(t), newLogoutReceiver(t)
	flakyRecv.status.Store(http.StatusServiceUnavailable)
	deadRecv.status.Store(http.StatusInternalServerError)
	flaky := withBackchannelRP(t, ts, "flaky", flakyRecv, false)
	dead := withBackchannelRP(t, ts, "dead", deadRecv, false)
	b := newBrowser(t, ts)
	flaky.login(t, b, "n", false)
	dead.login(t, b, "n", false)
	confirmLogout(t, b)

	first := flakyRecv.next(t)
	deadRecv.next(t)
	flakyRecv.status.Store(http.StatusNoContent)
	// Nothing before the retry is due.
	flakyRecv.none(t, 100*time.Millisecond)
	ts.clock.Advance(time.Second)
	second := flakyRecv.next(t)
	c1, c2 := verifyLogoutToken(t, flaky, first), verifyLogoutToken(t, flaky, second)
	if c1["jti"] != c2["jti"] {
		t.Errorf("a retry has another jti: %v, %v", c1["jti"], c2["jti"])
	}
	// The dead one: attempts 2, 3 and 4 after 1s, 2s and 4s, then no more.
	for _, wait := range []time.Duration{0, 2 * time.Second, 4 * time.Second} {
		ts.clock.Advance(wait)
		deadRecv.next(t)
	}
	ts.clock.Advance(time.Hour)
	deadRecv.none(t, 200*time.Millisecond)
	m := ts.srv.metrics
	if d, a := testutil.ToFloat64(m.backchannelLogouts.WithLabelValues("delivered")), testutil.ToFloat64(m.backchannelLogouts.WithLabelValues("abandoned")); d != 1 || a != 1 {
		t.Errorf("delivered %v, abandoned %v; want 1 and 1", d, a)
	}
	if n := testutil.ToFloat64(m.backchannelAttempts.WithLabelValues("http_5xx")); n != 5 {
		t.Errorf("5xx attempts = %v, want 5 (1 of the flaky one, 4 of the dead one)", n)
	}
	got := events.all()
	if len(got) != 1 || got[0].client != "apps.dead" || got[0].reason != ReasonBackchannelLogoutFailed ||
		!strings.Contains(got[0].message, "after 4 attempts") || !strings.Contains(got[0].message, "500") {
		t.Errorf("events = %+v", got)
	}
	if claimed, _ := ts.store.ClaimLogoutDeliveries(ctx(t), 10, 10, nil, time.Minute, ts.clock.Now()); len(claimed) != 0 {
		t.Errorf("the outbox still holds %+v", claimed)
	}
}

// TestSlowRelyingPartyBlocksNobody: a relying party that never answers
// costs its own attempts their timeout, and no more: the logout page
// answers at once, and twenty others get their logout tokens meanwhile.
func TestSlowRelyingPartyBlocksNobody(t *testing.T) {
	ts := newTestServerWith(t, func(o *Options) {
		fastRetries(o)
		o.Backchannel.Workers, o.Backchannel.Timeout = 4, 2*time.Second
	})
	withOIDC(t, ts)
	runBackchannel(t, ts)
	slowRecv := newLogoutReceiver(t)
	slowRecv.delay.Store(int64(time.Minute))
	b := newBrowser(t, ts)
	// The slow one first, so that it is due first.
	withBackchannelRP(t, ts, "slow", slowRecv, false).login(t, b, "n", false)
	var others []*logoutReceiver
	for i := range 20 {
		r := newLogoutReceiver(t)
		others = append(others, r)
		withBackchannelRP(t, ts, fmt.Sprintf("app%d", i), r, false).login(t, b, "n", false)
	}
	began := time.Now()
	confirmLogout(t, b)
	if d := time.Since(began); d > time.Second {
		t.Errorf("the logout page took %s", d)
	}
	for _, r := range others {
		r.next(t)
	}
	if d := time.Since(began); d > 1500*time.Millisecond {
		t.Errorf("the others' logout tokens took %s with a slow relying party of a 2s timeout among them", d)
	}
}

// confirmLogout signs b out through the confirmation page.
func confirmLogout(t *testing.T, b *browser) {
	t.Helper()
	resp, page := b.get(endSessionURL(b.ts, url.Values{}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("end_session: %d", resp.StatusCode)
	}
	f := hiddenFields(page)
	f.Set("decision", "logout")
	if resp, page = b.post(b.ts.URL+"/logout", f); resp.StatusCode != http.StatusOK || !strings.Contains(page, "signed out") {
		t.Fatalf("confirmed logout: %d %s", resp.StatusCode, page)
	}
}

type recordedEvent struct{ client, reason, message string }

// recordedEvents is a ClientEvents that keeps what it is given.
type recordedEvents struct {
	mu     sync.Mutex
	events []recordedEvent
}

func (r *recordedEvents) Warning(c *config.Client, reason, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, recordedEvent{c.ID, reason, message})
}

func (r *recordedEvents) all() []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// TestBackchannelDropsWhatItCannotDeliver: a client deleted since the
// logout, or one that needs a sid, given a logout of the person as a
// whole, gets nothing, and the delivery leaves the outbox.
func TestBackchannelDropsWhatItCannotDeliver(t *testing.T) {
	ts := newTestServerWith(t, fastRetries)
	withOIDC(t, ts)
	goneRecv, sidRecv := newLogoutReceiver(t), newLogoutReceiver(t)
	gone := withBackchannelRP(t, ts, "gone", goneRecv, false)
	sidOnly := withBackchannelRP(t, ts, "sid-only", sidRecv, true)
	sidOnly.cfg.Scopes = []string{"openid", "offline_access"}
	offline := newBrowser(t, ts)
	if tok := sidOnly.login(t, offline, "n", false); tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	gone.login(t, newBrowser(t, ts), "n", false)
	// The sid-only app's offline grant outlives its session; then an
	// administrator revokes everything of the person: that grant gets a
	// logout token without a sid, which the app cannot use.
	if _, err := ts.store.EndSessions(ctx(t), storage.SessionSelector{Hash: storage.HashToken(readSessionCookie(t, offline))},
		storage.EndOptions{OfflineScope: "offline_access"}, ts.clock.Now()); err != nil {
		t.Fatal(err)
	}
	ended, err := ts.srv.RevokePerson(ctx(t), testSubject, "test")
	if err != nil || len(ended.Deliveries) != 2 {
		t.Fatalf("RevokePerson: %+v, %v", ended, err)
	}
	ts.update(func(s *config.Snapshot) { s.Clients = s.Clients.Without("apps.gone") })
	runBackchannel(t, ts)
	goneRecv.none(t, 200*time.Millisecond)
	sidRecv.none(t, 0)
	if n := testutil.ToFloat64(ts.srv.metrics.backchannelLogouts.WithLabelValues("dropped")); n != 2 {
		t.Errorf("dropped = %v, want 2", n)
	}
}

// TestRevokePerson: an administrator's revocation ends every session of
// the person, revokes every refresh token (offline ones too) and their
// access tokens, forgets their consents, and tells every app: those of a
// session with its sid, one holding a grant outside any session with the
// subject alone.
func TestRevokePerson(t *testing.T) {
	ts := newTestServerWith(t, fastRetries)
	withOIDC(t, ts)
	runBackchannel(t, ts)
	inRecv := newLogoutReceiver(t)
	in := withBackchannelRP(t, ts, "in-session", inRecv, false)
	in.cfg.Scopes = []string{"openid", "offline_access"}
	b := newBrowser(t, ts)
	inTok := in.login(t, b, "n", false)
	rp := newRelyingParty(t, ts, "openid", "offline_access")
	rpTok := rp.login(t, b, "n", true)

	ended, err := ts.srv.RevokePerson(ctx(t), testSubject, "INC-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ended.Sessions) != 1 || ended.FamiliesRevoked != 2 || ended.ConsentsDeleted != 1 || len(ended.Deliveries) != 1 {
		t.Fatalf("RevokePerson: %+v", ended)
	}
	claims := verifyLogoutToken(t, in, inRecv.next(t))
	if claims["sub"] != testSubject || claims["sid"] == nil {
		t.Errorf("logout token %v", claims)
	}
	for _, c := range []struct {
		cfg *oauth2.Config
		tok *oauth2.Token
	}{{in.cfg, inTok}, {rp.cfg, rpTok}} {
		if _, err := c.cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: c.tok.RefreshToken}).Token(); err == nil {
			t.Errorf("%s's offline refresh token survived", c.cfg.ClientID)
		}
	}
	// Its access tokens introspect as inactive.
	resp := ts.postForm(t, "/introspect", url.Values{"token": {rpTok.AccessToken}}, oidcClientID, oidcSecret)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"active":false`) {
		t.Errorf("introspection after the revocation: %s", body)
	}
	if signedIn(t, b, rp) {
		t.Error("the browser is still signed in")
	}
}

// TestRemovedPersonIsLoggedOut: removing a person from the users Secret
// ends their sessions at once and tells their apps; removing an identity
// provider does so for all of its people. A users Secret that cannot be
// read removes nobody.
func TestRemovedPersonIsLoggedOut(t *testing.T) {
	ts := newTestServerWith(t, fastRetries)
	withOIDC(t, ts)
	runBackchannel(t, ts)
	recv := newLogoutReceiver(t)
	app := withBackchannelRP(t, ts, "app", recv, false)
	app.login(t, newBrowser(t, ts), "n", false)
	// An upstream person's session, made directly.
	upstream := "idp:corp:abc"
	hash := storage.HashToken("corp-cookie")
	if err := ts.store.CreateSession(ctx(t), storage.Session{Hash: hash, ID: sessionID(hash), Subject: upstream, AuthTime: ts.clock.Now(),
		ExpiresAt: ts.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	before := ts.snap()
	unreadable := *before
	unreadable.Users, unreadable.UsersUnavailable = nil, true
	ts.srv.endRemoved(ctx(t), before, &unreadable)
	recv.none(t, 100*time.Millisecond)

	after := *before
	dir, err := users.Parse([]byte("users: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	after.Users = dir
	ts.srv.endRemoved(ctx(t), before, &after)
	if claims := verifyLogoutToken(t, app, recv.next(t)); claims["sub"] != testSubject {
		t.Errorf("logout token %v", claims)
	}
	if sels := removedPeople(withProvider(before, "corp"), before); !slices.Equal(sels, []storage.SessionSelector{{SubjectPrefix: "idp:corp:"}}) {
		t.Fatalf("removing provider corp: %+v", sels)
	}
	ts.srv.endRemoved(ctx(t), withProvider(before, "corp"), before)
	if _, err := ts.store.GetSessionByID(ctx(t), sessionID(hash), ts.clock.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the removed provider's person still has a session: %v", err)
	}
}

// withProvider is snap with an identity provider named name.
func withProvider(snap *config.Snapshot, name string) *config.Snapshot {
	cp := *snap
	cp.Identity = identity.NewSet(identity.SecretSource{Dir: snap.Users}, &identity.BrokenRedirect{Broken: identity.Broken{ProviderName: name}})
	return &cp
}

// TestAnotherPersonSigningInEndsTheSession: a new login in the same
// browser as someone else ends the previous person's session and tells
// their apps; the same person signing in again does not.
func TestAnotherPersonSigningInEndsTheSession(t *testing.T) {
	ts := newTestServerWith(t, fastRetries)
	withOIDC(t, ts)
	runBackchannel(t, ts)
	recv := newLogoutReceiver(t)
	app := withBackchannelRP(t, ts, "app", recv, false)
	b := newBrowser(t, ts)
	app.login(t, b, "n", false)
	// The same person again (prompt=login): nothing is sent.
	v := oauth2.GenerateVerifier()
	back := b.authorize(app.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("prompt", "login")), "approve", false)
	if _, err := app.cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(v)); err != nil {
		t.Fatal(err)
	}
	recv.none(t, 200*time.Millisecond)
	// Another person: the old session ends.
	old := readSessionCookie(t, b)
	oldSess, err := ts.store.GetSession(ctx(t), storage.HashToken(old), ts.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	ts.srv.replaceSession(ctx(t), ts.snap(), oldSess.Hash, "someone-else", ts.clock.Now())
	if claims := verifyLogoutToken(t, app, recv.next(t)); claims["sid"] != oldSess.ID {
		t.Errorf("logout token %v", claims)
	}
}

func readSessionCookie(t *testing.T, b *browser) string {
	t.Helper()
	u, _ := url.Parse(b.ts.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// unreachable is an address nothing listens on.
func unreachable(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/backchannel-logout"
}
