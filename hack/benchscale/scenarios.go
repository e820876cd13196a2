package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

type fanoutResult struct {
	// NewClientSecretSeconds: from creating a client right after the
	// Scope edit until it is Ready and its Secret readable.
	NewClientSecretSeconds float64 `json:"newClientSecretSeconds"`
	// NewClientTokenSeconds: until the token server issued it a token.
	NewClientTokenSeconds float64 `json:"newClientTokenSeconds"`
	// Reconciles the edit caused (all kinds), and how long until idle.
	Reconciles  float64 `json:"reconciles"`
	IdleSeconds float64 `json:"idleSeconds"`
	// RestoredSeconds: after the edit is undone, until every client is
	// Ready again and the operator idle; RestoreReconciles it took.
	RestoredSeconds   float64 `json:"restoredSeconds"`
	RestoreReconciles float64 `json:"restoreReconciles"`
}

// fanout makes the Scope every client uses admit only its own namespace,
// which changes every team client's outcome (Ready=False), creates a
// client in the Scope's namespace at once and times it through the
// fan-out; then it reopens the Scope and waits until all are Ready again.
func (e *env) fanout(ctx context.Context) (*fanoutResult, error) {
	progress("fan-out: closing the Scope all %d clients use to its own namespace, then creating a client there…", e.o.n)
	s0, err := e.operatorState(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.setScopeFrom(ctx, oauthv1.NamespacesFromSame); err != nil {
		return nil, err
	}
	began := time.Now()
	name := "fanout-new"
	if err := e.c.Create(ctx, newClient(benchNamespace, name)); err != nil {
		return nil, err
	}
	secretAt, tokenAt, err := e.untilToken(ctx, benchNamespace, name, readyTimeout(e.o.n))
	if err != nil {
		return nil, err
	}
	r := &fanoutResult{NewClientSecretSeconds: seconds(secretAt.Sub(began)), NewClientTokenSeconds: seconds(tokenAt.Sub(began))}
	progress("fan-out: the new client's Secret after %.2f s, its first token after %.2f s", r.NewClientSecretSeconds, r.NewClientTokenSeconds)
	waitStart := time.Now()
	idle, err := e.waitOperatorIdle(ctx, readyTimeout(e.o.n))
	if err != nil {
		return r, err
	}
	s1, err := e.operatorState(ctx)
	if err != nil {
		return r, err
	}
	r.Reconciles, r.IdleSeconds = s1.reconciles-s0.reconciles, seconds(waitStart.Sub(began)+idle)
	progress("fan-out: %0.f reconciles; operator idle %.1f s after the edit; reopening the Scope…", r.Reconciles, r.IdleSeconds)
	if err := e.setScopeFrom(ctx, oauthv1.NamespacesFromAll); err != nil {
		return r, err
	}
	reopened := time.Now()
	want := e.o.n + 1
	status := func() string { return fmt.Sprintf("%d/%d Ready", e.tracker.readyCount(), want) }
	if err := waitFor(ctx, readyTimeout(e.o.n), "all Ready again", func() bool { return e.tracker.readyCount() >= want }, status); err != nil {
		return r, err
	}
	if _, err := e.waitOperatorIdle(ctx, readyTimeout(e.o.n)); err != nil {
		return r, err
	}
	s2, err := e.operatorState(ctx)
	if err != nil {
		return r, err
	}
	r.RestoredSeconds, r.RestoreReconciles = seconds(time.Since(reopened)), s2.reconciles-s1.reconciles
	progress("fan-out: all Ready again %.1f s after reopening (%0.f reconciles)", r.RestoredSeconds, r.RestoreReconciles)
	return r, nil
}

// setScopeFrom sets whom the bench Scope admits.
func (e *env) setScopeFrom(ctx context.Context, from oauthv1.FromNamespaces) error {
	sc := &oauthv1.Scope{}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: "orders-read"}, sc); err != nil {
		return err
	}
	patch := client.MergeFrom(sc.DeepCopy())
	sc.Spec.AllowedClients.Namespaces = oauthv1.ClientNamespaces{From: from}
	if err := e.c.Patch(ctx, sc, patch); err != nil {
		return fmt.Errorf("editing the Scope: %w", err)
	}
	return nil
}

