// Package freshread reads objects from the informer cache unless the
// cache may be older than the operator's own last write of them.
package freshread

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrStale says the informer cache holds an object older than the
// operator's own last write of it. The reconcile can stop there: the watch
// event of that write is on its way and brings the object back to the
// queue, so reading it through the API server now would only cost a GET.
var ErrStale = errors.New("the cache is older than the operator's last write")

// Reader reads objects from the informer cache unless the cache may
// be older than the operator's own last write of that object.
//
// Secret decisions compare a client's Secret with its status.secretHashes,
// so acting on a copy older than the operator's last write would look like
// an outside change (and publish or revoke hashes wrongly). Reading every
// object through the API server avoids that but costs two GETs per
// reconcile, which at the client-side rate limit caps the operator at a
// few dozen clients per second, restarts included.
//
// Resource versions of one resource are ordered (apimachinery's
// CompareResourceVersion; KEP-5504), so the cache is fresh enough when it
// holds the version the last write returned, or a later one: only then is
// the write remembered no longer. An older cached copy is ErrStale. An
// object the cache cannot hold (a Secret the operator has not labelled) is
// read through the API server, and so is anything whose version is not a
// well-formed number.
type Reader struct {
	cache client.Reader
	api   client.Reader

	mu      sync.Mutex
	written map[client.ObjectKey]writtenVersion // by "type/namespace" and name
}

// writtenVersion is what the operator knows of its last write of an object.
type writtenVersion struct {
	rv string // "" after a delete
	// cached: the object is of a kind, and has the labels, that the
	// informer cache holds, so its watch event will come.
	cached bool
}

// New reads from cache, or through api when the cache may be stale.
func New(cache, api client.Reader) *Reader {
	return &Reader{cache: cache, api: api, written: map[client.ObjectKey]writtenVersion{}}
}

// Get fills obj from the cache when it is fresh. It returns ErrStale when
// the cache is behind a write whose watch event will still come, and
// reads through the API server when no event would: the object was
// written by the operator but is not cached, or a version cannot be
// compared. An object neither cached nor written is NotFound: the caller
// decides whether it may exist outside the cache.
func (f *Reader) Get(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	err := f.cache.Get(ctx, key, obj)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	f.mu.Lock()
	w, known := f.written[f.key(obj, key)]
	f.mu.Unlock()
	switch {
	case !known:
		return err
	case err == nil && w.rv == "":
		return ErrStale // deleted; the cache has not seen it yet
	case err == nil:
		c, cmpErr := resourceversion.CompareResourceVersion(obj.GetResourceVersion(), w.rv)
		if cmpErr == nil && c >= 0 {
			f.Forget(obj, key) // caught up: trust the cache again
			return nil
		}
		if cmpErr == nil {
			return ErrStale
		}
	case w.rv == "":
		f.Forget(obj, key) // deleted, and the cache agrees
		return err
	case w.cached:
		return ErrStale // written, and its add event is still on the way
	}
	return f.readThrough(ctx, key, obj)
}

// GetUncached reads obj through the API server and remembers its version.
func (f *Reader) GetUncached(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	return f.readThrough(ctx, key, obj)
}

func (f *Reader) readThrough(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	if err := f.api.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			f.Forget(obj, key)
		}
		return err
	}
	f.Remember(obj, false)
	return nil
}

// Remember records the version of obj returned by a write (or an uncached
// read); cached says whether the informer cache will hold this version.
func (f *Reader) Remember(obj client.Object, cached bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written[f.key(obj, client.ObjectKeyFromObject(obj))] = writtenVersion{rv: obj.GetResourceVersion(), cached: cached}
}

// Forget drops what is known of an object.
func (f *Reader) Forget(obj client.Object, key client.ObjectKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.written, f.key(obj, key))
	if len(f.written) == 0 {
		// A Go map keeps its size: without this, one bulk apply of 10,000
		// clients would hold their slots for good.
		f.written = map[client.ObjectKey]writtenVersion{}
	}
}

// size is the number of writes not yet seen by the cache (tests, memory).
func (f *Reader) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.written)
}

// key keeps objects of different kinds apart: a Secret may share its
// namespace and name with an OAuthClient.
func (f *Reader) key(obj client.Object, k client.ObjectKey) client.ObjectKey {
	return client.ObjectKey{Namespace: fmt.Sprintf("%T/%s", obj, k.Namespace), Name: k.Name}
}
