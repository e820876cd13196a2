package config

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
)

// DefaultVerifyInterval is how often a Kube source checks that its cache
// still matches the API server.
const DefaultVerifyInterval = 30 * time.Second

// verifyCatchUp is how long a cache that is behind the API server may take
// to catch up before a check counts as failed: a watch event normally
// arrives within milliseconds of the write.
const verifyCatchUp = 2 * time.Second

var (
	authorizationServersResource = oauthv1.GroupVersion.WithResource("authorizationservers")
	secretsResource              = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
)

// VerifiedAt is when the source last confirmed, against the API server,
// that the snapshot it serves is current; zero before the first
// confirmation. The informers keep the cache current without being asked,
// but a broken watch or a partition from the API server goes unnoticed by
// them: the server would keep serving its old snapshot (old keys, deleted
// clients) in silence. The check reads only metadata, with the access the
// server already has, off any request path.
func (k *Kube) VerifiedAt() time.Time {
	n := k.verifiedAt.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// verifyLoop checks freshness every k.verifyInterval until ctx ends.
func (k *Kube) verifyLoop(ctx context.Context) {
	t := time.NewTicker(k.verifyInterval)
	defer t.Stop()
	fresh := true
	for {
		err := k.verify(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && fresh:
			k.log.Warn("configuration may be stale: cannot confirm it against the API server", "error", err)
		case err == nil && !fresh:
			k.log.Info("configuration confirmed against the API server again")
		}
		fresh = err == nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// verify reads the resourceVersions of the AuthorizationServer and its
// signing-key Secret from the API server, and records the time of the read
// once the served snapshot was built from the same versions.
func (k *Kube) verify(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	began := time.Now()
	var live [2]string
	for i, ref := range []struct {
		gvr  schema.GroupVersionResource
		name string
	}{{authorizationServersResource, k.name}, {secretsResource, keyset.SecretName(k.name)}} {
		m, err := k.metadata.Resource(ref.gvr).Namespace(k.namespace).Get(ctx, ref.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("reading %s %s: %w", ref.gvr.Resource, ref.name, err)
		default:
			live[i] = m.ResourceVersion
		}
	}
	for {
		k.mu.Lock()
		built := k.built
		k.mu.Unlock()
		if built == live && k.current.Load() != nil {
			k.verifiedAt.Store(began.UnixNano())
			return nil
		}
		if time.Since(began) > verifyCatchUp {
			return fmt.Errorf("the served configuration was built from versions %q, the API server holds %q", built, live)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// builtFrom are the resourceVersions verify compares: the
// AuthorizationServer's and the keys Secret's ("" for one that is absent).
func builtFrom(in Inputs) [2]string {
	var v [2]string
	if in.Server != nil {
		v[0] = in.Server.ResourceVersion
	}
	if in.KeysSecret != nil {
		v[1] = in.KeysSecret.ResourceVersion
	}
	return v
}
