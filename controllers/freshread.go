package controllers

import (
	"context"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// freshReader reads objects from the informer cache unless the cache may
// be older than the operator's own last write of that object, and only then
// from the API server.
//
// Secret decisions compare a client's Secret with its status.secretHashes,
// so acting on a copy older than the operator's last write would look like
// an outside change (and publish or revoke hashes wrongly). Reading every
// object through the API server avoids that but costs two GETs per
// reconcile, which at the client-side rate limit caps the operator at a
// few dozen clients per second, restarts included. The cache is fresh
// enough when it holds the resourceVersion the operator's last write
// returned; any other version, newer or older, is read through once and
// remembered, so the cache is trusted again as soon as it catches up.
type freshReader struct {
	cache client.Reader
	api   client.Reader

	mu      sync.Mutex
	written map[client.ObjectKey]string // last resourceVersion seen from a write or uncached read, by "kind/ns/name"
}

func newFreshReader(cache, api client.Reader) *freshReader {
	return &freshReader{cache: cache, api: api, written: map[client.ObjectKey]string{}}
}

// Get fills obj from the cache when it is fresh, otherwise from the API
// server. An object missing from the cache is read from the API server,
// because the cache holds only what the operator labelled (and a Secret to
// adopt is not labelled yet).
func (f *freshReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	err := f.cache.Get(ctx, key, obj)
	switch {
	case err == nil && !f.stale(obj):
		return nil
	case err != nil && !apierrors.IsNotFound(err):
		return err
	}
	if err := f.api.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			f.forget(obj, key)
		}
		return err
	}
	f.remember(obj)
	return nil
}

// remember records the version of obj returned by a write (or an uncached
// read): until the cache holds this version, Get reads through.
func (f *freshReader) remember(obj client.Object) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written[f.key(obj, client.ObjectKeyFromObject(obj))] = obj.GetResourceVersion()
}

// forget drops what is known of a deleted object.
func (f *freshReader) forget(obj client.Object, key client.ObjectKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.written, f.key(obj, key))
}

func (f *freshReader) stale(obj client.Object) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	rv, ok := f.written[f.key(obj, client.ObjectKeyFromObject(obj))]
	return ok && rv != obj.GetResourceVersion()
}

// key keeps objects of different kinds apart: a Secret may share its
// namespace and name with an OAuthClient.
func (f *freshReader) key(obj client.Object, k client.ObjectKey) client.ObjectKey {
	return client.ObjectKey{Namespace: fmt.Sprintf("%T/%s", obj, k.Namespace), Name: k.Name}
}
