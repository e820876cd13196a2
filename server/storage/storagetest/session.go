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

// newSession is a session of subject called name, live until exp, with
// the sid the token server would derive.
func newSession(t testing.TB, name, subject string, exp time.Time) storage.Session {
	hash := storage.HashToken(token(t, name))
	return storage.Session{Hash: hash, ID: storage.HashToken("sid:" + hash), Subject: subject, AuthTime: t0, ExpiresAt: exp}
}

func assertSession(t *testing.T, got, want storage.Session) {
	t.Helper()
	if got.Hash != want.Hash || got.ID != want.ID || got.Subject != want.Subject || !sameTime(got.AuthTime, want.AuthTime) ||
		!sameTime(got.ExpiresAt, want.ExpiresAt) {
		t.Fatalf("session:\n got %+v\nwant %+v", got, want)
	}
}

func testSessions(t *testing.T, s storage.Store) {
	ctx := context.Background()
	cookie := token(t, "cookie")
	sess := newSession(t, "cookie", "alice", t0.Add(8*time.Hour))
	must(t, "CreateSession", s.CreateSession(ctx, sess))
	wantErr(t, "CreateSession again", s.CreateSession(ctx, sess), storage.ErrAlreadyExists)
	sameID := newSession(t, "other-cookie", "alice", t0.Add(8*time.Hour))
	sameID.ID = sess.ID
	wantErr(t, "CreateSession with a sid in use", s.CreateSession(ctx, sameID), storage.ErrAlreadyExists)

	_, err := s.GetSession(ctx, cookie, t0)
	wantErr(t, "GetSession by cookie value", err, storage.ErrNotFound)
	got, err := s.GetSession(ctx, storage.HashToken(cookie), t0)
	must(t, "GetSession", err)
	assertSession(t, got, sess)
	byID, err := s.GetSessionByID(ctx, sess.ID, t0)
	must(t, "GetSessionByID", err)
	assertSession(t, byID.Session, sess)
	if len(byID.Clients) != 0 {
		t.Fatalf("a new session has clients: %v", byID.Clients)
	}
	_, err = s.GetSessionByID(ctx, sess.Hash, t0)
	wantErr(t, "GetSessionByID by hash", err, storage.ErrNotFound)

	_, err = s.GetSession(ctx, sess.Hash, sess.ExpiresAt.Add(-time.Microsecond))
	must(t, "GetSession just before expiry", err)
	_, err = s.GetSession(ctx, sess.Hash, sess.ExpiresAt)
	wantErr(t, "GetSession at expiry", err, storage.ErrNotFound)
	_, err = s.GetSessionByID(ctx, sess.ID, sess.ExpiresAt)
	wantErr(t, "GetSessionByID at expiry", err, storage.ErrNotFound)

	testSessionConsent(t, s, sess)

	must(t, "DeleteSession", s.DeleteSession(ctx, sess.Hash))
	_, _, err = s.GetSessionConsent(ctx, sess.Hash, "client-a", t0)
	wantErr(t, "GetSessionConsent after logout", err, storage.ErrNotFound)
	_, err = s.GetSession(ctx, sess.Hash, t0)
	wantErr(t, "GetSession after logout", err, storage.ErrNotFound)
	_, err = s.GetSessionByID(ctx, sess.ID, t0)
	wantErr(t, "GetSessionByID after logout", err, storage.ErrNotFound)
	must(t, "DeleteSession unknown", s.DeleteSession(ctx, sess.Hash))
	// Its sid is free again.
	must(t, "CreateSession with the sid of a deleted one", s.CreateSession(ctx, sameID))
}

