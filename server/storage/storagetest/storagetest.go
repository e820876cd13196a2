// Package storagetest is the conformance suite every storage.Store driver
// passes. A driver's test calls Run with a function that returns a fresh,
// empty store:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t testing.TB) storage.Store { return memory.New() })
//	}
//
// Time is always passed explicitly (now), so the suite never sleeps.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// NewStore returns a fresh, empty store for one test and arranges for it to
// be closed when the test ends.
type NewStore func(t testing.TB) storage.Store

// t0 is the suite's clock origin. Whole seconds survive every driver's time
// precision (PostgreSQL keeps microseconds).
var t0 = time.Date(2026, time.March, 4, 5, 6, 7, 0, time.UTC)

// Run runs the whole conformance suite against the driver.
func Run(t *testing.T, newStore NewStore) {
	t.Run("AuthRequests", func(t *testing.T) { testAuthRequests(t, newStore(t)) })
	t.Run("Codes", func(t *testing.T) { testCodes(t, newStore(t)) })
	t.Run("FirstRefresh", func(t *testing.T) { testFirstRefresh(t, newStore(t)) })
	t.Run("RefreshTokens", func(t *testing.T) { testRefreshTokens(t, newStore(t)) })
	t.Run("RefreshFamilies", func(t *testing.T) { testRefreshFamilies(t, newStore(t)) })
	t.Run("RotationRetry", func(t *testing.T) { testRotationRetry(t, newStore(t)) })
	t.Run("AccessTokenRevocation", func(t *testing.T) { testAccessTokenRevocation(t, newStore(t)) })
	t.Run("AccessTokensOfRevokedFamily", func(t *testing.T) { testAccessTokensOfRevokedFamily(t, newStore(t)) })
	t.Run("Consents", func(t *testing.T) { testConsents(t, newStore(t)) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, newStore(t)) })
	t.Run("SessionClients", func(t *testing.T) { testSessionClients(t, newStore(t)) })
	t.Run("EndSessions", func(t *testing.T) { testEndSessions(t, newStore) })
	t.Run("LogoutDeliveries", func(t *testing.T) { testLogoutDeliveries(t, newStore(t)) })
	t.Run("IdentityRecheck", func(t *testing.T) { testIdentityRecheck(t, newStore(t)) })
	t.Run("Identities", func(t *testing.T) { testIdentities(t, newStore(t)) })
	t.Run("Assertions", func(t *testing.T) { testAssertions(t, newStore(t)) })
	t.Run("DeviceAuthorizations", func(t *testing.T) { testDevices(t, newStore) })
	t.Run("PushedRequests", func(t *testing.T) { testPushedRequests(t, newStore(t)) })
	t.Run("InvalidInput", func(t *testing.T) { testInvalidInput(t, newStore(t)) })
	t.Run("DeleteExpired", func(t *testing.T) { testDeleteExpired(t, newStore(t)) })
	t.Run("Ping", func(t *testing.T) {
		if err := newStore(t).Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("ConcurrentRedeemCode", func(t *testing.T) {
		s := newStore(t)
		RaceRedeemCode(t, s, s)
	})
	t.Run("ConcurrentRotateRefreshToken", func(t *testing.T) {
		s := newStore(t)
		RaceRotateRefreshToken(t, s, s)
	})
	t.Run("ConcurrentEndSession", func(t *testing.T) {
		s := newStore(t)
		RaceEndSession(t, s, s)
	})
	t.Run("ConcurrentClaimLogoutDeliveries", func(t *testing.T) {
		s := newStore(t)
		RaceClaimLogoutDeliveries(t, s, s)
	})
	t.Run("ConcurrentUseAssertion", func(t *testing.T) {
		s := newStore(t)
		RaceUseAssertion(t, s, s)
	})
	t.Run("ConcurrentConsumePushedRequest", func(t *testing.T) {
		s := newStore(t)
		RaceConsumePushedRequest(t, s, s)
	})
}

// token returns a distinct bearer value for a test; stores only ever see
// its HashToken.
func token(t testing.TB, name string) string {
	return fmt.Sprintf("%s/%s/secret-value", t.Name(), name)
}

func wantErr(t testing.TB, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("%s: got error %v, want %v", what, got, want)
	}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func sameTime(a, b time.Time) bool { return a.Equal(b) }

func sameTimePtr(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func testAuthRequests(t *testing.T, s storage.Store) {
	ctx := context.Background()
	r := storage.AuthRequest{
		ID:                  "req-1",
		ClientID:            "client-a",
		RedirectURI:         "https://app.example/callback",
		Scopes:              []string{"openid", "orders:read"},
		Resources:           []string{"https://orders.example", "https://billing.example"},
		State:               "xyz",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		ExpiresAt:           t0.Add(10 * time.Minute),
		Nonce:               "n-0S6_WzA2Mj",
		LoginHint:           "alice@example.com",
		ForceConsent:        true,
		ResponseMode:        "form_post",
		Claims:              `{"id_token":{"email":{"essential":true}}}`,
		UILocales:           "de-CH de en",
	}
	must(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r))
	wantErr(t, "CreateAuthRequest again", s.CreateAuthRequest(ctx, r), storage.ErrAlreadyExists)

	got, err := s.GetAuthRequest(ctx, r.ID, t0)
	must(t, "GetAuthRequest", err)
	assertAuthRequest(t, got, r)

	// The returned value is the caller's: changing it changes nothing stored.
	got.Scopes[0] = "admin"
	got.Resources[0] = "https://admin.example"
	got, err = s.GetAuthRequest(ctx, r.ID, t0)
	must(t, "GetAuthRequest", err)
	assertAuthRequest(t, got, r)

	// Login fills in the subject.
	r.Subject, r.AuthTime, r.SessionID = "alice", t0.Add(time.Minute), "sid-1"
	r.Resources = []string{"https://orders.example"}
	r.ResponseMode, r.Claims, r.UILocales = "", `{"userinfo":{"name":null}}`, "fr"
	must(t, "UpdateAuthRequest", s.UpdateAuthRequest(ctx, r))
	got, err = s.GetAuthRequest(ctx, r.ID, t0.Add(time.Minute))
	must(t, "GetAuthRequest after update", err)
	assertAuthRequest(t, got, r)

	unknown := r
	unknown.ID = "req-unknown"
	wantErr(t, "UpdateAuthRequest unknown", s.UpdateAuthRequest(ctx, unknown), storage.ErrNotFound)
	_, err = s.GetAuthRequest(ctx, unknown.ID, t0)
	wantErr(t, "GetAuthRequest after failed update", err, storage.ErrNotFound)

	// Live until just before ExpiresAt, gone at ExpiresAt.
	_, err = s.GetAuthRequest(ctx, r.ID, r.ExpiresAt.Add(-time.Microsecond))
	must(t, "GetAuthRequest just before expiry", err)
	_, err = s.GetAuthRequest(ctx, r.ID, r.ExpiresAt)
	wantErr(t, "GetAuthRequest at expiry", err, storage.ErrNotFound)

	must(t, "DeleteAuthRequest", s.DeleteAuthRequest(ctx, r.ID))
	_, err = s.GetAuthRequest(ctx, r.ID, t0)
	wantErr(t, "GetAuthRequest after delete", err, storage.ErrNotFound)
	must(t, "DeleteAuthRequest unknown", s.DeleteAuthRequest(ctx, r.ID))
}

func assertAuthRequest(t *testing.T, got, want storage.AuthRequest) {
	t.Helper()
	if got.ID != want.ID || got.ClientID != want.ClientID || got.RedirectURI != want.RedirectURI ||
		!slices.Equal(got.Scopes, want.Scopes) || !slices.Equal(got.Resources, want.Resources) || got.State != want.State ||
		got.CodeChallenge != want.CodeChallenge || got.CodeChallengeMethod != want.CodeChallengeMethod ||
		got.Subject != want.Subject || !sameTime(got.AuthTime, want.AuthTime) || !sameTime(got.ExpiresAt, want.ExpiresAt) ||
		got.Nonce != want.Nonce || got.LoginHint != want.LoginHint || got.ForceConsent != want.ForceConsent || got.SessionID != want.SessionID ||
		got.Device != want.Device || got.ResponseMode != want.ResponseMode || got.Claims != want.Claims || got.UILocales != want.UILocales {
		t.Fatalf("auth request:\n got %+v\nwant %+v", got, want)
	}
}

func newCode(t testing.TB, name string) (string, storage.AuthCode) {
	plain := token(t, name)
	return plain, storage.AuthCode{
		Hash:                storage.HashToken(plain),
		ClientID:            "client-a",
		RedirectURI:         "https://app.example/callback",
		Scopes:              []string{"openid", "orders:read"},
		Resources:           []string{"https://orders.example"},
		Subject:             "alice",
		AuthTime:            t0.Add(-time.Minute),
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		ExpiresAt:           t0.Add(time.Minute),
		Nonce:               "n-" + name,
		SessionID:           "sid-" + name,
		Claims:              `{"userinfo":{"email":{"essential":true}}}`,
	}
}

func testCodes(t *testing.T, s storage.Store) {
	ctx := context.Background()
	plain, c := newCode(t, "code")
	must(t, "CreateCode", s.CreateCode(ctx, c))
	wantErr(t, "CreateCode again", s.CreateCode(ctx, c), storage.ErrAlreadyExists)

	first := storage.Issued{AccessTokenID: "jti-1", AccessTokenExpiresAt: t0.Add(time.Hour), RefreshFamilyID: "fam-1"}
	second := storage.Issued{AccessTokenID: "jti-2", AccessTokenExpiresAt: t0.Add(2 * time.Hour), RefreshFamilyID: "fam-2"}

	// The code is stored under its hash, never under the value itself.
	_, _, err := s.RedeemCode(ctx, plain, first, nil, t0)
	wantErr(t, "RedeemCode by plaintext", err, storage.ErrNotFound)

	redeemAt := t0.Add(5 * time.Second)
	got, _, err := s.RedeemCode(ctx, storage.HashToken(plain), first, nil, redeemAt)
	must(t, "RedeemCode", err)
	if got.Hash != c.Hash || got.ClientID != c.ClientID || got.RedirectURI != c.RedirectURI ||
		!slices.Equal(got.Scopes, c.Scopes) || !slices.Equal(got.Resources, c.Resources) || got.Subject != c.Subject || !sameTime(got.AuthTime, c.AuthTime) ||
		got.CodeChallenge != c.CodeChallenge || got.CodeChallengeMethod != c.CodeChallengeMethod ||
		!sameTime(got.ExpiresAt, c.ExpiresAt) || got.Nonce != c.Nonce || got.SessionID != c.SessionID || got.Claims != c.Claims {
		t.Fatalf("RedeemCode returned\n %+v\nwant the stored code\n %+v", got, c)
	}
	if !sameTimePtr(got.RedeemedAt, &redeemAt) {
		t.Fatalf("RedeemedAt = %v, want %v", got.RedeemedAt, redeemAt)
	}
	assertIssued(t, got.Issued, first)

	// A replay fails and reports what the first redemption issued, not
	// what the replay would have issued.
	replayed, _, err := s.RedeemCode(ctx, c.Hash, second, nil, t0.Add(10*time.Second))
	wantErr(t, "RedeemCode replay", err, storage.ErrCodeReplayed)
	assertIssued(t, replayed.Issued, first)
	if !sameTimePtr(replayed.RedeemedAt, &redeemAt) {
		t.Fatalf("replay RedeemedAt = %v, want the first redemption's %v", replayed.RedeemedAt, redeemAt)
	}
	if replayed.ClientID != c.ClientID || replayed.Subject != c.Subject {
		t.Fatalf("replay returned %+v, want the stored code", replayed)
	}

	// After expiry the code is gone, redeemed or not.
	_, _, err = s.RedeemCode(ctx, c.Hash, second, nil, c.ExpiresAt)
	wantErr(t, "RedeemCode redeemed code at expiry", err, storage.ErrNotFound)

	_, fresh := newCode(t, "expires")
	must(t, "CreateCode", s.CreateCode(ctx, fresh))
	_, _, err = s.RedeemCode(ctx, fresh.Hash, first, nil, fresh.ExpiresAt)
	wantErr(t, "RedeemCode at expiry", err, storage.ErrNotFound)
	_, _, err = s.RedeemCode(ctx, fresh.Hash, first, nil, fresh.ExpiresAt.Add(-time.Microsecond))
	must(t, "RedeemCode just before expiry", err)

	_, _, err = s.RedeemCode(ctx, storage.HashToken("never issued"), first, nil, t0)
	wantErr(t, "RedeemCode unknown", err, storage.ErrNotFound)

	// A redemption without a refresh token records an empty family.
	_, bare := newCode(t, "no-refresh")
	must(t, "CreateCode", s.CreateCode(ctx, bare))
	onlyAccess := storage.Issued{AccessTokenID: "jti-3", AccessTokenExpiresAt: t0.Add(time.Hour)}
	_, _, err = s.RedeemCode(ctx, bare.Hash, onlyAccess, nil, t0)
	must(t, "RedeemCode", err)
	replayed, _, err = s.RedeemCode(ctx, bare.Hash, first, nil, t0)
	wantErr(t, "RedeemCode replay", err, storage.ErrCodeReplayed)
	assertIssued(t, replayed.Issued, onlyAccess)
}

func sameIssued(a, b storage.Issued) bool {
	return a.AccessTokenID == b.AccessTokenID && sameTime(a.AccessTokenExpiresAt, b.AccessTokenExpiresAt) &&
		a.RefreshFamilyID == b.RefreshFamilyID
}

func assertIssued(t *testing.T, got, want storage.Issued) {
	t.Helper()
	if !sameIssued(got, want) {
		t.Fatalf("issued = %+v, want %+v", got, want)
	}
}

func newRefreshToken(t testing.TB, name, family string) (string, storage.RefreshToken) {
	plain := token(t, name)
	return plain, storage.RefreshToken{
		Hash:      storage.HashToken(plain),
		FamilyID:  family,
		ClientID:  "client-a",
		Subject:   "alice",
		Scopes:    []string{"openid", "offline_access", "orders:read"},
		Resources: []string{"https://orders.example", "https://billing.example"},
		AuthTime:  t0.Add(-time.Minute),
		IssuedAt:  t0,
		ExpiresAt: t0.Add(24 * time.Hour),
		SessionID: "sid-" + name,
	}
}

func assertRefreshToken(t *testing.T, got, want storage.RefreshToken) {
	t.Helper()
	if got.Hash != want.Hash || got.FamilyID != want.FamilyID || got.ClientID != want.ClientID ||
		got.Subject != want.Subject || !slices.Equal(got.Scopes, want.Scopes) || !slices.Equal(got.Resources, want.Resources) ||
		!sameTime(got.AuthTime, want.AuthTime) || !sameTime(got.IssuedAt, want.IssuedAt) ||
		!sameTime(got.ExpiresAt, want.ExpiresAt) || !sameTimePtr(got.RotatedAt, want.RotatedAt) || got.SessionID != want.SessionID {
		t.Fatalf("refresh token:\n got %+v\nwant %+v", got, want)
	}
}

func testRefreshTokens(t *testing.T, s storage.Store) {
	ctx := context.Background()
	plain1, rt1 := newRefreshToken(t, "rt1", "fam-a")
	must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt1))
	wantErr(t, "CreateRefreshToken again", s.CreateRefreshToken(ctx, rt1), storage.ErrAlreadyExists)

	_, err := s.GetRefreshToken(ctx, plain1, t0)
	wantErr(t, "GetRefreshToken by plaintext", err, storage.ErrNotFound)
	got, err := s.GetRefreshToken(ctx, storage.HashToken(plain1), t0)
	must(t, "GetRefreshToken", err)
	assertRefreshToken(t, got, rt1)

	// Rotation: the successor narrows the scope and keeps the family's
	// expiry (the caller does not extend it).
	_, rt2 := newRefreshToken(t, "rt2", "")
	rt2.Scopes = []string{"orders:read"}
	rt2.Resources = []string{"https://orders.example"}
	rt2.IssuedAt = t0.Add(time.Hour)
	rotateAt := t0.Add(time.Hour)
	old, err := s.RotateRefreshToken(ctx, rt1.Hash, rt2, rotateAt)
	must(t, "RotateRefreshToken", err)
	wantOld := rt1
	wantOld.RotatedAt = &rotateAt
	assertRefreshToken(t, old, wantOld)

	got, err = s.GetRefreshToken(ctx, rt2.Hash, rotateAt)
	must(t, "GetRefreshToken successor", err)
	wantNext := rt2
	wantNext.FamilyID = rt1.FamilyID // empty FamilyID inherits the old token's
	assertRefreshToken(t, got, wantNext)

	// The rotated token is still readable, marked rotated, until reused.
	got, err = s.GetRefreshToken(ctx, rt1.Hash, rotateAt)
	must(t, "GetRefreshToken rotated", err)
	assertRefreshToken(t, got, wantOld)

	// A successor in another family is refused and changes nothing.
	_, stranger := newRefreshToken(t, "rt3", "fam-other")
	_, err = s.RotateRefreshToken(ctx, rt2.Hash, stranger, rotateAt)
	wantErr(t, "RotateRefreshToken into another family", err, storage.ErrInvalid)
	// A successor whose hash is taken is refused and changes nothing.
	_, taken := newRefreshToken(t, "rt1", "")
	_, err = s.RotateRefreshToken(ctx, rt2.Hash, taken, rotateAt)
	wantErr(t, "RotateRefreshToken onto an existing hash", err, storage.ErrAlreadyExists)
	got, err = s.GetRefreshToken(ctx, rt2.Hash, rotateAt)
	must(t, "GetRefreshToken after refused rotations", err)
	assertRefreshToken(t, got, wantNext)
	_, err = s.GetRefreshToken(ctx, stranger.Hash, rotateAt)
	wantErr(t, "GetRefreshToken of refused successor", err, storage.ErrNotFound)

	// Rotating the successor (same family given explicitly) works.
	_, rt3 := newRefreshToken(t, "rt3b", rt1.FamilyID)
	_, err = s.RotateRefreshToken(ctx, rt2.Hash, rt3, rotateAt.Add(time.Minute))
	must(t, "RotateRefreshToken successor", err)

	// Reuse of a rotated token revokes the whole family, including the
	// live head of the chain.
	reused, err := s.RotateRefreshToken(ctx, rt1.Hash, storage.RefreshToken{Hash: storage.HashToken("rt-attacker"), ExpiresAt: rt1.ExpiresAt}, rotateAt.Add(2*time.Minute))
	wantErr(t, "RotateRefreshToken reuse", err, storage.ErrRefreshTokenReused)
	if reused.FamilyID != rt1.FamilyID || reused.Hash != rt1.Hash {
		t.Fatalf("reuse returned %+v, want the reused token", reused)
	}
	for _, h := range []string{rt1.Hash, rt2.Hash, rt3.Hash} {
		_, err = s.GetRefreshToken(ctx, h, rotateAt.Add(2*time.Minute))
		wantErr(t, "GetRefreshToken after reuse", err, storage.ErrRevoked)
	}
	_, err = s.GetRefreshToken(ctx, storage.HashToken("rt-attacker"), rotateAt.Add(2*time.Minute))
	wantErr(t, "GetRefreshToken of the reuser's successor", err, storage.ErrNotFound)
	_, rt4 := newRefreshToken(t, "rt4", "")
	_, err = s.RotateRefreshToken(ctx, rt3.Hash, rt4, rotateAt.Add(3*time.Minute))
	wantErr(t, "RotateRefreshToken in revoked family", err, storage.ErrRevoked)

	// Expiry: live just before ExpiresAt, gone at it, for Get and Rotate.
	_, e1 := newRefreshToken(t, "e1", "fam-e")
	must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, e1))
	_, err = s.GetRefreshToken(ctx, e1.Hash, e1.ExpiresAt.Add(-time.Microsecond))
	must(t, "GetRefreshToken just before expiry", err)
	_, err = s.GetRefreshToken(ctx, e1.Hash, e1.ExpiresAt)
	wantErr(t, "GetRefreshToken at expiry", err, storage.ErrNotFound)
	_, e2 := newRefreshToken(t, "e2", "")
	_, err = s.RotateRefreshToken(ctx, e1.Hash, e2, e1.ExpiresAt)
	wantErr(t, "RotateRefreshToken at expiry", err, storage.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, e2.Hash, t0)
	wantErr(t, "GetRefreshToken of refused successor", err, storage.ErrNotFound)

	_, err = s.RotateRefreshToken(ctx, storage.HashToken("unknown"), e2, t0)
	wantErr(t, "RotateRefreshToken unknown", err, storage.ErrNotFound)
}

