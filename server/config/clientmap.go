package config

import (
	"iter"
	"net/url"
	"slices"
)

// ClientMap is an immutable set of Clients by client_id. With and Without
// return a new map that shares all but O(log n) of its memory with the old
// one, so a change to one OAuthClient costs the same whether the server
// has a hundred clients or fifty thousand, and every Snapshot keeps the map
// it was published with. The zero value is empty.
type ClientMap struct {
	byID pmap[*Client]
	// origins counts, per browser origin, the public clients with a
	// redirect URI there: the origins CORS admits (see AllowsOrigin).
	origins pmap[int]
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
		m.origins = countOrigins(m.origins, old, -1)
	}
	m.byID = m.byID.set(c.ID, c)
	m.origins = countOrigins(m.origins, c, +1)
	return m
}

// Without returns the map without the client id.
func (m ClientMap) Without(id string) ClientMap {
	old := m.Get(id)
	if old == nil {
		return m
	}
	m.origins = countOrigins(m.origins, old, -1)
	m.byID = m.byID.delete(id)
	return m
}

// AllowsOrigin reports whether a browser at origin (scheme://host[:port])
// may call the endpoints a single-page app uses: whether a public client
// has a redirect URI there. Confidential clients call from back ends and
// need no CORS (Fetch Standard, §3.2 "CORS protocol").
func (m ClientMap) AllowsOrigin(origin string) bool {
	_, ok := m.origins.get(origin)
	return ok && origin != ""
}

// countOrigins adds delta to the count of each of c's origins, dropping
// origins whose count reaches zero.
func countOrigins(origins pmap[int], c *Client, delta int) pmap[int] {
	for _, o := range clientOrigins(c) {
		n, _ := origins.get(o)
		if n += delta; n > 0 {
			origins = origins.set(o, n)
		} else {
			origins = origins.delete(o)
		}
	}
	return origins
}

// clientOrigins are the distinct http(s) origins of a public client's
// redirect URIs.
func clientOrigins(c *Client) []string {
	if !c.Public {
		return nil
	}
	var out []string
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