// testSessionClients: a session records the clients that got tokens in it:
// by AddSessionClient, and by RedeemCode of a code issued in it.
func testSessionClients(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sess := newSession(t, "s", "alice", t0.Add(time.Hour))
	must(t, "CreateSession", s.CreateSession(ctx, sess))
	must(t, "AddSessionClient", s.AddSessionClient(ctx, sess.ID, "client-b", t0))
	must(t, "AddSessionClient again", s.AddSessionClient(ctx, sess.ID, "client-b", t0))
	wantErr(t, "AddSessionClient to an unknown session", s.AddSessionClient(ctx, "no-such-sid", "client-b", t0), storage.ErrNotFound)
	wantErr(t, "AddSessionClient at expiry", s.AddSessionClient(ctx, sess.ID, "client-c", sess.ExpiresAt), storage.ErrNotFound)
	wantErr(t, "AddSessionClient without a client", s.AddSessionClient(ctx, sess.ID, "", t0), storage.ErrInvalid)

	// A code issued in the session: its redemption records its client.
	_, c := newCode(t, "code")
	c.SessionID = sess.ID
	must(t, "CreateCode", s.CreateCode(ctx, c))
	_, _, err := s.RedeemCode(ctx, c.Hash, storage.Issued{AccessTokenID: "jti", AccessTokenExpiresAt: t0.Add(time.Hour)}, nil, t0)
	must(t, "RedeemCode", err)
	// A code of a session that is gone records nothing, and redeems.
	_, orphan := newCode(t, "orphan")
	orphan.ClientID = "client-z"
	must(t, "CreateCode", s.CreateCode(ctx, orphan))
	_, _, err = s.RedeemCode(ctx, orphan.Hash, storage.Issued{AccessTokenID: "jti-2", AccessTokenExpiresAt: t0.Add(time.Hour)}, nil, t0)
	must(t, "RedeemCode of a code whose session is gone", err)

	got, err := s.GetSessionByID(ctx, sess.ID, t0)
	must(t, "GetSessionByID", err)
	slices.Sort(got.Clients)
	if !slices.Equal(got.Clients, []string{"client-a", "client-b"}) {
		t.Fatalf("session clients = %v, want [client-a client-b]", got.Clients)
	}
	// A session deleted (replaced by a new login) forgets its clients.
	must(t, "DeleteSession", s.DeleteSession(ctx, sess.Hash))
	must(t, "CreateSession again", s.CreateSession(ctx, sess))
	got, err = s.GetSessionByID(ctx, sess.ID, t0)
	must(t, "GetSessionByID", err)
	if len(got.Clients) != 0 {
		t.Fatalf("a re-created session has the old one's clients %v", got.Clients)
	}
}

// sessionFixture is a store with alice's two sessions and bob's one, the
// clients of each, refresh-token families started in them (with and
// without offline access) and outside any session, and consents.
type sessionFixture struct {
	s                  storage.Store
	alice1, alice2     storage.Session
	bob                storage.Session
	aliceOnline        storage.RefreshToken // in alice1, without offline_access
	aliceOffline       storage.RefreshToken // in alice1, with offline_access
	aliceElsewhere     storage.RefreshToken // in no session (a device, say), client-d
	alice2Online       storage.RefreshToken // in alice2
	bobOnline          storage.RefreshToken // in bob's session
	externalPrefixUser storage.Session      // idp:corp:x
}