// testRotationRetry: a rotation repeated with the same successor, while
// that successor is unused and within storage.RotationRetryWindow, is a
// retry of a lost answer and changes nothing; with another successor, once
// the successor was used, or after the window, it is reuse.
func testRotationRetry(t *testing.T, s storage.Store) {
	ctx := context.Background()
	_, rt1 := newRefreshToken(t, "retry-1", "fam-retry")
	must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt1))
	_, rt2 := newRefreshToken(t, "retry-2", "")
	_, err := s.RotateRefreshToken(ctx, rt1.Hash, rt2, t0)
	must(t, "RotateRefreshToken", err)
	old, err := s.RotateRefreshToken(ctx, rt1.Hash, rt2, t0.Add(storage.RotationRetryWindow))
	must(t, "RotateRefreshToken retried within the window", err)
	if old.Hash != rt1.Hash || old.RotatedAt == nil || !old.RotatedAt.Equal(t0) {
		t.Errorf("the retry returned %+v, want the old token rotated at %s", old, t0)
	}
	got, err := s.GetRefreshToken(ctx, rt2.Hash, t0)
	must(t, "GetRefreshToken of the successor after the retry", err)
	if got.RotatedAt != nil {
		t.Errorf("the retry rotated the successor: %+v", got)
	}

	// Once the successor was used, the old token is reuse.
	_, rt3 := newRefreshToken(t, "retry-3", "")
	_, err = s.RotateRefreshToken(ctx, rt2.Hash, rt3, t0.Add(time.Second))
	must(t, "RotateRefreshToken successor", err)
	_, err = s.RotateRefreshToken(ctx, rt1.Hash, rt2, t0.Add(2*time.Second))
	wantErr(t, "RotateRefreshToken retried after the successor was used", err, storage.ErrRefreshTokenReused)
	_, err = s.GetRefreshToken(ctx, rt3.Hash, t0.Add(2*time.Second))
	wantErr(t, "GetRefreshToken of the family's head after reuse", err, storage.ErrRevoked)

	// Past the window, and with another successor, it is reuse too.
	for _, c := range []struct {
		name string
		at   time.Duration
		next string
	}{{"after the window", storage.RotationRetryWindow + time.Second, "b-2"}, {"with another successor", time.Second, "c-other"}} {
		_, a1 := newRefreshToken(t, c.name+"-1", "fam-"+c.name)
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, a1))
		_, a2 := newRefreshToken(t, c.name+"-2", "")
		_, err = s.RotateRefreshToken(ctx, a1.Hash, a2, t0)
		must(t, "RotateRefreshToken", err)
		retry := a2
		if c.next != "b-2" {
			_, retry = newRefreshToken(t, c.name+c.next, "")
		}
		_, err = s.RotateRefreshToken(ctx, a1.Hash, retry, t0.Add(c.at))
		wantErr(t, "RotateRefreshToken retried "+c.name, err, storage.ErrRefreshTokenReused)
		_, err = s.GetRefreshToken(ctx, a2.Hash, t0.Add(c.at))
		wantErr(t, "GetRefreshToken of the successor after reuse "+c.name, err, storage.ErrRevoked)
	}
}

