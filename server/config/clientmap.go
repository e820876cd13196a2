package config

import (
	"iter"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// ClientMap is an immutable set of Clients by client_id. With and Without
// return a new map that shares all but O(log n) of its memory with the old
// one, so a change to one OAuthClient costs the same whether the server
// has a hundred clients or fifty thousand, and every Snapshot keeps the map
// it was published with. The zero value is empty.
type ClientMap struct {
	byID pmap[*Client]
	// origins counts, per browser origin, the public clients with a
	// redirect URI there and the clients that list it in
	// spec.allowedCORSOrigins: the origins CORS admits (see AllowsOrigin).
	origins pmap[int]
	// listed counts, per origin, the clients that list it: the origins
	// introspection admits (ListsOrigin).
	listed pmap[int]
	// refreshTTLs counts the clients per refresh-token lifetime of their
	// own (LongestRefreshTTL), by nanoseconds.
	refreshTTLs pmap[int]
}

// NewClientMap returns a map of cs; a later client replaces an earlier one
// with the same ID.
func NewClientMap(cs ...*Client) ClientMap {
	var m ClientMap
	for _, c := range cs {
		m = m.With(c)
	}
	return m
}

// Get returns the client with client_id id, or nil.
func (m ClientMap) Get(id string) *Client {
	c, _ := m.byID.get(id)
	return c
}

// Len is the number of clients.
func (m ClientMap) Len() int { return m.byID.len() }

// All yields every client by client_id, in no particular order.
func (m ClientMap) All() iter.Seq2[string, *Client] { return m.byID.all() }

// With returns the map with c added, or replacing the client with its ID.
func (m ClientMap) With(c *Client) ClientMap {
	if old := m.Get(c.ID); old != nil {
		m = m.count(old, -1)
	}
	m.byID = m.byID.set(c.ID, c)
	return m.count(c, +1)
}

// Without returns the map without the client id.
func (m ClientMap) Without(id string) ClientMap {
	old := m.Get(id)
	if old == nil {
		return m
	}
	m = m.count(old, -1)
	m.byID = m.byID.delete(id)
	return m
}

// count adds delta to what the map counts of c.
func (m ClientMap) count(c *Client, delta int) ClientMap {
	m.origins = countKeys(m.origins, clientOrigins(c), delta)
	m.listed = countKeys(m.listed, c.CORSOrigins, delta)
	if l := c.TokenLifetimes; l != nil && l.RefreshToken != nil {
		m.refreshTTLs = countKeys(m.refreshTTLs, []string{strconv.FormatInt(int64(l.RefreshToken.Duration), 10)}, delta)
	}
	return m
}

// AllowsOrigin reports whether a browser at origin (scheme://host[:port])
// may call the endpoints a single-page app uses (token, userinfo,
// revocation): whether a public client has a redirect URI there, or a
// client lists it in spec.allowedCORSOrigins. Other confidential clients
// call from back ends and need no CORS (Fetch Standard, §3.2 "CORS
// protocol").
func (m ClientMap) AllowsOrigin(origin string) bool {
	_, ok := m.origins.get(origin)
	return ok && origin != ""
}

// ListsOrigin reports whether a client lists origin in
// spec.allowedCORSOrigins: the only origins introspection admits.
func (m ClientMap) ListsOrigin(origin string) bool {
	_, ok := m.listed.get(origin)
	return ok && origin != ""
}

// LongestRefreshTTL is the longest refresh-token lifetime a client sets
// for itself, or zero when none does.
func (m ClientMap) LongestRefreshTTL() time.Duration {
	var longest time.Duration
	for k := range m.refreshTTLs.all() {
		if n, err := strconv.ParseInt(k, 10, 64); err == nil {
			longest = max(longest, time.Duration(n))
		}
	}
	return longest
}

// countKeys adds delta to the count of each key, dropping keys whose
// count reaches zero.
func countKeys(counts pmap[int], keys []string, delta int) pmap[int] {
	for _, k := range keys {
		n, _ := counts.get(k)
		if n += delta; n > 0 {
			counts = counts.set(k, n)
		} else {
			counts = counts.delete(k)
		}
	}
	return counts
}

// clientOrigins are the distinct origins CORS admits for c: those of a
// public client's http(s) redirect URIs, and those it lists.
func clientOrigins(c *Client) []string {
	out := slices.Clone(c.CORSOrigins)
	if !c.Public {
		return out
	}
	for _, r := range c.RedirectURIs {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			continue
		}
		if o := u.Scheme + "://" + u.Host; !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}