func newSessionFixture(t *testing.T, s storage.Store) *sessionFixture {
	ctx := context.Background()
	exp := t0.Add(8 * time.Hour)
	f := &sessionFixture{s: s,
		alice1: newSession(t, "alice-1", "alice", exp), alice2: newSession(t, "alice-2", "alice", exp),
		bob: newSession(t, "bob", "bob", exp), externalPrefixUser: newSession(t, "corp-x", "idp:corp:x", exp)}
	f.alice2.AuthTime = t0.Add(time.Minute)
	for _, sess := range []storage.Session{f.alice1, f.alice2, f.bob, f.externalPrefixUser} {
		must(t, "CreateSession", s.CreateSession(ctx, sess))
	}
	for sess, clients := range map[*storage.Session][]string{&f.alice1: {"client-a", "client-b", "client-c"}, &f.alice2: {"client-b"},
		&f.bob: {"client-a"}, &f.externalPrefixUser: {"client-a"}} {
		for _, c := range clients {
			must(t, "AddSessionClient", s.AddSessionClient(ctx, sess.ID, c, t0))
		}
	}
	rt := func(name, family, subject, client, sid string, offline bool) storage.RefreshToken {
		_, r := newRefreshToken(t, name, family)
		r.Subject, r.ClientID, r.SessionID = subject, client, sid
		r.Scopes = []string{"orders:read"}
		if offline {
			r.Scopes = []string{"openid", "offline_access"}
		}
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, r))
		return r
	}
	f.aliceOnline = rt("a-online", "fam-a-online", "alice", "client-a", f.alice1.ID, false)
	f.aliceOffline = rt("a-offline", "fam-a-offline", "alice", "client-b", f.alice1.ID, true)
	f.aliceElsewhere = rt("a-elsewhere", "fam-a-elsewhere", "alice", "client-d", "", false)
	f.alice2Online = rt("a2-online", "fam-a2-online", "alice", "client-b", f.alice2.ID, false)
	f.bobOnline = rt("b-online", "fam-b-online", "bob", "client-a", f.bob.ID, false)
	for _, c := range []storage.Consent{
		{Subject: "alice", ClientID: "client-a", Scopes: []string{"openid"}, GrantedAt: t0, ExpiresAt: exp},
		{Subject: "alice", ClientID: "client-b", Scopes: []string{"openid"}, GrantedAt: t0, ExpiresAt: exp},
		{Subject: "bob", ClientID: "client-a", Scopes: []string{"openid"}, GrantedAt: t0, ExpiresAt: exp},
	} {
		must(t, "SaveConsent", s.SaveConsent(ctx, c))
	}
	return f
}

// revoked reports whether the refresh token's family is revoked.
func (f *sessionFixture) revoked(t *testing.T, r storage.RefreshToken) bool {
	t.Helper()
	_, err := f.s.GetRefreshToken(context.Background(), r.Hash, t0)
	if err != nil && !errors.Is(err, storage.ErrRevoked) {
		t.Fatalf("GetRefreshToken: %v", err)
	}
	return err != nil
}

func (f *sessionFixture) live(t *testing.T, sess storage.Session) bool {
	t.Helper()
	_, err := f.s.GetSessionByID(context.Background(), sess.ID, t0)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetSessionByID: %v", err)
	}
	return err == nil
}

// deliveries is what the store queued, as "client sub sid" lines, sorted.
func deliveries(ds []storage.LogoutDelivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ClientID+" "+d.Subject+" "+d.SessionID)
	}
	slices.Sort(out)
	return out
}

func notifyAllBut(clients ...string) func(string) bool {
	return func(c string) bool { return !slices.Contains(clients, c) }
}

