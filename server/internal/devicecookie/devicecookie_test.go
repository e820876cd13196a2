package devicecookie

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/keyset"
)

func signingKey(t *testing.T) keyset.Key {
	t.Helper()
	k, err := keyset.Generate(keyset.ES256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A cookie verifies for its own username only, and only while its key is
// in the key set.
func TestDeviceKeysFollowTheKeySet(t *testing.T) {
	k1, k2 := signingKey(t), signingKey(t)
	both := DeriveKeys(&keyset.Set{Keys: []keyset.Key{k1, k2}})
	v := both.Issue(k1.ID, "alice")
	if _, ok := both.Verify(v, "alice"); !ok {
		t.Fatal("a fresh device cookie does not verify")
	}
	if _, ok := both.Verify(v, "alice2"); ok {
		t.Error("a device cookie verified for another username")
	}
	if _, ok := DeriveKeys(&keyset.Set{Keys: []keyset.Key{k2}}).Verify(v, "alice"); ok {
		t.Error("a device cookie verified after its key left the key set")
	}
	if both.Issue("unknown", "alice") != "" || len(DeriveKeys(nil)) != 0 {
		t.Error("issued without a key")
	}
}
