// Package intern shares one copy of the strings that thousands of cached
// Kubernetes objects repeat: namespaces, label keys, scope names, an
// issuer's URLs. An informer decodes every object into fresh allocations,
// so at 10,000 OAuthClients the same few dozen strings are held tens of
// thousands of times.
//
// The canonical copies are kept for good, in a table of at most maxEntries:
// Go's unique package would drop a copy at the next garbage collection
// unless its Handle were kept, so strings decoded after a collection would
// not share the copies of those decoded before. A full table interns
// nothing more, which wastes memory but is never wrong, so strings chosen
// by an object's author (a label value) cannot make it grow without end.
//
// Intern only strings that repeat across objects: a unique string (a name,
// a hash) would take a table entry for nothing.
package intern

import (
	"strings"
	"sync"
	"unsafe"
)

// maxEntries bounds the table: a few hundred bytes each at most.
const maxEntries = 1 << 14

var table = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// String returns the process's canonical copy of s.
func String[S ~string](s S) S {
	if s == "" {
		return s
	}
	table.Lock()
	defer table.Unlock()
	if c, ok := table.m[string(s)]; ok {
		return S(c)
	}
	if len(table.m) >= maxEntries {
		return s
	}
	c := strings.Clone(string(s))
	table.m[c] = c
	return S(c)
}

// Strings interns every element, into a new slice.
func Strings[S ~string](in []S) []S {
	if len(in) == 0 {
		return nil
	}
	out := make([]S, len(in))
	for i, s := range in {
		out[i] = String(s)
	}
	return out
}

// Keys returns m with its keys interned, and its values too where
// internValue says so; m itself is left as it is.
func Keys(m map[string]string, internValue func(key string) bool) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if internValue(k) {
			v = String(v)
		}
		out[String(k)] = v
	}
	return out
}

// ReadOnlyBytes returns bytes equal to b that share the canonical copy of
// their contents. Writing into them would change every holder's copy:
// use them only in objects nobody writes into, such as an informer cache,
// whose readers get deep copies.
func ReadOnlyBytes(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	s := String(string(b))
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
