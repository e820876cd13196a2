package storagetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// firstRefreshTTL is the refresh-token lifetime the suite asks for.
const firstRefreshTTL = 30 * 24 * time.Hour

// redeemIssued names what a redemption of the code called name issues.
func redeemIssued(name string) storage.Issued {
	return storage.Issued{AccessTokenID: "jti-" + name, AccessTokenExpiresAt: t0.Add(time.Hour), RefreshFamilyID: "fam-" + name}
}

// offlineCode is newCode with offline_access granted, so that an OpenID
// Connect code gets a refresh token.
func offlineCode(t testing.TB, name string) storage.AuthCode {
	_, c := newCode(t, name)
	c.Scopes = []string{"openid", "offline_access", "orders:read"}
	return c
}

// firstRefreshFor asks for the refresh token called name, with the
// bindings of c and every scope of newCode allowed.
func firstRefreshFor(t testing.TB, name string, c storage.AuthCode) *storage.FirstRefresh {
	return &storage.FirstRefresh{
		Hash: storage.HashToken(token(t, name)), ClientID: c.ClientID, RedirectURI: c.RedirectURI, CodeChallenge: c.CodeChallenge,
		AllowedScopes: []string{"openid", "offline_access", "orders:read", "orders:write"},
		OpenIDScope:   "openid", OfflineScope: "offline_access",
		TTL: firstRefreshTTL,
	}
}

// testFirstRefresh is RedeemCode with a FirstRefresh: the redemption and
// the family's first refresh token are one atomic step, the token stored
// only when the code's bindings and scopes allow.
func testFirstRefresh(t *testing.T, s storage.Store) {
	t.Run("Stored", func(t *testing.T) { testFirstRefreshStored(t, s) })
	t.Run("Conditions", func(t *testing.T) { testFirstRefreshConditions(t, s) })
	t.Run("Refused", func(t *testing.T) { testFirstRefreshRefused(t, s) })
}

// testFirstRefreshStored: a redemption whose bindings match stores the
// token as the code describes it; a replay finds the family, and revoking
// it revokes the token.
func testFirstRefreshStored(t *testing.T, s storage.Store) {
	ctx := context.Background()
	c := offlineCode(t, "code")
	c.Scopes = []string{"orders:write", "openid", "profile", "offline_access", "orders:read"}
	must(t, "CreateCode", s.CreateCode(ctx, c))
	first := firstRefreshFor(t, "rt", c)
	at := t0.Add(5 * time.Second)
	got, stored, err := s.RedeemCode(ctx, c.Hash, redeemIssued("code"), first, at)
	must(t, "RedeemCode", err)
	if !stored {
		t.Fatal("RedeemCode with matching bindings stored no refresh token")
	}
	assertIssued(t, got.Issued, redeemIssued("code"))
	if got.ClientID != c.ClientID || got.Subject != c.Subject || !sameTimePtr(got.RedeemedAt, &at) {
		t.Fatalf("RedeemCode returned %+v, want the redeemed code", got)
	}
	rt, err := s.GetRefreshToken(ctx, first.Hash, at)
	must(t, "GetRefreshToken", err)
	// Scopes: the code's that are allowed, in the code's order.
	assertRefreshToken(t, rt, storage.RefreshToken{
		Hash: first.Hash, FamilyID: "fam-code", ClientID: c.ClientID, Subject: c.Subject,
		Scopes: []string{"orders:write", "openid", "offline_access", "orders:read"}, Resources: c.Resources, AuthTime: c.AuthTime, IssuedAt: at,
		ExpiresAt: c.AuthTime.Add(firstRefreshTTL), SessionID: c.SessionID,
	})
	// The family lasts as long as its token: it is not revoked or gone
	// before it.
	_, err = s.RotateRefreshToken(ctx, first.Hash, storage.RefreshToken{Hash: storage.HashToken(token(t, "rt2")),
		ClientID: c.ClientID, Subject: c.Subject, AuthTime: c.AuthTime, IssuedAt: at, ExpiresAt: rt.ExpiresAt}, at)
	must(t, "RotateRefreshToken of the first token", err)

	// A replay stores nothing of its own and reports the family, whose
	// revocation reaches the token the first redemption stored.
	replay := firstRefreshFor(t, "replay-rt", c)
	replayed, stored, err := s.RedeemCode(ctx, c.Hash, redeemIssued("replay"), replay, at.Add(time.Second))
	wantErr(t, "RedeemCode replay", err, storage.ErrCodeReplayed)
	assertIssued(t, replayed.Issued, redeemIssued("code"))
	if stored {
		t.Error("a replay stored a refresh token")
	}
	_, err = s.GetRefreshToken(ctx, replay.Hash, at)
	wantErr(t, "GetRefreshToken of the replay's token", err, storage.ErrNotFound)
	must(t, "RevokeFamily", s.RevokeFamily(ctx, replayed.Issued.RefreshFamilyID, at.Add(time.Second)))
	_, err = s.GetRefreshToken(ctx, storage.HashToken(token(t, "rt2")), at.Add(2*time.Second))
	wantErr(t, "GetRefreshToken after the replay's revocation", err, storage.ErrRevoked)
	_, err = s.GetRefreshToken(ctx, first.Hash, at.Add(2*time.Second))
	wantErr(t, "GetRefreshToken of the first token after the replay's revocation", err, storage.ErrRevoked)

	// A code without an AuthTime gives the token its lifetime from now.
	bare := offlineCode(t, "no-auth-time")
	bare.AuthTime = time.Time{}
	must(t, "CreateCode", s.CreateCode(ctx, bare))
	first = firstRefreshFor(t, "bare-rt", bare)
	_, stored, err = s.RedeemCode(ctx, bare.Hash, redeemIssued("bare"), first, at)
	must(t, "RedeemCode", err)
	rt, err = s.GetRefreshToken(ctx, first.Hash, at)
	if !stored || err != nil || !sameTime(rt.ExpiresAt, at.Add(firstRefreshTTL)) {
		t.Errorf("code without AuthTime: stored %t, token %+v, %v; want one expiring at %v", stored, rt, err, at.Add(firstRefreshTTL))
	}
}

