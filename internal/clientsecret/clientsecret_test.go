package clientsecret

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestGeneratedSecretsHave256BitsAndDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(raw) != 32 {
			t.Fatalf("secret %q decodes to %d bytes (%v), want 32", s, len(raw), err)
		}
		if seen[s] {
			t.Fatal("a generated secret repeated")
		}
		seen[s] = true
		if err := CheckAdoptable(s); err != nil {
			t.Errorf("a generated secret is not adoptable: %v", err)
		}
	}
}

func TestHashMatches(t *testing.T) {
	s, _ := Generate()
	h := Hash(s)
	if strings.Contains(h, s) || !strings.HasPrefix(h, "sha256:") {
		t.Fatalf("hash %q", h)
	}
	if !Matches(s, h) {
		t.Error("the secret does not match its hash")
	}
	for _, bad := range []struct{ secret, hash string }{
		{s + "x", h},
		{s[:len(s)-1], h},
		{"", h},
		{s, "md5:" + strings.TrimPrefix(h, "sha256:")},
		{s, "sha256:not-base64!"},
		{s, "sha256:" + base64.StdEncoding.EncodeToString([]byte("short"))},
		{s, ""},
	} {
		if Matches(bad.secret, bad.hash) {
			t.Errorf("Matches(%q, %q) = true", bad.secret, bad.hash)
		}
	}
}

func TestCheckAdoptable(t *testing.T) {
	sum := sha256.Sum256([]byte("an adopted secret"))
	hex64 := hex.EncodeToString(sum[:])
	// 32 random bytes in base64url that happen to hold no digit, '-' or
	// '_' (about 1 in 8,000 generated secrets).
	lettersOnly := "XkqvQpLmNrTwYzAcEgHjKbDfSuWoIeRtYuPaSdFgHjK"
	for _, ok := range []string{hex64, "Xk3_9vQ-pL2mN8rT5wY1zA7cE4gH6jK0bD2fS9uW3oI", lettersOnly} {
		if err := CheckAdoptable(ok); err != nil {
			t.Errorf("CheckAdoptable(%q) = %v", ok, err)
		}
	}
	for _, weak := range []string{"", "password123", "correcthorsebatterystaplecorrect", strings.Repeat("ab", 64), " " + hex64, hex64 + "\n", "ünïcödé" + hex64} {
		err := CheckAdoptable(weak)
		if !errors.Is(err, ErrWeak) {
			t.Errorf("CheckAdoptable(%q) = %v, want ErrWeak", weak, err)
			continue
		}
		if weak != "" && strings.Contains(err.Error(), strings.TrimSpace(weak)) {
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
}
