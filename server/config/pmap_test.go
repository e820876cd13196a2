package config

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPMapMatchesMap applies random sets and deletes to the trie and to a
// Go map, with hashes squeezed into a few bits so that keys share paths
// down to the collision lists past the hash's 64 bits, and checks that
// every older version is unchanged.
func TestPMapMatchesMap(t *testing.T) {
	for _, hashBits := range []uint{64, 7, 0} {
		r := rand.New(rand.NewPCG(uint64(hashBits), 1))
		// With few hash bits every key lands deep: the low bits vary, the
		// rest repeat, so nodes split to the bottom and collide there.
		hash := func(k string) uint64 {
			h := phash(k)
			if hashBits < 64 {
				h = h&(1<<hashBits-1) | 0xfedcba9876543210&^(1<<hashBits-1)
			}
			return h
		}
		var root *pnode[int]
		want := map[string]int{}
		type version struct {
			root *pnode[int]
			want map[string]int
		}
		var versions []version
		for step := range 3000 {
			k := fmt.Sprintf("k%d", r.IntN(200))
			if r.IntN(3) == 0 {
				var removed bool
				root, removed = root.delete(hash(k), 0, k)
				if _, had := want[k]; had != removed {
					t.Fatalf("bits %d step %d: delete %s removed=%v, map had it %v", hashBits, step, k, removed, had)
				}
				delete(want, k)
			} else {
				var added bool
				root, added = root.set(hash(k), 0, k, step)
				if _, had := want[k]; had == added {
					t.Fatalf("bits %d step %d: set %s added=%v, map had it %v", hashBits, step, k, added, had)
				}
				want[k] = step
			}
			if step%100 == 0 {
				c := make(map[string]int, len(want))
				for k, v := range want {
					c[k] = v
				}
				versions = append(versions, version{root, c})
			}
		}
		versions = append(versions, version{root, want})
		for i, v := range versions {
			got := map[string]int{}
			v.root.walk(func(k string, val int) bool { got[k] = val; return true })
			if len(got) != len(v.want) {
				t.Fatalf("bits %d version %d: %d entries, want %d", hashBits, i, len(got), len(v.want))
			}
			for k, val := range v.want {
				if got[k] != val {
					t.Fatalf("bits %d version %d: %s = %d, want %d", hashBits, i, k, got[k], val)
				}
			}
		}
	}
}

// TestPMapPublicOperations covers get, set, delete and len through the
// map type, with the real hash.
func TestPMapPublicOperations(t *testing.T) {
	var m pmap[string]
	old := m.set("a", "1")
	m = old.set("b", "2").set("a", "3").delete("missing")
	if m.len() != 2 || old.len() != 1 {
		t.Fatalf("len %d and %d, want 2 and 1", m.len(), old.len())
	}
	if v, ok := m.get("a"); !ok || v != "3" {
		t.Fatalf("a = %q %v", v, ok)
	}
	if v, _ := old.get("a"); v != "1" {
		t.Fatalf("old a = %q, want it unchanged", v)
	}
	m = m.delete("a").delete("b")
	if _, ok := m.get("b"); ok || m.len() != 0 || m.root != nil {
		t.Fatalf("after deleting all: len %d, root %v", m.len(), m.root)
	}
}

func TestClientMapOrigins(t *testing.T) {
	spa := &Client{ID: "spa", Public: true, RedirectURIs: []string{"https://app.example/cb", "https://app.example/other", "http://127.0.0.1/cb", "not a url:"}}
	other := &Client{ID: "other", Public: true, RedirectURIs: []string{"https://app.example/x"}}
	backend := &Client{ID: "backend", RedirectURIs: []string{"https://backend.example/cb"}}
	m := NewClientMap(spa, other, backend)
	for origin, want := range map[string]bool{"https://app.example": true, "http://127.0.0.1": true, "https://backend.example": false, "": false} {
		if got := m.AllowsOrigin(origin); got != want {
			t.Errorf("AllowsOrigin(%q) = %v, want %v", origin, got, want)
		}
	}
	m2 := m.Without("spa")
	if !m2.AllowsOrigin("https://app.example") || m2.AllowsOrigin("http://127.0.0.1") {
		t.Error("without spa: app.example is still some public client's, 127.0.0.1 nobody's")
	}
	m3 := m2.With(&Client{ID: "other", Public: true, RedirectURIs: []string{"https://moved.example/cb"}})
	if m3.AllowsOrigin("https://app.example") || !m3.AllowsOrigin("https://moved.example") || m3.Len() != 2 {
		t.Errorf("replaced client: origins not moved (len %d)", m3.Len())
	}
	if !m.AllowsOrigin("http://127.0.0.1") {
		t.Error("the first map changed")
	}
}
