package jwtverify

import (
	"testing"
	"time"
)

func TestCacheSkipsOnlyTheSignature(t *testing.T) {
	s := newSigner(t, "ES256", "k1")
	k := s.key(t)
	verified := 0
	k.onVerify = func() { verified++ }
	keys, _ := NewStatic(k)
	c := NewCache(4)
	tok := s.sign(t, claims(), nil)
	p := policy()
	p.RequireJTI = false
	for i := range 3 {
		if _, err := c.Verify(tok, keys, p, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if verified != 1 {
		t.Errorf("%d signature verifications for one token presented three times, want 1", verified)
	}
	// The claims are checked anew every time: at another time, against
	// another policy.
	if _, err := c.Verify(tok, keys, p, t0.Add(time.Hour)); ReasonOf(err) != ReasonExpired {
		t.Errorf("a cached token after its expiry: %v", err)
	}
	other := policy()
	other.Audiences = []string{"https://other.example.com"}
	if _, err := c.Verify(tok, keys, other, t0); ReasonOf(err) != ReasonAudience {
		t.Errorf("a cached token for another audience: %v", err)
	}
	// Another key set, or the key gone from this one: verified again.
	stranger := newSigner(t, "ES256", "k1")
	if _, err := c.Verify(tok, stranger.set(t), p, t0); ReasonOf(err) != ReasonSignature {
		t.Errorf("a cached token against another key set: %v", err)
	}
	if _, err := c.Verify(tok, &Static{}, p, t0); ReasonOf(err) != ReasonUnknownKey {
		t.Errorf("a cached token whose key is gone: %v", err)
	}
	// A token that differs by one byte is another token.
	if _, err := c.Verify(tamper(tok), keys, p, t0); ReasonOf(err) != ReasonSignature {
		t.Errorf("a tampered token: %v", err)
	}
	// Bounded.
	for range 10 {
		c2 := claims()
		c2["jti"] = s.kid + time.Now().String()
		if _, err := c.Verify(s.sign(t, c2, nil), keys, p, t0); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() > 4 {
		t.Errorf("the cache holds %d tokens, more than its 4", c.Len())
	}
}
