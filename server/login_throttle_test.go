package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/clientaddr"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/internal/devicecookie"
	"github.com/gatehouse-dev/gatehouse/server/internal/throttle"
)

// The issue 14 attack: behind a proxy, a spray of wrong passwords for
// random usernames must not lock everyone out. With the proxy trusted, the
// attacker's real address is throttled and a person elsewhere, whose
// account is not under attack, signs in; the attacker cannot escape by
// writing addresses into X-Forwarded-For.
func TestLoginSprayBehindProxyLocksOutOnlyTheAttacker(t *testing.T) {
	ts := newTestServerWith(t, func(o *Options) {
		tp, err := clientaddr.ParseTrustedProxies([]string{"127.0.0.1/32", "::1/128"}, "")
		if err != nil {
			t.Fatal(err)
		}
		o.TrustedProxies = tp
	})
	// through the proxy: it appends the real address to what the client sent.
	login := func(b *browser, realAddr, spoofed, username, password string) int {
		t.Helper()
		resp, _ := b.get(ts.webConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		_, page := b.get(location(t, resp).String())
		f := hiddenFields(page)
		f.Set("username", username)
		f.Set("password", password)
		req, _ := http.NewRequest(http.MethodPost, ts.URL+endpoints.LoginPath, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", strings.TrimPrefix(spoofed+", "+realAddr, ", "))
		resp, _ = b.do(req)
		return resp.StatusCode
	}

	attacker := newBrowser(t, ts)
	refused := 0
	for i := range throttle.Default.IPBurst + 5 {
		spoofed := fmt.Sprintf("192.0.2.%d", i)
		switch status := login(attacker, "203.0.113.9", spoofed, fmt.Sprintf("user-%d", i), "guess"); status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("attempt %d: %d", i, status)
		}
	}
	if refused != 5 {
		t.Fatalf("%d of the attacker's attempts were throttled, want the 5 past the address burst", refused)
	}
	if status := login(newBrowser(t, ts), "198.51.100.7", "", testUser, testPassword); status != http.StatusSeeOther {
		t.Fatalf("a user on another address with the right password got %d, want 303 on to consent", status)
	}
	if status := login(newBrowser(t, ts), "203.0.113.9", "", testUser, testPassword); status != http.StatusTooManyRequests {
		t.Fatalf("the attacker's own address got %d, want 429", status)
	}
}

// Without trusted proxies, a forwarding header is the client's word and is
// ignored: rotating it does not get round the throttle.
func TestLoginThrottleIgnoresForwardingHeaderByDefault(t *testing.T) {
	ts := newTestServer(t)
	b := newBrowser(t, ts)
	resp, _ := b.get(ts.webConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	_, page := b.get(location(t, resp).String())
	f := hiddenFields(page)
	f.Set("password", "guess")
	for i := range throttle.Default.IPBurst + 1 {
		f.Set("username", fmt.Sprintf("user-%d", i))
		req, _ := http.NewRequest(http.MethodPost, ts.URL+endpoints.LoginPath, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i))
		resp, _ = b.do(req)
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("attempt %d with a fresh X-Forwarded-For: %d, want 429", throttle.Default.IPBurst+1, resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "5" {
		t.Errorf("Retry-After = %q, want 5 (one address token)", ra)
	}
}

// loginAttempt starts a fresh flow in b without its session (keeping its
// other cookies, the device cookie among them) and posts a login.
func loginAttempt(t *testing.T, ts *testServer, b *browser, username, password string) int {
	t.Helper()
	u, _ := url.Parse(ts.URL)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1}})
	resp, _ := b.get(ts.webConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	_, page := b.get(location(t, resp).String())
	f := hiddenFields(page)
	f.Set("username", username)
	f.Set("password", password)
	resp, _ = b.post(ts.URL+endpoints.LoginPath, f)
	return resp.StatusCode
}

// A browser in which the owner logged in before gets them in with the right
// password even while an attacker on the same address has emptied both the
// address's and the account's buckets; a fresh browser waits, and the
// device cookie is good for its own account only.
func TestDeviceCookieLetsTheOwnerInDuringAnAttack(t *testing.T) {
	ts := newTestServer(t) // no trusted proxies: attacker and owner share 127.0.0.1
	owner := newBrowser(t, ts)
	if status := loginAttempt(t, ts, owner, testUser, testPassword); status != http.StatusSeeOther {
		t.Fatalf("first login: %d", status)
	}

	attacker := newBrowser(t, ts)
	for i := range throttle.Default.IPBurst {
		loginAttempt(t, ts, attacker, fmt.Sprintf("user-%d", i), "guess")
	}
	if status := loginAttempt(t, ts, attacker, testUser, "guess"); status != http.StatusTooManyRequests {
		t.Fatalf("the attacker's address is not throttled: %d", status)
	}
	if status := loginAttempt(t, ts, newBrowser(t, ts), testUser, testPassword); status != http.StatusTooManyRequests {
		t.Fatalf("a fresh browser on the attacked address got %d, want 429", status)
	}
	if status := loginAttempt(t, ts, owner, testUser, testPassword); status != http.StatusSeeOther {
		t.Fatalf("the owner's browser got %d, want 303 on to consent", status)
	}
	if status := loginAttempt(t, ts, owner, "someone-else", testPassword); status != http.StatusTooManyRequests {
		t.Fatalf("the device cookie helped another username: %d, want 429", status)
	}

	// Forged or altered cookies are no device cookie.
	u, _ := url.Parse(ts.URL)
	var device string
	for _, c := range owner.client.Jar.Cookies(u) {
		if c.Name == devicecookie.Name {
			device = c.Value
		}
	}
	if device == "" {
		t.Fatal("no device cookie after a login")
	}
	kid, _, _ := strings.Cut(device, ".")
	for name, forged := range map[string]string{
		"altered MAC":  device[:len(device)-10] + flip(device[len(device)-10]) + device[len(device)-9:],
		"unknown kid":  "nokey" + strings.TrimPrefix(device, kid),
		"no MAC":       kid + ".AAAAAAAAAAAAAAAAAAAAAA",
		"not a cookie": "x",
	} {
		b := newBrowser(t, ts)
		b.client.Jar.SetCookies(u, []*http.Cookie{{Name: devicecookie.Name, Value: forged, Path: "/"}})
		if status := loginAttempt(t, ts, b, testUser, testPassword); status != http.StatusTooManyRequests {
			t.Errorf("%s: %d, want 429", name, status)
		}
	}
}

// Failures with a device cookie spend the cookie's own bucket: a stolen
// cookie buys no more guesses than an account allows, and the owner's typos
// do not lock the account for other browsers.
func TestDeviceCookieHasItsOwnBucket(t *testing.T) {
	ts := newTestServer(t)
	owner := newBrowser(t, ts)
	if status := loginAttempt(t, ts, owner, testUser, testPassword); status != http.StatusSeeOther {
		t.Fatalf("first login: %d", status)
	}
	for i := range throttle.Default.UserBurst {
		if status := loginAttempt(t, ts, owner, testUser, "typo"); status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, status)
		}
	}
	if status := loginAttempt(t, ts, owner, testUser, testPassword); status != http.StatusTooManyRequests {
		t.Fatalf("after %d failures with the cookie: %d, want 429", throttle.Default.UserBurst, status)
	}
	if status := loginAttempt(t, ts, newBrowser(t, ts), testUser, testPassword); status != http.StatusSeeOther {
		t.Fatalf("another browser after the cookie's failures: %d, want 303", status)
	}
}

// flip returns a base64url character other than c.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