func testRefreshFamilies(t *testing.T, s storage.Store) {
	ctx := context.Background()
	_, a1 := newRefreshToken(t, "a1", "fam-a")
	_, b1 := newRefreshToken(t, "b1", "fam-b")
	must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, a1))
	must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, b1))
	_, a2 := newRefreshToken(t, "a2", "")
	_, err := s.RotateRefreshToken(ctx, a1.Hash, a2, t0)
	must(t, "RotateRefreshToken", err)

	// Revoking one family (e.g. a replayed code revoking what its first
	// redemption issued) leaves the other alone.
	must(t, "RevokeFamily", s.RevokeFamily(ctx, "fam-a", t0))
	must(t, "RevokeFamily again", s.RevokeFamily(ctx, "fam-a", t0))
	for _, h := range []string{a1.Hash, a2.Hash} {
		_, err = s.GetRefreshToken(ctx, h, t0)
		wantErr(t, "GetRefreshToken in revoked family", err, storage.ErrRevoked)
	}
	_, a3 := newRefreshToken(t, "a3", "")
	_, err = s.RotateRefreshToken(ctx, a2.Hash, a3, t0)
	wantErr(t, "RotateRefreshToken in revoked family", err, storage.ErrRevoked)
	_, err = s.GetRefreshToken(ctx, b1.Hash, t0)
	must(t, "GetRefreshToken in other family", err)

	// Revoking a family the store has no token of is not an error, and a
	// token created in it afterwards is refused: a code replay can race
	// the first redemption's CreateRefreshToken.
	must(t, "RevokeFamily unknown", s.RevokeFamily(ctx, "fam-late", t0))
	_, late := newRefreshToken(t, "late", "fam-late")
	wantErr(t, "CreateRefreshToken in revoked family", s.CreateRefreshToken(ctx, late), storage.ErrRevoked)
	_, err = s.GetRefreshToken(ctx, late.Hash, t0)
	wantErr(t, "GetRefreshToken of refused token", err, storage.ErrNotFound)

	// A second family token for an existing family is fine.
	_, b2 := newRefreshToken(t, "b2", "fam-b")
	must(t, "CreateRefreshToken second in family", s.CreateRefreshToken(ctx, b2))
}