// testFirstRefreshConditions: each binding and the scope rule decide
// whether the token is stored; the code is redeemed either way.
func testFirstRefreshConditions(t *testing.T, s storage.Store) {
	ctx := context.Background()
	cases := []struct {
		name   string
		code   func(c *storage.AuthCode)
		first  func(f *storage.FirstRefresh)
		stored bool
	}{
		{"bindings match", nil, nil, true},
		{"other client", nil, func(f *storage.FirstRefresh) { f.ClientID = "client-b" }, false},
		{"other redirect URI", nil, func(f *storage.FirstRefresh) { f.RedirectURI += "/x" }, false},
		{"other challenge", nil, func(f *storage.FirstRefresh) { f.CodeChallenge = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" }, false},
		{"no verifier for a challenge", nil, func(f *storage.FirstRefresh) { f.CodeChallenge = "" }, false},
		{"verifier without a challenge", func(c *storage.AuthCode) { c.CodeChallenge, c.CodeChallengeMethod = "", "" }, nil, false},
		{"neither verifier nor challenge", func(c *storage.AuthCode) { c.CodeChallenge, c.CodeChallengeMethod = "", "" },
			func(f *storage.FirstRefresh) { f.CodeChallenge = "" }, true},
		{"openid without offline_access", func(c *storage.AuthCode) { c.Scopes = []string{"openid", "orders:read"} }, nil, false},
		{"openid with offline_access", func(c *storage.AuthCode) { c.Scopes = []string{"openid", "offline_access"} }, nil, true},
		{"offline_access not allowed", func(c *storage.AuthCode) { c.Scopes = []string{"openid", "offline_access"} },
			func(f *storage.FirstRefresh) { f.AllowedScopes = []string{"openid", "orders:read"} }, false},
		{"openid not allowed", func(c *storage.AuthCode) { c.Scopes = []string{"openid", "orders:read"} },
			func(f *storage.FirstRefresh) { f.AllowedScopes = []string{"orders:read"} }, true},
		{"no openid rule", func(c *storage.AuthCode) { c.Scopes = []string{"openid", "orders:read"} },
			func(f *storage.FirstRefresh) { f.OpenIDScope = "" }, true},
		{"no scopes", func(c *storage.AuthCode) { c.Scopes = nil }, nil, true},
	}
	for i, tc := range cases {
		name := fmt.Sprintf("case-%d", i)
		c := offlineCode(t, name)
		if tc.code != nil {
			tc.code(&c)
		}
		must(t, "CreateCode", s.CreateCode(ctx, c))
		ref := offlineCode(t, name) // the bindings the caller expects
		first := firstRefreshFor(t, name+"-rt", ref)
		if tc.first != nil {
			tc.first(first)
		}
		_, stored, err := s.RedeemCode(ctx, c.Hash, redeemIssued(name), first, t0)
		must(t, tc.name+": RedeemCode", err)
		_, getErr := s.GetRefreshToken(ctx, first.Hash, t0)
		if stored != tc.stored || (getErr == nil) != tc.stored {
			t.Errorf("%s: stored %t, GetRefreshToken %v; want stored %t", tc.name, stored, getErr, tc.stored)
		}
		if !tc.stored {
			// Nothing of the family exists: the access tokens issued
			// under it are not taken for revoked.
			revoked, err := s.IsAccessTokenRevoked(ctx, "jti-"+name, "fam-"+name, t0)
			if err != nil || revoked {
				t.Errorf("%s: access token of the unstored family revoked %t, %v", tc.name, revoked, err)
			}
		}
		_, _, err = s.RedeemCode(ctx, c.Hash, redeemIssued(name+"-again"), nil, t0)
		wantErr(t, tc.name+": RedeemCode again", err, storage.ErrCodeReplayed)
	}
}

// testFirstRefreshRefused: an expired code, a revoked family, a token that
// exists already and invalid input.
func testFirstRefreshRefused(t *testing.T, s storage.Store) {
	ctx := context.Background()
	c := offlineCode(t, "expired")
	must(t, "CreateCode", s.CreateCode(ctx, c))
	first := firstRefreshFor(t, "expired-rt", c)
	_, stored, err := s.RedeemCode(ctx, c.Hash, redeemIssued("expired"), first, c.ExpiresAt)
	wantErr(t, "RedeemCode at expiry", err, storage.ErrNotFound)
	if _, getErr := s.GetRefreshToken(ctx, first.Hash, t0); stored || getErr == nil {
		t.Errorf("an expired code's redemption stored a refresh token (stored %t)", stored)
	}

	// A family revoked before the redemption (a tombstone) gets no token;
	// the code is redeemed all the same.
	c = offlineCode(t, "revoked")
	must(t, "CreateCode", s.CreateCode(ctx, c))
	must(t, "RevokeFamily", s.RevokeFamily(ctx, "fam-revoked", t0))
	first = firstRefreshFor(t, "revoked-rt", c)
	_, stored, err = s.RedeemCode(ctx, c.Hash, redeemIssued("revoked"), first, t0)
	must(t, "RedeemCode in a revoked family", err)
	if _, getErr := s.GetRefreshToken(ctx, first.Hash, t0); stored || getErr == nil {
		t.Errorf("a redemption stored a refresh token in a revoked family (stored %t, GetRefreshToken %v)", stored, getErr)
	}

	// A token that exists already fails the whole redemption: the code
	// stays redeemable.
	c = offlineCode(t, "duplicate")
	must(t, "CreateCode", s.CreateCode(ctx, c))
	_, existing := newRefreshToken(t, "existing", "fam-other")
	must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, existing))
	first = firstRefreshFor(t, "existing", c)
	_, _, err = s.RedeemCode(ctx, c.Hash, redeemIssued("duplicate"), first, t0)
	wantErr(t, "RedeemCode with an existing refresh token", err, storage.ErrAlreadyExists)
	if got, err := s.GetRefreshToken(ctx, existing.Hash, t0); err != nil || got.FamilyID != "fam-other" {
		t.Errorf("the existing refresh token changed: %+v, %v", got, err)
	}

	// Invalid input changes nothing either.
	noFamily := redeemIssued("duplicate")
	noFamily.RefreshFamilyID = ""
	invalid := map[string]struct {
		issued storage.Issued
		first  func(f *storage.FirstRefresh)
	}{
		"no hash":   {redeemIssued("duplicate"), func(f *storage.FirstRefresh) { f.Hash = "" }},
		"no TTL":    {redeemIssued("duplicate"), func(f *storage.FirstRefresh) { f.TTL = 0 }},
		"no family": {noFamily, nil},
	}
	for name, in := range invalid {
		f := firstRefreshFor(t, "invalid-rt", c)
		if in.first != nil {
			in.first(f)
		}
		_, _, err = s.RedeemCode(ctx, c.Hash, in.issued, f, t0)
		wantErr(t, "RedeemCode, first refresh token with "+name, err, storage.ErrInvalid)
	}
	_, stored, err = s.RedeemCode(ctx, c.Hash, redeemIssued("duplicate"), firstRefreshFor(t, "new-rt", c), t0)
	if err != nil || !stored {
		t.Errorf("RedeemCode after the refused attempts: stored %t, %v; want the code still redeemable", stored, err)
	}
}
