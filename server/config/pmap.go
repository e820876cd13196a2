package config

import (
	"hash/maphash"
	"iter"
	"math/bits"
)

// pmap is an immutable map from strings, a hash array mapped trie (Bagwell,
// "Ideal Hash Trees", 2001): set and delete copy only the O(log32 n) nodes
// on the key's path and share the rest with the map they started from, so
// that the token server can publish a new client map per OAuthClient event
// without copying the other clients, while requests read the old one
// without locks. The zero value is an empty map.
type pmap[V any] struct {
	root *pnode[V]
	n    int
}

// pnode holds up to 32 entries, one per 5 bits of the hash at its depth;
// past the hash's 64 bits, a node lists the colliding keys in order.
type pnode[V any] struct {
	bitmap  uint32
	entries []pentry[V]
}

// pentry is a key and value, or (sub != nil) a deeper node.
type pentry[V any] struct {
	sub  *pnode[V]
	hash uint64
	key  string
	val  V
}

const (
	pbits  = 5
	pmask  = 1<<pbits - 1
	hashed = 64 // bits of the hash
)

// pseed is per process: hashes are never stored or compared across
// processes.
var pseed = maphash.MakeSeed()

func phash(k string) uint64 { return maphash.String(pseed, k) }

func (m pmap[V]) len() int { return m.n }

func (m pmap[V]) get(k string) (V, bool) {
	h, n := phash(k), m.root
	for shift := uint(0); n != nil; shift += pbits {
		if shift >= hashed {
			for _, e := range n.entries {
				if e.key == k {
					return e.val, true
				}
			}
			break
		}
		bit := uint32(1) << ((h >> shift) & pmask)
		if n.bitmap&bit == 0 {
			break
		}
		e := &n.entries[bits.OnesCount32(n.bitmap&(bit-1))]
		if e.sub == nil {
			if e.key == k {
				return e.val, true
			}
			break
		}
		n = e.sub
	}
	var zero V
	return zero, false
}

// set returns a map with k set to v.
func (m pmap[V]) set(k string, v V) pmap[V] {
	root, added := m.root.set(phash(k), 0, k, v)
	if added {
		m.n++
	}
	m.root = root
	return m
}

// delete returns a map without k.
func (m pmap[V]) delete(k string) pmap[V] {
	root, removed := m.root.delete(phash(k), 0, k)
	if removed {
		m.n--
		m.root = root
	}
	return m
}

// all yields every entry, in no particular order.
func (m pmap[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) { m.root.walk(yield) }
}

func (n *pnode[V]) walk(yield func(string, V) bool) bool {
	if n == nil {
		return true
	}
	for i := range n.entries {
		e := &n.entries[i]
		if e.sub != nil {
			if !e.sub.walk(yield) {
				return false
			}
		} else if !yield(e.key, e.val) {
			return false
		}
	}
	return true
}

func (n *pnode[V]) set(h uint64, shift uint, k string, v V) (*pnode[V], bool) {
	leaf := pentry[V]{hash: h, key: k, val: v}
	if n == nil {
		if shift >= hashed {
			return &pnode[V]{entries: []pentry[V]{leaf}}, true
		}
		return &pnode[V]{bitmap: 1 << ((h >> shift) & pmask), entries: []pentry[V]{leaf}}, true
	}
	if shift >= hashed {
		for i, e := range n.entries {
			if e.key == k {
				return n.with(i, leaf), false
			}
		}
		return &pnode[V]{entries: append(n.entries[:len(n.entries):len(n.entries)], leaf)}, true
	}
	bit := uint32(1) << ((h >> shift) & pmask)
	i := bits.OnesCount32(n.bitmap & (bit - 1))
	if n.bitmap&bit == 0 {
		entries := make([]pentry[V], 0, len(n.entries)+1)
		entries = append(append(append(entries, n.entries[:i]...), leaf), n.entries[i:]...)
		return &pnode[V]{bitmap: n.bitmap | bit, entries: entries}, true
	}
	e := n.entries[i]
	switch {
	case e.sub != nil:
		sub, added := e.sub.set(h, shift+pbits, k, v)
		return n.with(i, pentry[V]{sub: sub}), added
	case e.key == k:
		return n.with(i, leaf), false
	default:
		// Two keys share the slot: push both one level down.
		sub, _ := (*pnode[V])(nil).set(e.hash, shift+pbits, e.key, e.val)
		sub, _ = sub.set(h, shift+pbits, k, v)
		return n.with(i, pentry[V]{sub: sub}), true
	}
}

func (n *pnode[V]) delete(h uint64, shift uint, k string) (*pnode[V], bool) {
	if n == nil {
		return nil, false
	}
	if shift >= hashed {
		for i, e := range n.entries {
			if e.key == k {
				return n.without(i, 0), true
			}
		}
		return n, false
	}
	bit := uint32(1) << ((h >> shift) & pmask)
	if n.bitmap&bit == 0 {
		return n, false
	}
	i := bits.OnesCount32(n.bitmap & (bit - 1))
	e := n.entries[i]
	if e.sub == nil {
		if e.key != k {
			return n, false
		}
		return n.without(i, bit), true
	}
	sub, removed := e.sub.delete(h, shift+pbits, k)
	switch {
	case !removed:
		return n, false
	case sub == nil:
		return n.without(i, bit), true
	case len(sub.entries) == 1 && sub.entries[0].sub == nil:
		// A lone key moves back up, so that deletes shrink the trie.
		return n.with(i, sub.entries[0]), true
	default:
		return n.with(i, pentry[V]{sub: sub}), true
	}
}

// with copies the node with entry i replaced.
func (n *pnode[V]) with(i int, e pentry[V]) *pnode[V] {
	c := &pnode[V]{bitmap: n.bitmap, entries: make([]pentry[V], len(n.entries))}
	copy(c.entries, n.entries)
	c.entries[i] = e
	return c
}

// without copies the node without entry i (whose bitmap bit is bit; 0 in
// collision nodes); nil when nothing is left.
func (n *pnode[V]) without(i int, bit uint32) *pnode[V] {
	if len(n.entries) == 1 {
		return nil
	}
	entries := make([]pentry[V], 0, len(n.entries)-1)
	entries = append(append(entries, n.entries[:i]...), n.entries[i+1:]...)
	return &pnode[V]{bitmap: n.bitmap &^ bit, entries: entries}
}