func testAccessTokenRevocation(t *testing.T, s storage.Store) {
	ctx := context.Background()
	exp := t0.Add(time.Hour)
	must(t, "RevokeAccessToken", s.RevokeAccessToken(ctx, "jti-1", exp))
	must(t, "RevokeAccessToken again", s.RevokeAccessToken(ctx, "jti-1", exp))
	for _, tc := range []struct {
		jti  string
		now  time.Time
		want bool
	}{
		{"jti-1", t0, true},
		{"jti-1", exp.Add(-time.Microsecond), true},
		{"jti-1", exp, false}, // the token itself has expired: nothing to remember
		{"jti-2", t0, false},
	} {
		got, err := s.IsAccessTokenRevoked(ctx, tc.jti, "", tc.now)
		must(t, "IsAccessTokenRevoked", err)
		if got != tc.want {
			t.Errorf("IsAccessTokenRevoked(%q, %v) = %v, want %v", tc.jti, tc.now, got, tc.want)
		}
	}
}

// testAccessTokensOfRevokedFamily: an access token issued under a
// refresh-token family is revoked with it (RFC 7009 §2.1), whether the
// family was revoked directly, by reuse detection, or before the store held
// any of its tokens, and stays revoked for as long as such an access token
// can live (RevokedFamilyRetention), garbage collection included.
func testAccessTokensOfRevokedFamily(t *testing.T, s storage.Store) {
	ctx := context.Background()
	revoked := func(jti, family string, now time.Time) bool {
		t.Helper()
		got, err := s.IsAccessTokenRevoked(ctx, jti, family, now)
		must(t, "IsAccessTokenRevoked", err)
		return got
	}
	_, a := newRefreshToken(t, "a", "fam-a")
	_, b := newRefreshToken(t, "b", "fam-b")
	_, c := newRefreshToken(t, "c", "fam-c")
	for _, rt := range []storage.RefreshToken{a, b, c} {
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
	}
	if revoked("jti-a", "fam-a", t0) || revoked("jti-x", "fam-unknown", t0) {
		t.Fatal("an access token of a live or unknown family is revoked")
	}

	// Revocation of the family (the client revoked its refresh token).
	must(t, "RevokeFamily", s.RevokeFamily(ctx, "fam-a", t0))
	if !revoked("jti-a", "fam-a", t0) {
		t.Error("an access token of a revoked family is active")
	}
	if revoked("jti-a", "", t0) || revoked("jti-b", "fam-b", t0) {
		t.Error("revoking one family revoked an access token outside it")
	}

	// Reuse detection revokes the family, and its access tokens with it.
	_, b2 := newRefreshToken(t, "b2", "")
	_, err := s.RotateRefreshToken(ctx, b.Hash, b2, t0)
	must(t, "RotateRefreshToken", err)
	if revoked("jti-b", "fam-b", t0) {
		t.Fatal("rotation revoked the family's access tokens")
	}
	_, b3 := newRefreshToken(t, "b3", "")
	_, err = s.RotateRefreshToken(ctx, b.Hash, b3, t0.Add(time.Minute))
	wantErr(t, "RotateRefreshToken reuse", err, storage.ErrRefreshTokenReused)
	if !revoked("jti-b", "fam-b", t0.Add(time.Minute)) {
		t.Error("an access token of a family revoked for reuse is active")
	}

	// A family revoked before any token of it was stored (a code replay
	// racing the first redemption).
	must(t, "RevokeFamily unknown", s.RevokeFamily(ctx, "fam-early", t0))
	if !revoked("jti-e", "fam-early", t0) {
		t.Error("an access token of a family revoked before its first refresh token is active")
	}

	// An access token lives at most RevokedFamilyRetention past the
	// revocation: until then the revocation survives garbage collection,
	// even when every refresh token of the family has expired.
	_, short := newRefreshToken(t, "short", "fam-short")
	short.ExpiresAt = t0.Add(time.Minute)
	must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, short))
	must(t, "RevokeFamily", s.RevokeFamily(ctx, "fam-short", t0))
	last := t0.Add(storage.RevokedFamilyRetention - time.Second)
	_, err = s.DeleteExpired(ctx, last)
	must(t, "DeleteExpired", err)
	for _, fam := range []string{"fam-a", "fam-early", "fam-short"} {
		if !revoked("jti", fam, last) {
			t.Errorf("the revocation of %s was forgotten before its access tokens expired", fam)
		}
	}
	if revoked("jti-c", "fam-c", last) {
		t.Error("a live family's access token is revoked after garbage collection")
	}
}

