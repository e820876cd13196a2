package cluster

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// With two replicas the operator's PodDisruptionBudget lets a drain take
// one token-server pod, and refuses (429) to evict the last available one
// until the replacement is ready: what `kubectl drain` and the cluster
// autoscaler go through (the Eviction API), on a real kubelet and the
// real disruption controller.
func TestEvictionRespectsTheBudget(t *testing.T) {
	s := get(t)
	s.postgresServer(t)
	name := serverName + "-server"
	pdb := &policyv1.PodDisruptionBudget{}
	// The disruption controller has counted both replicas.
	testenv.Eventually(t, 2*time.Minute, func() error {
		if err := s.c.Get(t.Context(), client.ObjectKey{Namespace: haNS, Name: name}, pdb); err != nil {
			return err
		}
		if pdb.Status.ObservedGeneration < pdb.Generation || pdb.Status.CurrentHealthy != 2 || pdb.Status.DisruptionsAllowed != 1 {
			return fmt.Errorf("PodDisruptionBudget %s: %d healthy, %d disruptions allowed", name, pdb.Status.CurrentHealthy, pdb.Status.DisruptionsAllowed)
		}
		return nil
	})
	t.Logf("PodDisruptionBudget %s: maxUnavailable %s, %d healthy, %d disruption allowed",
		name, pdb.Spec.MaxUnavailable, pdb.Status.CurrentHealthy, pdb.Status.DisruptionsAllowed)
	pods := s.readyServerPods(t, haNS, 2)

	evict := func(pod *corev1.Pod) error {
		return s.c.SubResource("eviction").Create(t.Context(), pod, &policyv1.Eviction{
			ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name},
		})
	}
	if err := evict(&pods[0]); err != nil {
		t.Fatalf("evicting the first of two replicas (%s): %v", pods[0].Name, err)
	}
	evicted := time.Now()
	t.Logf("evicted %s", pods[0].Name)
	err := evict(&pods[1])
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("evicting the last available replica (%s) while its replacement is not ready: %v, want 429 Too Many Requests", pods[1].Name, err)
	}
	t.Logf("evicting %s refused while the budget holds: %v", pods[1].Name, err)

	// Once the replacement is ready the budget allows one disruption
	// again: the refusal was the budget's, not something else's.
	s.readyServerPods(t, haNS, 2)
	testenv.Eventually(t, 2*time.Minute, func() error {
		err := evict(&pods[1])
		if err != nil {
			return fmt.Errorf("evicting %s after the replacement is ready: %w", pods[1].Name, err)
		}
		return nil
	})
	t.Logf("replacement ready and %s evicted %s after the first eviction", pods[1].Name, time.Since(evicted).Round(time.Second))
	s.readyServerPods(t, haNS, 2)
}
