package freshread

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// mapReader serves Secrets from a map and counts reads.
type mapReader struct {
	objs  map[string]*corev1.Secret
	reads int
}

func (m *mapReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	m.reads++
	s, ok := m.objs[key.String()]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, key.Name)
	}
	s.DeepCopyInto(obj.(*corev1.Secret))
	return nil
}

func (m *mapReader) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }

func TestReader(t *testing.T) {
	ctx := context.Background()
	key := client.ObjectKey{Namespace: "ns", Name: "creds"}
	at := func(rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds", ResourceVersion: rv}}
	}
	cache := &mapReader{objs: map[string]*corev1.Secret{key.String(): at("5")}}
	api := &mapReader{objs: map[string]*corev1.Secret{key.String(): at("7")}}
	f := New(cache, api)
	get := func() (string, error) {
		t.Helper()
		sec := &corev1.Secret{}
		err := f.Get(ctx, key, sec)
		return sec.ResourceVersion, err
	}

	if rv, err := get(); rv != "5" || err != nil || api.reads != 0 {
		t.Errorf("nothing written yet: got version %s (%v) with %d API reads, want the cache's 5 and none", rv, err, api.reads)
	}
	f.Remember(at("7"), true) // the operator wrote it
	if _, err := get(); !errors.Is(err, ErrStale) || api.reads != 0 {
		t.Errorf("cache behind the operator's write: %v with %d API reads, want ErrStale and none (the watch event will come)", err, api.reads)
	}
	cache.objs[key.String()] = at("7") // the cache catches up
	if rv, err := get(); rv != "7" || err != nil || api.reads != 0 || f.size() != 0 {
		t.Errorf("cache caught up: got version %s (%v) with %d API reads and %d remembered, want 7 from the cache and nothing remembered", rv, err, api.reads, f.size())
	}
	// Someone else wrote after the operator: the cache is newer than the
	// operator's write, which is fresh enough.
	f.Remember(at("8"), true)
	cache.objs[key.String()] = at("10")
	if rv, err := get(); rv != "10" || err != nil || api.reads != 0 {
		t.Errorf("cache newer than the last write: got %s (%v) with %d API reads, want 10 from the cache", rv, err, api.reads)
	}
	// A version that is not a number cannot be compared: read through.
	f.Remember(at("x9"), true)
	api.objs[key.String()] = at("11")
	if rv, err := get(); rv != "11" || err != nil || api.reads != 1 {
		t.Errorf("uncomparable version: got %s (%v) with %d API reads, want 11 from the API", rv, err, api.reads)
	}

	// Written but never cached (a Secret the operator has not labelled):
	// the API, every time.
	delete(cache.objs, key.String())
	f.Remember(at("11"), false)
	if rv, err := get(); rv != "11" || err != nil || api.reads != 2 {
		t.Errorf("uncached object: got version %s (%v) with %d API reads, want the API's", rv, err, api.reads)
	}
	// Written and cacheable, not in the cache yet: its add event will come.
	f.Remember(at("12"), true)
	if _, err := get(); !errors.Is(err, ErrStale) {
		t.Errorf("created, cache not there yet: %v, want ErrStale", err)
	}
	// Neither cached nor written: NotFound without an API read.
	f.Forget(at(""), key)
	if _, err := get(); !apierrors.IsNotFound(err) || api.reads != 2 {
		t.Errorf("unknown object: %v with %d API reads, want NotFound and none", err, api.reads)
	}
	// Deleted: a cached copy is stale until the cache sees the delete.
	cache.objs[key.String()] = at("12")
	gone := at("")
	f.Remember(gone, true)
	if _, err := get(); !errors.Is(err, ErrStale) {
		t.Errorf("after a delete, cache still has it: %v, want ErrStale", err)
	}
	delete(cache.objs, key.String())
	if _, err := get(); !apierrors.IsNotFound(err) || f.size() != 0 {
		t.Errorf("after a delete the cache has seen: %v (%d remembered), want NotFound and nothing remembered", err, f.size())
	}
}