func testConsents(t *testing.T, s storage.Store) {
	ctx := context.Background()
	c := storage.Consent{Subject: "alice", ClientID: "client-a", Scopes: []string{"openid", "orders:read"}, GrantedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}
	must(t, "SaveConsent", s.SaveConsent(ctx, c))
	got, err := s.GetConsent(ctx, "alice", "client-a", t0)
	must(t, "GetConsent", err)
	assertConsent(t, got, c)

	// Saving again replaces (scopes can shrink), it does not merge.
	c2 := storage.Consent{Subject: "alice", ClientID: "client-a", Scopes: []string{"profile"}, GrantedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(2 * time.Hour)}
	must(t, "SaveConsent replace", s.SaveConsent(ctx, c2))
	got, err = s.GetConsent(ctx, "alice", "client-a", t0.Add(time.Hour))
	must(t, "GetConsent", err)
	assertConsent(t, got, c2)

	// Consents are per (subject, client).
	for _, k := range [][2]string{{"alice", "client-b"}, {"bob", "client-a"}} {
		_, err = s.GetConsent(ctx, k[0], k[1], t0)
		wantErr(t, "GetConsent of "+k[0]+"/"+k[1], err, storage.ErrNotFound)
	}
	other := storage.Consent{Subject: "bob", ClientID: "client-a", Scopes: []string{"openid"}, GrantedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	must(t, "SaveConsent other subject", s.SaveConsent(ctx, other))
	got, err = s.GetConsent(ctx, "alice", "client-a", t0)
	must(t, "GetConsent", err)
	assertConsent(t, got, c2)

	_, err = s.GetConsent(ctx, "alice", "client-a", c2.ExpiresAt.Add(-time.Microsecond))
	must(t, "GetConsent just before expiry", err)
	_, err = s.GetConsent(ctx, "alice", "client-a", c2.ExpiresAt)
	wantErr(t, "GetConsent at expiry", err, storage.ErrNotFound)
}

func assertConsent(t *testing.T, got, want storage.Consent) {
	t.Helper()
	if got.Subject != want.Subject || got.ClientID != want.ClientID || !slices.Equal(got.Scopes, want.Scopes) ||
		!sameTime(got.GrantedAt, want.GrantedAt) || !sameTime(got.ExpiresAt, want.ExpiresAt) {
		t.Fatalf("consent:\n got %+v\nwant %+v", got, want)
	}
}

// testSessionConsent: the session with its subject's consent for one
// client, nil when there is none or it has expired.
func testSessionConsent(t *testing.T, s storage.Store, sess storage.Session) {
	ctx := context.Background()
	got, c, err := s.GetSessionConsent(ctx, sess.Hash, "client-a", t0)
	must(t, "GetSessionConsent without consent", err)
	if got.Subject != sess.Subject || !sameTime(got.AuthTime, sess.AuthTime) || c != nil {
		t.Fatalf("GetSessionConsent without consent: %+v, %+v", got, c)
	}
	want := storage.Consent{Subject: sess.Subject, ClientID: "client-a", Scopes: []string{"orders:read"}, GrantedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	must(t, "SaveConsent", s.SaveConsent(ctx, want))
	must(t, "SaveConsent of another subject", s.SaveConsent(ctx, storage.Consent{Subject: "mallory", ClientID: "client-b",
		Scopes: []string{"x"}, GrantedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	got, c, err = s.GetSessionConsent(ctx, sess.Hash, "client-a", t0)
	must(t, "GetSessionConsent", err)
	if got.Hash != sess.Hash || c == nil {
		t.Fatalf("GetSessionConsent: %+v, %+v", got, c)
	}
	assertConsent(t, *c, want)
	if _, c, _ = s.GetSessionConsent(ctx, sess.Hash, "client-b", t0); c != nil {
		t.Errorf("another client's consent (or another subject's): %+v", c)
	}
	if _, c, _ = s.GetSessionConsent(ctx, sess.Hash, "client-a", want.ExpiresAt); c != nil {
		t.Errorf("an expired consent: %+v", c)
	}
	_, _, err = s.GetSessionConsent(ctx, "no-such-session", "client-a", t0)
	wantErr(t, "GetSessionConsent of an unknown session", err, storage.ErrNotFound)
}

// testInvalidInput checks that objects a store could never find again (no
// key) or never expire are refused, and that nothing is written.
func testInvalidInput(t *testing.T, s storage.Store) {
	ctx := context.Background()
	exp := t0.Add(time.Hour)
	_, code := newCode(t, "code")
	redeemed := code
	redeemed.RedeemedAt = &t0
	_, rt := newRefreshToken(t, "rt", "fam")
	rotated := rt
	rotated.RotatedAt = &t0
	noFamily := rt
	noFamily.FamilyID = ""

	for name, err := range map[string]error{
		"auth request without ID":        s.CreateAuthRequest(ctx, storage.AuthRequest{ExpiresAt: exp}),
		"auth request without expiry":    s.CreateAuthRequest(ctx, storage.AuthRequest{ID: "r"}),
		"code without hash":              s.CreateCode(ctx, storage.AuthCode{ExpiresAt: exp}),
		"code without expiry":            s.CreateCode(ctx, storage.AuthCode{Hash: code.Hash}),
		"code already redeemed":          s.CreateCode(ctx, redeemed),
		"refresh token without hash":     s.CreateRefreshToken(ctx, storage.RefreshToken{FamilyID: "f", ExpiresAt: exp}),
		"refresh token without family":   s.CreateRefreshToken(ctx, noFamily),
		"refresh token without expiry":   s.CreateRefreshToken(ctx, storage.RefreshToken{Hash: rt.Hash, FamilyID: "f"}),
		"refresh token already rotated":  s.CreateRefreshToken(ctx, rotated),
		"revocation without jti":         s.RevokeAccessToken(ctx, "", exp),
		"revocation without expiry":      s.RevokeAccessToken(ctx, "jti", time.Time{}),
		"revoke family without ID":       s.RevokeFamily(ctx, "", t0),
		"consent without subject":        s.SaveConsent(ctx, storage.Consent{ClientID: "c", ExpiresAt: exp}),
		"consent without client":         s.SaveConsent(ctx, storage.Consent{Subject: "s", ExpiresAt: exp}),
		"consent without expiry":         s.SaveConsent(ctx, storage.Consent{Subject: "s", ClientID: "c"}),
		"session without hash":           s.CreateSession(ctx, storage.Session{ID: "sid", ExpiresAt: exp}),
		"session without ID":             s.CreateSession(ctx, storage.Session{Hash: "h", ExpiresAt: exp}),
		"session without expiry":         s.CreateSession(ctx, storage.Session{Hash: "h", ID: "sid"}),
		"update auth request without ID": s.UpdateAuthRequest(ctx, storage.AuthRequest{ExpiresAt: exp}),
		"pushed request without hash":    s.CreatePushedRequest(ctx, storage.PushedRequest{ClientID: "c", ExpiresAt: exp}),
		"pushed request without client":  s.CreatePushedRequest(ctx, storage.PushedRequest{Hash: "h", ExpiresAt: exp}),
		"pushed request without expiry":  s.CreatePushedRequest(ctx, storage.PushedRequest{Hash: "h", ClientID: "c"}),
	} {
		wantErr(t, name, err, storage.ErrInvalid)
	}

	_, err := s.GetAuthRequest(ctx, "r", t0)
	wantErr(t, "GetAuthRequest", err, storage.ErrNotFound)
	_, _, err = s.RedeemCode(ctx, code.Hash, storage.Issued{}, nil, t0)
	wantErr(t, "RedeemCode", err, storage.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, rt.Hash, t0)
	wantErr(t, "GetRefreshToken", err, storage.ErrNotFound)
	revoked, err := s.IsAccessTokenRevoked(ctx, "jti", "", t0)
	must(t, "IsAccessTokenRevoked", err)
	if revoked {
		t.Fatal("a refused revocation was recorded")
	}
	_, err = s.GetConsent(ctx, "s", "c", t0)
	wantErr(t, "GetConsent", err, storage.ErrNotFound)
	_, err = s.GetSession(ctx, "h", t0)
	wantErr(t, "GetSession", err, storage.ErrNotFound)
	_, err = s.ConsumePushedRequest(ctx, "h", t0)
	wantErr(t, "ConsumePushedRequest", err, storage.ErrNotFound)

	// A rotation to an invalid successor leaves the old token unrotated.
	must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
	for name, next := range map[string]storage.RefreshToken{
		"without hash":    {ExpiresAt: exp},
		"without expiry":  {Hash: storage.HashToken("next")},
		"already rotated": {Hash: storage.HashToken("next"), ExpiresAt: exp, RotatedAt: &t0},
	} {
		_, err = s.RotateRefreshToken(ctx, rt.Hash, next, t0)
		wantErr(t, "RotateRefreshToken to a successor "+name, err, storage.ErrInvalid)
	}
	got, err := s.GetRefreshToken(ctx, rt.Hash, t0)
	must(t, "GetRefreshToken", err)
	if got.RotatedAt != nil {
		t.Fatal("a refused rotation marked the old token rotated")
	}
}

func testDeleteExpired(t *testing.T, s storage.Store) {
	ctx := context.Background()
	cut := t0.Add(time.Hour)
	expired, live := cut, cut.Add(time.Second) // at the cut counts as expired

	// One expired and one live object of every kind.
	for i, exp := range []time.Time{expired, live} {
		sfx := fmt.Sprint(i)
		must(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, storage.AuthRequest{ID: "req-" + sfx, ClientID: "c", ExpiresAt: exp}))
		_, c := newCode(t, "code-"+sfx)
		c.ExpiresAt = exp
		must(t, "CreateCode", s.CreateCode(ctx, c))
		_, rt := newRefreshToken(t, "rt-"+sfx, "fam-"+sfx)
		rt.ExpiresAt = exp
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
		must(t, "RevokeAccessToken", s.RevokeAccessToken(ctx, "jti-"+sfx, exp))
		must(t, "SaveConsent", s.SaveConsent(ctx, storage.Consent{Subject: "alice", ClientID: "c-" + sfx, Scopes: []string{"openid"}, GrantedAt: t0, ExpiresAt: exp}))
		must(t, "CreateSession", s.CreateSession(ctx, newSession(t, "s-"+sfx, "alice", exp)))
		must(t, "UseAssertion", s.UseAssertion(ctx, storage.AssertionID("c", "jti-"+sfx), exp, t0))
		must(t, "CreatePushedRequest", s.CreatePushedRequest(ctx, storage.PushedRequest{Hash: storage.HashToken(token(t, "par-"+sfx)), ClientID: "c", ExpiresAt: exp}))
	}
	// A rotated pair in one family: both expire with the family.
	_, r1 := newRefreshToken(t, "chain-1", "fam-chain")
	r1.ExpiresAt = expired
	must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, r1))
	_, r2 := newRefreshToken(t, "chain-2", "")
	r2.ExpiresAt = expired
	_, err := s.RotateRefreshToken(ctx, r1.Hash, r2, t0)
	must(t, "RotateRefreshToken", err)

	// A live token in a family revoked long ago stays revoked after the
	// revocation record would have expired on its own.
	_, longLived := newRefreshToken(t, "long", "fam-long")
	longLived.ExpiresAt = t0.Add(3 * storage.RevokedFamilyRetention)
	must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, longLived))
	must(t, "RevokeFamily", s.RevokeFamily(ctx, "fam-long", t0))

	n, err := s.DeleteExpired(ctx, cut)
	must(t, "DeleteExpired", err)
	if want := 10; n != want { // 8 kinds + the rotated pair
		t.Fatalf("DeleteExpired removed %d objects, want %d", n, want)
	}
	n, err = s.DeleteExpired(ctx, cut)
	must(t, "DeleteExpired again", err)
	if n != 0 {
		t.Fatalf("second DeleteExpired removed %d objects, want 0", n)
	}

	// The live objects are all still there (read at the cut, where they
	// are live).
	_, err = s.GetAuthRequest(ctx, "req-1", cut)
	must(t, "GetAuthRequest live", err)
	_, c := newCode(t, "code-1")
	_, _, err = s.RedeemCode(ctx, c.Hash, storage.Issued{AccessTokenID: "x", AccessTokenExpiresAt: live}, nil, cut)
	must(t, "RedeemCode live", err)
	_, rt := newRefreshToken(t, "rt-1", "")
	_, err = s.GetRefreshToken(ctx, rt.Hash, cut)
	must(t, "GetRefreshToken live", err)
	revoked, err := s.IsAccessTokenRevoked(ctx, "jti-1", "", cut)
	must(t, "IsAccessTokenRevoked live", err)
	if !revoked {
		t.Fatal("a live access-token revocation was deleted")
	}
	_, err = s.GetConsent(ctx, "alice", "c-1", cut)
	must(t, "GetConsent live", err)
	_, err = s.GetSession(ctx, storage.HashToken(token(t, "s-1")), cut)
	must(t, "GetSession live", err)
	wantErr(t, "UseAssertion live", s.UseAssertion(ctx, storage.AssertionID("c", "jti-1"), live, cut), storage.ErrAssertionReplayed)
	_, err = s.ConsumePushedRequest(ctx, storage.HashToken(token(t, "par-1")), t0)
	must(t, "ConsumePushedRequest live", err)

	// The expired ones are gone even to a reader with an old clock.
	_, err = s.GetAuthRequest(ctx, "req-0", t0)
	wantErr(t, "GetAuthRequest deleted", err, storage.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, r1.Hash, t0)
	wantErr(t, "GetRefreshToken deleted", err, storage.ErrNotFound)
	_, err = s.GetSession(ctx, storage.HashToken(token(t, "s-0")), t0)
	wantErr(t, "GetSession deleted", err, storage.ErrNotFound)
	must(t, "UseAssertion deleted", s.UseAssertion(ctx, storage.AssertionID("c", "jti-0"), live, t0))

	later := t0.Add(2 * storage.RevokedFamilyRetention)
	_, err = s.DeleteExpired(ctx, later)
	must(t, "DeleteExpired later", err)
	_, err = s.GetRefreshToken(ctx, longLived.Hash, later)
	wantErr(t, "GetRefreshToken in family revoked long ago", err, storage.ErrRevoked)
}

