package seal

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keyset"
)

func testSet(t *testing.T, algs ...string) *keyset.Set {
	t.Helper()
	set := &keyset.Set{}
	for _, alg := range algs {
		k, err := keyset.Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		k.State, k.ActivatesAt = keyset.StateActive, time.Now().Add(-time.Hour)
		set.Keys = append(set.Keys, k)
	}
	return set
}

// A sealed value opens with the same keys, purpose and context, and with
// nothing else: another context, another purpose, another key set, a
// changed byte, a key gone from the set.
func TestSealOpens(t *testing.T) {
	set := testSet(t, keyset.ES256, keyset.RS256)
	keys := Derive(set, "upstream cookie")
	kid := set.Keys[1].ID
	sealed, err := keys.Seal(kid, []byte("state nonce verifier"), []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "state") || !strings.HasPrefix(sealed, kid+".") {
		t.Fatalf("sealed value %q", sealed)
	}
	again, _ := keys.Seal(kid, []byte("state nonce verifier"), []byte("ctx"))
	if again == sealed {
		t.Error("sealing twice gives the same value: the nonce is not random")
	}
	// Another replica derives the same keys from the same key set.
	plain, err := Derive(set, "upstream cookie").Open(sealed, []byte("ctx"))
	if err != nil || string(plain) != "state nonce verifier" {
		t.Fatalf("Open: %q, %v", plain, err)
	}
	flipped := []byte(sealed)
	flipped[len(flipped)-3] ^= 1
	for name, c := range map[string]struct {
		keys    Keys
		sealed  string
		context string
		want    error
	}{
		"another context":     {keys, sealed, "other", ErrInvalid},
		"another purpose":     {Derive(set, "refresh token"), sealed, "ctx", ErrInvalid},
		"another key set":     {Derive(testSet(t, keyset.RS256), "upstream cookie"), sealed, "ctx", ErrUnknownKey},
		"a changed byte":      {keys, string(flipped), "ctx", ErrInvalid},
		"no key ID":           {keys, "bm90IHNlYWxlZA", "ctx", ErrInvalid},
		"not base64":          {keys, kid + ".%%%", "ctx", ErrInvalid},
		"too short":           {keys, kid + ".AAAA", "ctx", ErrInvalid},
		"key gone from set":   {Derive(&keyset.Set{Keys: set.Keys[:1]}, "upstream cookie"), sealed, "ctx", ErrUnknownKey},
		"plain base64 (JSON)": {keys, "eyJzIjoieCJ9", "ctx", ErrInvalid},
	} {
		if _, err := c.keys.Open(c.sealed, []byte(c.context)); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := keys.Seal("no-such-kid", []byte("x"), nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("sealing with an unknown key: %v", err)
	}
}