func testEndSessions(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	deadline := t0.Add(time.Hour)

	// The browser's own session, on RP-initiated logout by client-c:
	// families of that session without offline access are revoked; the
	// other clients of it are told (client-b has no back-channel URI).
	t.Run("ByHash", func(t *testing.T) {
		f := newSessionFixture(t, newStore(t))
		ended, err := f.s.EndSessions(ctx, storage.SessionSelector{Hash: f.alice1.Hash},
			storage.EndOptions{OfflineScope: "offline_access", Notify: notifyAllBut("client-b"), Except: "client-c", DeliverUntil: deadline}, t0)
		must(t, "EndSessions", err)
		if len(ended.Sessions) != 1 {
			t.Fatalf("ended %d sessions, want 1", len(ended.Sessions))
		}
		assertSession(t, ended.Sessions[0].Session, f.alice1)
		if got := ended.Sessions[0].Clients; !slices.Equal(got, []string{"client-a", "client-b", "client-c"}) {
			t.Errorf("the ended session's clients = %v", got)
		}
		if ended.FamiliesRevoked != 1 || ended.ConsentsDeleted != 0 {
			t.Errorf("revoked %d families, deleted %d consents; want 1 and 0", ended.FamiliesRevoked, ended.ConsentsDeleted)
		}
		if got, want := deliveries(ended.Deliveries), []string{"client-a alice " + f.alice1.ID}; !slices.Equal(got, want) {
			t.Errorf("deliveries = %q, want %q", got, want)
		}
		d := ended.Deliveries[0]
		if d.ID == "" || d.Attempts != 0 || !sameTime(d.CreatedAt, t0) || !sameTime(d.NextAttemptAt, t0) || !sameTime(d.ExpiresAt, deadline) {
			t.Errorf("delivery = %+v", d)
		}
		if f.live(t, f.alice1) || !f.live(t, f.alice2) || !f.live(t, f.bob) {
			t.Error("ending one session ended another, or not that one")
		}
		if !f.revoked(t, f.aliceOnline) || f.revoked(t, f.aliceOffline) || f.revoked(t, f.aliceElsewhere) || f.revoked(t, f.alice2Online) {
			t.Error("only the session's family without offline_access should be revoked")
		}
		if _, err := f.s.GetSession(ctx, f.alice1.Hash, t0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetSession of the ended session: %v", err)
		}
		// The deliveries are in the outbox.
		claimed, err := f.s.ClaimLogoutDeliveries(ctx, 10, 10, nil, time.Minute, t0)
		must(t, "ClaimLogoutDeliveries", err)
		if len(claimed) != 1 || claimed[0].ID != d.ID || claimed[0].Subject != "alice" || claimed[0].SessionID != f.alice1.ID {
			t.Errorf("claimed %+v, want the delivery %+v", claimed, d)
		}
		// Ending it again ends nothing and queues nothing.
		again, err := f.s.EndSessions(ctx, storage.SessionSelector{Hash: f.alice1.Hash},
			storage.EndOptions{Notify: notifyAllBut(), DeliverUntil: deadline}, t0)
		must(t, "EndSessions again", err)
		if len(again.Sessions) != 0 || len(again.Deliveries) != 0 || again.FamiliesRevoked != 0 {
			t.Errorf("ending an ended session: %+v", again)
		}
	})

	// By sid (an id_token_hint, no cookie), without notification.
	t.Run("ByID", func(t *testing.T) {
		f := newSessionFixture(t, newStore(t))
		ended, err := f.s.EndSessions(ctx, storage.SessionSelector{ID: f.alice2.ID}, storage.EndOptions{OfflineScope: "offline_access"}, t0)
		must(t, "EndSessions", err)
		if len(ended.Sessions) != 1 || ended.Sessions[0].ID != f.alice2.ID || len(ended.Deliveries) != 0 || ended.FamiliesRevoked != 1 {
			t.Fatalf("EndSessions by sid: %+v", ended)
		}
		if f.live(t, f.alice2) || !f.live(t, f.alice1) || !f.revoked(t, f.alice2Online) || f.revoked(t, f.aliceOnline) {
			t.Error("ending by sid ended the wrong session or family")
		}
		claimed, err := f.s.ClaimLogoutDeliveries(ctx, 10, 10, nil, time.Minute, t0)
		must(t, "ClaimLogoutDeliveries", err)
		if len(claimed) != 0 {
			t.Errorf("deliveries queued without Notify: %+v", claimed)
		}
		// An expired session is not ended (it ended by itself).
		g := newSessionFixture(t, newStore(t))
		ended, err = g.s.EndSessions(ctx, storage.SessionSelector{ID: g.bob.ID}, storage.EndOptions{}, g.bob.ExpiresAt)
		must(t, "EndSessions of an expired session", err)
		if len(ended.Sessions) != 0 {
			t.Errorf("an expired session was reported ended: %+v", ended.Sessions)
		}
	})

	// An administrator ends everything of alice: both sessions, every
	// family (offline and outside sessions too), her consents; every
	// client is told, client-d (outside any session) by sub alone.
	t.Run("BySubjectWithGrants", func(t *testing.T) {
		f := newSessionFixture(t, newStore(t))
		ended, err := f.s.EndSessions(ctx, storage.SessionSelector{Subject: "alice"},
			storage.EndOptions{RevokeGrants: true, OfflineScope: "offline_access", Notify: notifyAllBut(), DeliverUntil: deadline}, t0)
		must(t, "EndSessions", err)
		if len(ended.Sessions) != 2 || ended.Sessions[0].ID != f.alice1.ID || ended.Sessions[1].ID != f.alice2.ID {
			t.Fatalf("ended %+v, want alice's two sessions in login order", ended.Sessions)
		}
		if ended.FamiliesRevoked != 4 || ended.ConsentsDeleted != 2 {
			t.Errorf("revoked %d families and deleted %d consents, want 4 and 2", ended.FamiliesRevoked, ended.ConsentsDeleted)
		}
		want := []string{"client-a alice " + f.alice1.ID, "client-b alice " + f.alice1.ID, "client-b alice " + f.alice2.ID,
			"client-c alice " + f.alice1.ID, "client-d alice "}
		slices.Sort(want)
		if got := deliveries(ended.Deliveries); !slices.Equal(got, want) {
			t.Errorf("deliveries =\n %q\nwant\n %q", got, want)
		}
		for _, r := range []storage.RefreshToken{f.aliceOnline, f.aliceOffline, f.aliceElsewhere, f.alice2Online} {
			if !f.revoked(t, r) {
				t.Errorf("alice's family %s was not revoked", r.FamilyID)
			}
		}
		if f.revoked(t, f.bobOnline) || !f.live(t, f.bob) || !f.live(t, f.externalPrefixUser) {
			t.Error("bob lost something")
		}
		for client, want := range map[string]bool{"client-a": false, "client-b": false} {
			if _, err := f.s.GetConsent(ctx, "alice", client, t0); (err == nil) != want {
				t.Errorf("alice's consent for %s: %v", client, err)
			}
		}
		if _, err := f.s.GetConsent(ctx, "bob", "client-a", t0); err != nil {
			t.Errorf("bob's consent: %v", err)
		}
		// Access tokens of a revoked family are revoked too.
		rev, err := f.s.IsAccessTokenRevoked(ctx, "some-jti", f.aliceOffline.FamilyID, t0)
		must(t, "IsAccessTokenRevoked", err)
		if !rev {
			t.Error("an access token of a revoked family is not revoked")
		}
	})

	// A removed identity provider's people, by subject prefix, without
	// revoking grants (they are refused while the provider is gone).
	t.Run("BySubjectPrefix", func(t *testing.T) {
		f := newSessionFixture(t, newStore(t))
		ended, err := f.s.EndSessions(ctx, storage.SessionSelector{SubjectPrefix: "idp:corp:"},
			storage.EndOptions{Notify: notifyAllBut(), DeliverUntil: deadline}, t0)
		must(t, "EndSessions", err)
		if len(ended.Sessions) != 1 || ended.Sessions[0].Subject != "idp:corp:x" {
			t.Fatalf("ended %+v", ended.Sessions)
		}
		if got := deliveries(ended.Deliveries); !slices.Equal(got, []string{"client-a idp:corp:x " + f.externalPrefixUser.ID}) {
			t.Errorf("deliveries = %q", got)
		}
		if !f.live(t, f.alice1) || !f.live(t, f.bob) {
			t.Error("a prefix ended other people's sessions")
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		f := newSessionFixture(t, newStore(t))
		for name, c := range map[string]struct {
			sel  storage.SessionSelector
			opts storage.EndOptions
		}{
			"no selector":               {storage.SessionSelector{}, storage.EndOptions{}},
			"two selectors":             {storage.SessionSelector{Hash: f.alice1.Hash, Subject: "alice"}, storage.EndOptions{}},
			"notify without a deadline": {storage.SessionSelector{Hash: f.alice1.Hash}, storage.EndOptions{Notify: notifyAllBut()}},
			"grants of one session":     {storage.SessionSelector{ID: f.alice1.ID}, storage.EndOptions{RevokeGrants: true}},
		} {
			_, err := f.s.EndSessions(ctx, c.sel, c.opts, t0)
			wantErr(t, "EndSessions with "+name, err, storage.ErrInvalid)
		}
		if !f.live(t, f.alice1) || f.revoked(t, f.aliceOnline) {
			t.Error("a refused EndSessions changed something")
		}
	})
}

// queue puts n deliveries to client in a fresh store's outbox, by ending
// sessions of one person with client in them.
func queue(t *testing.T, s storage.Store, name, client string, n int, deadline time.Time) []storage.LogoutDelivery {
	ctx := context.Background()
	for i := range n {
		sess := newSession(t, fmt.Sprintf("%s-%d", name, i), "person-"+name, t0.Add(time.Hour))
		must(t, "CreateSession", s.CreateSession(ctx, sess))
		must(t, "AddSessionClient", s.AddSessionClient(ctx, sess.ID, client, t0))
	}
	ended, err := s.EndSessions(ctx, storage.SessionSelector{Subject: "person-" + name},
		storage.EndOptions{Notify: notifyAllBut(), DeliverUntil: deadline}, t0)
	must(t, "EndSessions", err)
	if len(ended.Deliveries) != n {
		t.Fatalf("queued %d deliveries, want %d", len(ended.Deliveries), n)
	}
	return ended.Deliveries
}

func testLogoutDeliveries(t *testing.T, s storage.Store) {
	ctx := context.Background()
	deadline := t0.Add(time.Hour)
	slowRP := queue(t, s, "slow", "client-slow", 3, deadline)
	fastRP := queue(t, s, "fast", "client-fast", 2, deadline)

	// A limit, and a client skipped (one with deliveries in flight
	// already).
	got, err := s.ClaimLogoutDeliveries(ctx, 2, 10, []string{"client-slow"}, time.Minute, t0)
	must(t, "ClaimLogoutDeliveries", err)
	if len(got) != 2 || got[0].ClientID != "client-fast" || got[1].ClientID != "client-fast" {
		t.Fatalf("claimed %+v, want the two of client-fast", got)
	}
	// Claimed ones are not claimed again while the claim lasts; at most
	// perClient of one client at a time.
	got, err = s.ClaimLogoutDeliveries(ctx, 10, 2, nil, time.Minute, t0.Add(30*time.Second))
	must(t, "ClaimLogoutDeliveries", err)
	if len(got) != 2 || got[0].ClientID != "client-slow" || got[1].ClientID != "client-slow" {
		t.Fatalf("claimed %+v, want 2 of client-slow's 3", got)
	}
	got, err = s.ClaimLogoutDeliveries(ctx, 10, 2, nil, time.Minute, t0.Add(30*time.Second))
	must(t, "ClaimLogoutDeliveries", err)
	if len(got) != 1 || got[0].ClientID != "client-slow" {
		t.Fatalf("claimed %+v, want the last of client-slow's", got)
	}
	got, err = s.ClaimLogoutDeliveries(ctx, 10, 10, nil, time.Minute, t0.Add(45*time.Second))
	must(t, "ClaimLogoutDeliveries", err)
	if len(got) != 0 {
		t.Fatalf("claimed %d already claimed deliveries", len(got))
	}
	// One delivered, one failed and retried later; the claim of the rest
	// lapses (a replica died) and they are due again.
	must(t, "FinishLogoutDelivery", s.FinishLogoutDelivery(ctx, fastRP[0].ID))
	must(t, "FinishLogoutDelivery unknown", s.FinishLogoutDelivery(ctx, "no-such-delivery"))
	retry := fastRP[1]
	retry.Attempts, retry.LastError, retry.NextAttemptAt = 1, "connection refused", t0.Add(5*time.Minute)
	must(t, "RetryLogoutDelivery", s.RetryLogoutDelivery(ctx, retry))
	unknown := retry
	unknown.ID = "no-such-delivery"
	wantErr(t, "RetryLogoutDelivery unknown", s.RetryLogoutDelivery(ctx, unknown), storage.ErrNotFound)

	got, err = s.ClaimLogoutDeliveries(ctx, 10, 10, nil, 10*time.Minute, t0.Add(2*time.Minute))
	must(t, "ClaimLogoutDeliveries after the claim lapsed", err)
	if len(got) != 3 || got[0].ClientID != "client-slow" {
		t.Fatalf("claimed %+v, want client-slow's 3 again", got)
	}
	got, err = s.ClaimLogoutDeliveries(ctx, 10, 10, nil, time.Minute, t0.Add(5*time.Minute))
	must(t, "ClaimLogoutDeliveries at the retry", err)
	if len(got) != 1 || got[0].ID != retry.ID || got[0].Attempts != 1 || got[0].LastError != "connection refused" ||
		!sameTime(got[0].NextAttemptAt, retry.NextAttemptAt) {
		t.Fatalf("claimed %+v, want the retried delivery %+v", got, retry)
	}
	// Past its deadline a delivery is not claimed, and DeleteExpired
	// removes it.
	got, err = s.ClaimLogoutDeliveries(ctx, 10, 10, nil, time.Minute, deadline)
	must(t, "ClaimLogoutDeliveries at the deadline", err)
	if len(got) != 0 {
		t.Fatalf("claimed %d expired deliveries", len(got))
	}
	n, err := s.DeleteExpired(ctx, deadline)
	must(t, "DeleteExpired", err)
	if n != 4 { // the 3 of client-slow and the retried one
		t.Fatalf("DeleteExpired removed %d, want the 4 deliveries", n)
	}
	_, err = s.ClaimLogoutDeliveries(ctx, 0, 1, nil, time.Minute, t0)
	wantErr(t, "ClaimLogoutDeliveries without a limit", err, storage.ErrInvalid)
	_ = slowRP
}

// testIdentityRecheck: one claim at a time, only once the last answer is
// old enough, released by the next answer (SaveIdentity) or its lapse.
func testIdentityRecheck(t *testing.T, s storage.Store) {
	ctx := context.Background()
	_, _, err := s.ClaimIdentityRecheck(ctx, "idp:corp:x", t0, t0.Add(time.Minute), t0)
	wantErr(t, "ClaimIdentityRecheck unknown", err, storage.ErrNotFound)
	id := storage.Identity{Subject: "idp:corp:x", Data: []byte(`{"sub":"idp:corp:x"}`), UpdatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	must(t, "SaveIdentity", s.SaveIdentity(ctx, id))

	// Answered after due: a recent answer stands, no claim.
	now := t0.Add(5 * time.Minute)
	got, claimed, err := s.ClaimIdentityRecheck(ctx, id.Subject, t0.Add(-time.Minute), now.Add(time.Minute), now)
	must(t, "ClaimIdentityRecheck of a fresh identity", err)
	if claimed || string(got.Data) != string(id.Data) {
		t.Fatalf("claimed a fresh identity (%v) or returned %+v", claimed, got)
	}
	// Due: one claim; a second caller meanwhile is refused.
	_, claimed, err = s.ClaimIdentityRecheck(ctx, id.Subject, now, now.Add(time.Minute), now)
	must(t, "ClaimIdentityRecheck", err)
	if !claimed {
		t.Fatal("a due identity was not claimed")
	}
	got, claimed, err = s.ClaimIdentityRecheck(ctx, id.Subject, now, now.Add(time.Minute), now.Add(30*time.Second))
	must(t, "ClaimIdentityRecheck while claimed", err)
	if claimed || !sameTime(got.UpdatedAt, t0) {
		t.Fatalf("claimed twice (%v), or %+v", claimed, got)
	}
	// The claim lapses (the replica died, the upstream did not answer).
	_, claimed, err = s.ClaimIdentityRecheck(ctx, id.Subject, now, now.Add(2*time.Minute), now.Add(time.Minute))
	must(t, "ClaimIdentityRecheck after the claim lapsed", err)
	if !claimed {
		t.Fatal("a lapsed claim was not claimable")
	}
	// The answer releases the claim; once due again, it is claimable.
	answered := id
	answered.UpdatedAt, answered.Data = now.Add(70*time.Second), []byte(`{"sub":"idp:corp:x","groups":["b"]}`)
	must(t, "SaveIdentity", s.SaveIdentity(ctx, answered))
	later := now.Add(20 * time.Minute)
	got, claimed, err = s.ClaimIdentityRecheck(ctx, id.Subject, later, later.Add(time.Minute), later)
	must(t, "ClaimIdentityRecheck after an answer", err)
	if !claimed || string(got.Data) != string(answered.Data) {
		t.Fatalf("after an answer: claimed %v, %+v", claimed, got)
	}
	_, _, err = s.ClaimIdentityRecheck(ctx, id.Subject, id.ExpiresAt, id.ExpiresAt.Add(time.Minute), id.ExpiresAt)
	wantErr(t, "ClaimIdentityRecheck at expiry", err, storage.ErrNotFound)
}

// RaceEndSession has many goroutines, spread over the given stores, end one
// session at once, each asking to notify. Exactly one must end it and
// queue its delivery; the others end nothing.
func RaceEndSession(t *testing.T, stores ...storage.Store) {
	t.Helper()
	ctx := context.Background()
	sess := newSession(t, "raced", "alice", t0.Add(time.Hour))
	must(t, "CreateSession", stores[0].CreateSession(ctx, sess))
	must(t, "AddSessionClient", stores[0].AddSessionClient(ctx, sess.ID, "client-a", t0))
	const n = 16
	var wg sync.WaitGroup
	results := make([]storage.Ended, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = stores[i%len(stores)].EndSessions(ctx, storage.SessionSelector{ID: sess.ID},
				storage.EndOptions{Notify: notifyAllBut(), DeliverUntil: t0.Add(time.Hour)}, t0)
		})
	}
	wg.Wait()
	winners, queued := 0, 0
	for i := range n {
		must(t, "EndSessions", errs[i])
		winners += len(results[i].Sessions)
		queued += len(results[i].Deliveries)
	}
	if winners != 1 || queued != 1 {
		t.Fatalf("%d callers ended the session and %d deliveries were queued; want 1 and 1", winners, queued)
	}
	claimed, err := stores[0].ClaimLogoutDeliveries(ctx, 10, 10, nil, time.Minute, t0)
	must(t, "ClaimLogoutDeliveries", err)
	if len(claimed) != 1 {
		t.Fatalf("the outbox holds %d deliveries, want 1", len(claimed))
	}
}

// RaceClaimLogoutDeliveries has the given stores claim one outbox at once,
// repeatedly: every delivery is claimed exactly once.
func RaceClaimLogoutDeliveries(t *testing.T, stores ...storage.Store) {
	t.Helper()
	ctx := context.Background()
	const total = 40
	queued := queue(t, stores[0], "raced", "client-a", total, t0.Add(time.Hour))
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for {
				got, err := stores[i%len(stores)].ClaimLogoutDeliveries(ctx, 3, 2, nil, time.Minute, t0)
				if err != nil {
					t.Errorf("ClaimLogoutDeliveries: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, d := range got {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != total {
		t.Fatalf("%d of %d deliveries were claimed", len(seen), total)
	}
	for _, d := range queued {
		if seen[d.ID] != 1 {
			t.Fatalf("delivery %s was claimed %d times", d.ID, seen[d.ID])
		}
	}
}