// RaceRedeemCode has many goroutines, spread over the given stores (which
// may be one store several times, or several stores sharing one
// database), redeem one code at once, half of them with a first refresh
// token of their own. Exactly one must win; every other caller must see
// ErrCodeReplayed carrying the winner's Issued; only the winner's refresh
// token, if it brought one, is stored.
func RaceRedeemCode(t *testing.T, stores ...storage.Store) {
	t.Helper()
	ctx := context.Background()
	c := offlineCode(t, "raced")
	must(t, "CreateCode", stores[0].CreateCode(ctx, c))

	const callers = 32
	type result struct {
		code   storage.AuthCode
		first  *storage.FirstRefresh
		stored bool
		err    error
	}
	results := make([]result, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			issued := storage.Issued{AccessTokenID: fmt.Sprintf("jti-%d", i), AccessTokenExpiresAt: t0.Add(time.Hour), RefreshFamilyID: fmt.Sprintf("fam-%d", i)}
			var first *storage.FirstRefresh
			if i%2 == 0 {
				first = firstRefreshFor(t, fmt.Sprintf("rt-%d", i), c)
			}
			code, stored, err := stores[i%len(stores)].RedeemCode(ctx, c.Hash, issued, first, t0)
			results[i] = result{code, first, stored, err}
		})
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		if r.first == nil {
			continue
		}
		_, err := stores[0].GetRefreshToken(ctx, r.first.Hash, t0)
		if won := r.err == nil; r.stored != won || (err == nil) != won {
			t.Errorf("caller %d (won %t): stored %t, GetRefreshToken %v; want only the winner's token stored", i, won, r.stored, err)
		}
	}

	var winners []int
	for i, r := range results {
		switch {
		case r.err == nil:
			winners = append(winners, i)
		case !errors.Is(r.err, storage.ErrCodeReplayed):
			t.Errorf("caller %d: got error %v, want nil or ErrCodeReplayed", i, r.err)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d callers redeemed the code, want exactly 1 (winners %v)", len(winners), winners)
	}
	want := results[winners[0]].code.Issued
	if want.AccessTokenID != fmt.Sprintf("jti-%d", winners[0]) {
		t.Fatalf("winner %d got back Issued %+v, not its own", winners[0], want)
	}
	for i, r := range results {
		if i != winners[0] && !sameIssued(r.code.Issued, want) {
			t.Errorf("caller %d saw Issued %+v, want the winner's %+v", i, r.code.Issued, want)
		}
	}
}