type restartResult struct {
	// IdleSeconds: from starting the new operator process until it is
	// idle (queues empty, nothing reconciled for 2 s; those 2 s excluded).
	IdleSeconds float64 `json:"idleSeconds"`
	Reconciles  float64 `json:"reconciles"`
	// Requests of the new process, by method; Writes are POST, PUT, PATCH
	// and DELETE.
	Requests       counters `json:"requests"`
	Writes         float64  `json:"writes"`
	SecretsChanged int      `json:"secretsChanged"`
}

// restart stops the operator, starts a new one and counts what it does.
func (e *env) restart(ctx context.Context) (*restartResult, error) {
	before, err := e.secretVersions(ctx)
	if err != nil {
		return nil, err
	}
	old := e.op()
	progress("restart: stopping the operator (pid %d)…", old.pid)
	old.retire()
	began := time.Now()
	if err := e.startOperator(ctx); err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.retired = append(e.retired, old)
	e.mu.Unlock()
	waitStart := time.Now()
	idle, err := e.waitOperatorIdle(ctx, readyTimeout(e.o.n))
	if err != nil {
		return nil, err
	}
	r := &restartResult{IdleSeconds: seconds(waitStart.Sub(began) + idle)}
	s, err := e.operatorState(ctx)
	if err != nil {
		return r, err
	}
	r.Reconciles = s.reconciles
	r.Requests = e.counters(ctx)
	r.Writes = r.Requests.ByMethod["POST"] + r.Requests.ByMethod["PUT"] + r.Requests.ByMethod["PATCH"] + r.Requests.ByMethod["DELETE"]
	after, err := e.secretVersions(ctx)
	if err != nil {
		return r, err
	}
	for k, v := range before {
		if after[k] != v {
			r.SecretsChanged++
		}
	}
	progress("restart: idle %.1f s after start; %0.f reconciles, %0.f requests (%0.f writes), %d Secrets changed",
		r.IdleSeconds, r.Reconciles, r.Requests.Operator, r.Writes, r.SecretsChanged)
	return r, nil
}

// secretVersions maps every Secret to its resourceVersion.
func (e *env) secretVersions(ctx context.Context) (map[string]string, error) {
	var l corev1.SecretList
	if err := e.c.List(ctx, &l); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(l.Items))
	for _, s := range l.Items {
		out[s.Namespace+"/"+s.Name] = s.ResourceVersion
	}
	return out, nil
}

// churnTraffic is how many untouched clients get token traffic during churn.
const churnTraffic = 20

type churnResult struct {
	Deleted int `json:"deleted"`
	Created int `json:"created"`
	// Traffic to clients neither deleted nor created.
	TrafficRequests int64 `json:"trafficRequests"`
	TrafficFailures int64 `json:"trafficFailures"`
	// MaxRefusalSeconds: the longest a sampled deleted client still got a
	// token after its DELETE returned.
	MaxRefusalSeconds float64 `json:"maxRefusalSeconds"`
	RefusalSamples    int     `json:"refusalSamples"`
	// NewReadySeconds: from the first write until every new client was Ready.
	NewReadySeconds float64 `json:"newReadySeconds"`
}

