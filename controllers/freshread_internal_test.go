package controllers

import (
	"context"
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

func TestFreshReader(t *testing.T) {
	ctx := context.Background()
	key := client.ObjectKey{Namespace: "ns", Name: "creds"}
	at := func(rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds", ResourceVersion: rv}}
	}
	cache := &mapReader{objs: map[string]*corev1.Secret{key.String(): at("5")}}
	api := &mapReader{objs: map[string]*corev1.Secret{key.String(): at("7")}}
	f := newFreshReader(cache, api)
	get := func() string {
		t.Helper()
		sec := &corev1.Secret{}
		if err := f.Get(ctx, key, sec); err != nil {
			t.Fatal(err)
		}
		return sec.ResourceVersion
	}

	if rv := get(); rv != "5" || api.reads != 0 {
		t.Errorf("nothing written yet: got version %s with %d API reads, want the cache's 5 and none", rv, api.reads)
	}
	f.remember(at("7")) // the operator wrote it
	if rv := get(); rv != "7" || api.reads != 1 {
		t.Errorf("cache behind the operator's write: got version %s with %d API reads, want 7 from the API", rv, api.reads)
	}
	cache.objs[key.String()] = at("7") // the cache catches up
	if rv := get(); rv != "7" || api.reads != 1 {
		t.Errorf("cache caught up: got version %s with %d API reads, want 7 from the cache", rv, api.reads)
	}
	// Someone else wrote after the operator: read through once, then trust
	// the cache again when it has that version.
	api.objs[key.String()] = at("9")
	cache.objs[key.String()] = at("8")
	f.remember(at("8"))
	cache.objs[key.String()] = at("7")
	if rv := get(); rv != "9" {
		t.Errorf("cache older than the last write: got version %s, want 9 from the API", rv)
	}
	cache.objs[key.String()] = at("9")
	reads := api.reads
	if rv := get(); rv != "9" || api.reads != reads {
		t.Errorf("cache at the version last read: got %s with %d more API reads, want 9 from the cache", rv, api.reads-reads)
	}

	// Not in the cache (a Secret the operator has not labelled): the API.
	delete(cache.objs, key.String())
	if rv := get(); rv != "9" {
		t.Errorf("cache miss: got version %s, want the API's", rv)
	}
	// Deleted: a cached copy is not trusted until the API says NotFound.
	cache.objs[key.String()] = at("9")
	delete(api.objs, key.String())
	gone := at("9")
	gone.SetResourceVersion("")
	f.remember(gone)
	if err := f.Get(ctx, key, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("after a delete: %v, want NotFound", err)
	}
}