// RaceRotateRefreshToken has many goroutines, spread over the given stores,
// rotate one refresh token at once, each with its own successor. Exactly
// one must win. The others are reuse (RFC 9700 §4.14.2 makes no exception
// for concurrency): each sees ErrRefreshTokenReused, or ErrRevoked once
// another loser has revoked the family, and in the end the whole family,
// the winner's successor included, is revoked.
func RaceRotateRefreshToken(t *testing.T, stores ...storage.Store) {
	t.Helper()
	ctx := context.Background()
	_, rt := newRefreshToken(t, "raced", "fam-raced")
	must(t, "CreateRefreshToken", stores[0].CreateRefreshToken(ctx, rt))

	const callers = 32
	errs := make([]error, callers)
	nexts := make([]storage.RefreshToken, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		_, nexts[i] = newRefreshToken(t, fmt.Sprintf("next-%d", i), "")
		wg.Go(func() {
			<-start
			_, errs[i] = stores[i%len(stores)].RotateRefreshToken(ctx, rt.Hash, nexts[i], t0)
		})
	}
	close(start)
	wg.Wait()

	winner, reused := -1, 0
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("callers %d and %d both rotated the token", winner, i)
		case err == nil:
			winner = i
		case errors.Is(err, storage.ErrRefreshTokenReused):
			reused++
		case errors.Is(err, storage.ErrRevoked):
		default:
			t.Errorf("caller %d: got error %v, want nil, ErrRefreshTokenReused or ErrRevoked", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no caller rotated the token")
	}
	if reused == 0 {
		t.Fatal("no loser was reported as reuse")
	}
	for i, next := range nexts {
		_, err := stores[0].GetRefreshToken(ctx, next.Hash, t0)
		if i == winner {
			wantErr(t, "winner's successor after the race", err, storage.ErrRevoked)
		} else {
			wantErr(t, fmt.Sprintf("loser %d's successor", i), err, storage.ErrNotFound)
		}
	}
}