// churnScenario deletes the last -churn clients and creates as many new
// ones while churnTraffic other clients ask for tokens.
func (e *env) churnScenario(ctx context.Context) (*churnResult, error) {
	n, k := e.o.n, e.o.churn
	r := &churnResult{Deleted: k, Created: k}
	traffic := make([]creds, 0, churnTraffic)
	for i := range min(churnTraffic, n) {
		c, err := e.credentials(ctx, teamNamespace(i, e.o.namespaces), clientName(i))
		if err != nil {
			return nil, err
		}
		traffic = append(traffic, c)
	}
	samples := map[int]creds{}
	for j := 0; j < k; j += max(k/20, 1) {
		i := n - k + j
		c, err := e.credentials(ctx, teamNamespace(i, e.o.namespaces), clientName(i))
		if err != nil {
			return nil, err
		}
		samples[i] = c
	}
	progress("churn: deleting %d clients and creating %d under token traffic to %d others…", k, k, len(traffic))
	tctx, stopTraffic := context.WithCancel(ctx)
	var reqs, fails atomic.Int64
	var twg sync.WaitGroup
	for w := range 4 {
		twg.Add(1)
		go func() {
			defer twg.Done()
			for i := w; tctx.Err() == nil; i++ {
				code, err := e.token(tctx, traffic[i%len(traffic)])
				if tctx.Err() != nil {
					return
				}
				reqs.Add(1)
				if err != nil || code != http.StatusOK {
					fails.Add(1)
				}
			}
		}()
	}
	began := time.Now()
	refusals, err := e.churnWrites(ctx, samples)
	if err == nil {
		status := func() string { return fmt.Sprintf("%d/%d new clients Ready", e.churnReady(k), k) }
		err = waitFor(ctx, readyTimeout(k), "new clients Ready", func() bool { return e.churnReady(k) == k }, status)
		r.NewReadySeconds = seconds(time.Since(began))
	}
	stopTraffic()
	twg.Wait()
	r.TrafficRequests, r.TrafficFailures = reqs.Load(), fails.Load()
	for _, d := range refusals {
		r.MaxRefusalSeconds = max(r.MaxRefusalSeconds, seconds(d))
	}
	r.RefusalSamples = len(refusals)
	progress("churn: %d/%d traffic requests failed; deleted clients refused within %.2f s; new clients Ready after %.1f s",
		r.TrafficFailures, r.TrafficRequests, r.MaxRefusalSeconds, r.NewReadySeconds)
	return r, err
}

func churnName(i int) string { return fmt.Sprintf("churn-%05d", i) }

func (e *env) churnReady(k int) int {
	ready := 0
	for i := range k {
		if e.tracker.isReady(teamNamespace(i, e.o.namespaces) + "/" + churnName(i)) {
			ready++
		}
	}
	return ready
}

// churnWrites deletes and creates concurrently and, for each sampled
// deleted client, measures how long after its DELETE it still got tokens.
func (e *env) churnWrites(ctx context.Context, samples map[int]creds) ([]time.Duration, error) {
	n, k := e.o.n, e.o.churn
	var mu sync.Mutex
	var refusals []time.Duration
	var pwg sync.WaitGroup
	errs := make(chan error, 2)
	go func() {
		errs <- forEach(ctx, k, max(e.o.workers/2, 1), func(ctx context.Context, j int) error {
			i := n - k + j
			oc := &oauthv1.OAuthClient{}
			oc.Namespace, oc.Name = teamNamespace(i, e.o.namespaces), clientName(i)
			if err := retry(ctx, func() error { return e.c.Delete(ctx, oc) }); err != nil {
				return err
			}
			if c, ok := samples[i]; ok {
				pwg.Add(1)
				go func() {
					defer pwg.Done()
					d := e.untilRefused(ctx, c)
					mu.Lock()
					refusals = append(refusals, d)
					mu.Unlock()
				}()
			}
			return nil
		})
	}()
	go func() {
		errs <- forEach(ctx, k, max(e.o.workers/2, 1), func(ctx context.Context, i int) error {
			return retry(ctx, func() error { return e.c.Create(ctx, newClient(teamNamespace(i, e.o.namespaces), churnName(i))) })
		})
	}()
	err1, err2 := <-errs, <-errs
	pwg.Wait()
	if err1 != nil {
		return refusals, err1
	}
	return refusals, err2
}

// untilRefused asks for tokens until the token server refuses the client.
func (e *env) untilRefused(ctx context.Context, c creds) time.Duration {
	began := time.Now()
	for time.Since(began) < time.Minute && ctx.Err() == nil {
		if code, err := e.token(ctx, c); err == nil && code == http.StatusUnauthorized {
			return time.Since(began)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(began)
}
