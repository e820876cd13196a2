package config

import (
	"fmt"
	"slices"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// clientState is what the Builder keeps to change one client at a time:
// every OAuthClient of the server as cached (shared with the informer, so
// not a copy), its compiled Client, and indexes from what a Scope change can
// affect back to the clients it affects.
type clientState struct {
	entries map[types.NamespacedName]*clientEntry
	// owner is the served entry claiming each client_id; dups lists, for
	// an ID more than one claims, all of them: such an ID is served by
	// none (a problem).
	owner map[string]*clientEntry
	dups  map[string][]*clientEntry
	// byScope and byAudience index served entries by the scope names and
	// audiences their spec lists, whether or not a Scope exists for them.
	byScope    map[string]map[*clientEntry]struct{}
	byAudience map[string]map[*clientEntry]struct{}
	grants     map[string]map[oauthv1.GrantType]bool

	published ClientMap
	problems  []string // naming dups, sorted; rebuilt when dups change
}

type clientEntry struct {
	obj    *oauthv1.OAuthClient
	client *Client // nil: not served
}

// serverGeneration numbers server-wide parts for Snapshot.SameServer,
// across Builders.
var serverGeneration atomic.Uint64

// SetServer rebuilds the server-wide part of the snapshot from in (in.Clients
// is ignored) and recompiles the clients whose outcome a Scope change can
// alter: those listing a scope name or an audience whose Scope appeared,
// went, moved to another API or changed whom it admits. Without an
// AuthorizationServer it fails and the Builder has no snapshot until the
// next successful call; the clients are kept.
func (b *Builder) SetServer(in Inputs) (*Snapshot, error) {
	s, err := b.buildServer(in)
	if err != nil {
		b.server = nil
		return nil, err
	}
	s.generation = serverGeneration.Add(1)
	old := b.server
	b.server = s
	target := types.NamespacedName{Namespace: in.Server.Namespace, Name: in.Server.Name}
	switch {
	case target != b.target:
		// The first server: drop the clients of others, compile the rest.
		b.target = target
		for key, e := range b.clients.entries {
			if !e.obj.References(target.Namespace, target.Name) {
				b.unserve(e)
				delete(b.clients.entries, key)
			}
		}
		b.recompileAll()
	case old == nil:
		b.recompileAll()
	default:
		b.rescope(old.Scopes, s.Scopes)
	}
	return b.Snapshot(), nil
}

// SetClient adds or replaces one OAuthClient (as cached: the Builder keeps
// the pointer and never modifies it) and returns the new snapshot, nil
// without an AuthorizationServer. An OAuthClient of another server is
// treated as deleted: its serverRef may have just changed.
func (b *Builder) SetClient(oc *oauthv1.OAuthClient) *Snapshot {
	key := types.NamespacedName{Namespace: oc.Namespace, Name: oc.Name}
	if b.target.Name != "" && !oc.References(b.target.Namespace, b.target.Name) {
		return b.DeleteClient(key.Namespace, key.Name)
	}
	st := &b.clients
	if st.entries == nil {
		st.entries = map[types.NamespacedName]*clientEntry{}
	}
	e := st.entries[key]
	if e == nil {
		e = &clientEntry{}
		st.entries[key] = e
	}
	// Out of the indexes under the old spec, before it is replaced.
	b.unserve(e)
	e.obj = oc
	b.recompile(e)
	return b.Snapshot()
}

// DeleteClient forgets the OAuthClient namespace/name.
func (b *Builder) DeleteClient(namespace, name string) *Snapshot {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	if e := b.clients.entries[key]; e != nil {
		b.unserve(e)
		delete(b.clients.entries, key)
	}
	return b.Snapshot()
}

// Snapshot is the current snapshot: the server-wide part with the current
// clients. It costs one small allocation; nil without an
// AuthorizationServer.
func (b *Builder) Snapshot() *Snapshot {
	if b.server == nil {
		return nil
	}
	s := *b.server
	s.Clients = b.clients.published
	if len(b.clients.problems) > 0 {
		s.Problems = append(slices.Clip(s.Problems), b.clients.problems...)
	}
	return &s
}

func (b *Builder) recompileAll() {
	for _, e := range b.clients.entries {
		b.recompile(e)
	}
}

// rescope recompiles the clients that use a scope name or audience whose
// Scope changed in a way that matters to clients.
func (b *Builder) rescope(old, cur map[string]*Scope) {
	affected := map[*clientEntry]struct{}{}
	mark := func(name string, sc *Scope) {
		for e := range b.clients.byScope[name] {
			affected[e] = struct{}{}
		}
		if sc != nil && sc.Audience != "" {
			for e := range b.clients.byAudience[sc.Audience] {
				affected[e] = struct{}{}
			}
		}
	}
	for name, o := range old {
		if c := cur[name]; !o.sameForClients(c) {
			mark(name, o)
			mark(name, c)
		}
	}
	for name, c := range cur {
		if old[name] == nil {
			mark(name, c)
		}
	}
	for e := range affected {
		b.recompile(e)
	}
}

// sameForClients: the Scope admits the same clients to the same API.
func (sc *Scope) sameForClients(o *Scope) bool {
	return o != nil && sc.Audience == o.Audience && sc.namespace == o.namespace && sc.from == o.from && sc.Builtin == o.Builtin
}

// recompile compiles e's client anew and serves the result.
func (b *Builder) recompile(e *clientEntry) {
	b.unserve(e)
	if b.server == nil {
		return // compiled when the server is back
	}
	st := &b.clients
	if st.grants == nil {
		st.grants = map[string]map[oauthv1.GrantType]bool{}
	}
	e.client = compileClient(e.obj, b.server, st.grants)
	if e.client != nil {
		b.serve(e)
	}
}

func (b *Builder) serve(e *clientEntry) {
	st := &b.clients
	for _, sc := range e.obj.Spec.Scopes {
		st.byScope = addIndex(st.byScope, string(sc), e)
	}
	for _, a := range e.obj.Audiences() {
		st.byAudience = addIndex(st.byAudience, string(a), e)
	}
	id := e.client.ID
	if claims, dup := st.dups[id]; dup {
		st.dups[id] = append(claims, e)
		return
	}
	first, taken := st.owner[id]
	if !taken {
		if st.owner == nil {
			st.owner = map[string]*clientEntry{}
		}
		st.owner[id] = e
		st.published = st.published.With(e.client)
		return
	}
	delete(st.owner, id)
	if st.dups == nil {
		st.dups = map[string][]*clientEntry{}
	}
	st.dups[id] = []*clientEntry{first, e}
	st.published = st.published.Without(id)
	b.duplicatesChanged()
}

// unserve takes e's client out of the published map and the indexes.
func (b *Builder) unserve(e *clientEntry) {
	if e.client == nil {
		return
	}
	st := &b.clients
	for _, sc := range e.obj.Spec.Scopes {
		removeIndex(st.byScope, string(sc), e)
	}
	for _, a := range e.obj.Audiences() {
		removeIndex(st.byAudience, string(a), e)
	}
	id := e.client.ID
	e.client = nil
	if st.owner[id] == e {
		delete(st.owner, id)
		st.published = st.published.Without(id)
		return
	}
	claims := slices.DeleteFunc(st.dups[id], func(o *clientEntry) bool { return o == e })
	if len(claims) > 1 {
		st.dups[id] = claims
		return
	}
	// One claim is left: it is served again.
	delete(st.dups, id)
	st.owner[claims[0].client.ID] = claims[0]
	st.published = st.published.With(claims[0].client)
	b.duplicatesChanged()
}

// duplicatesChanged rebuilds the problems naming client_ids claimed by more
// than one OAuthClient; it runs only when that set changes.
func (b *Builder) duplicatesChanged() {
	var ps []string
	for id := range b.clients.dups {
		ps = append(ps, fmt.Sprintf("client_id %q is claimed by more than one OAuthClient; serving neither", id))
	}
	slices.Sort(ps)
	b.clients.problems = ps
}

func addIndex(idx map[string]map[*clientEntry]struct{}, k string, e *clientEntry) map[string]map[*clientEntry]struct{} {
	if idx == nil {
		idx = map[string]map[*clientEntry]struct{}{}
	}
	set := idx[k]
	if set == nil {
		set = map[*clientEntry]struct{}{}
		idx[k] = set
	}
	set[e] = struct{}{}
	return idx
}

func removeIndex(idx map[string]map[*clientEntry]struct{}, k string, e *clientEntry) {
	if set := idx[k]; set != nil {
		delete(set, e)
		if len(set) == 0 {
			delete(idx, k)
		}
	}
}
