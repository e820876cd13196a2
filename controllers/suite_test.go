package controllers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestMain(m *testing.M) {
	// Informers log through the global logger; collect it with the rest,
	// so the plaintext scan covers every line the operator writes.
	ctrl.SetLogger(zap.New(zap.WriteTo(globalLogs), zap.UseDevMode(true)))
	os.Exit(testenv.Run(m))
}

// globalLogs holds what was logged through controller-runtime's global
// logger, by every operator in the test process.
var globalLogs = &testenv.LogBuffer{}

// fakeClock is the operator's clock in tests: it moves only when told.
// It also holds the operator's timers (queue.Timers): a reconcile's
// RequeueAfter fires when the test moves the clock past it, never on its
// own.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock and runs the timers that are then due.
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	pending := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(c.now) {
			pending = append(pending, tm)
		} else {
			due = append(due, tm.f)
		}
	}
	c.timers = pending
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// AfterFunc runs f once the clock has moved d on.
func (c *fakeClock) AfterFunc(d time.Duration, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), f: f})
}

// operator is a running operator in the test process.
type operator struct {
	clock *fakeClock
	logs  *testenv.LogBuffer
	cache cache.Cache // the manager's: what the reconcilers read
	stop  func()
}

// startOperator runs the operator against the test API server, watching
// only the given namespaces so that tests running side by side do not
// reconcile each other's objects.
func startOperator(t *testing.T, clock *fakeClock, namespaces ...string) *operator {
	t.Helper()
	return startOperatorWith(t, clock, testenv.Get(t).Config, namespaces...)
}

// startOperatorWith is startOperator with a client configuration of the
// test's own (e.g. one that counts requests).
func startOperatorWith(t *testing.T, clock *fakeClock, cfg *rest.Config, namespaces ...string) *operator {
	t.Helper()
	return startOperatorOpts(t, cfg, controllers.Options{Clock: clock}, namespaces...)
}

// startOperatorOpts is startOperatorWith with operator options of the
// test's own (Clock is required).
func startOperatorOpts(t testing.TB, cfg *rest.Config, opts controllers.Options, namespaces ...string) *operator {
	t.Helper()
	cp := testenv.Get(t)
	clock := opts.Clock.(*fakeClock)
	opts.ServerImage, opts.SkipNameValidation, opts.Namespaces = "gatehouse:test", true, namespaces
	logs := &testenv.LogBuffer{}
	logger := zap.New(zap.WriteTo(logs), zap.UseDevMode(true))
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 cp.Scheme,
		Cache:                  controllers.CacheOptions(namespaces),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	op := &operator{clock: clock, logs: logs, cache: mgr.GetCache()}
	op.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("operator stopped with an error: %v", err)
			}
		})
	}
	t.Cleanup(op.stop)
	return op
}

func newNamespace(t testing.TB, labels map[string]string) string {
	t.Helper()
	cp := testenv.Get(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gh-", Labels: labels}}
	if err := cp.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func conditionsOf(o client.Object) []metav1.Condition {
	switch o := o.(type) {
	case *oauthv1.OAuthClient:
		return o.Status.Conditions
	case *oauthv1.Scope:
		return o.Status.Conditions
	case *oauthv1.AuthorizationServer:
		return o.Status.Conditions
	}
	panic(fmt.Sprintf("no conditions on %T", o))
}

// waitCondition waits until obj's condition typ has the status and reason,
// set by a reconcile of obj's current generation, and leaves the fetched
// object in obj.
func waitCondition(t *testing.T, obj client.Object, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() error { return conditionIs(t, obj, typ, status, reason) })
}

// conditionIs fetches obj and says how its condition typ differs from the
// status and reason for its current generation, if it does.
func conditionIs(t *testing.T, obj client.Object, typ string, status metav1.ConditionStatus, reason string) error {
	t.Helper()
	if err := testenv.Get(t).Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		return err
	}
	cond := meta.FindStatusCondition(conditionsOf(obj), typ)
	if cond == nil {
		return fmt.Errorf("%T %s has no %s condition yet", obj, obj.GetName(), typ)
	}
	if cond.Status != status || cond.Reason != reason {
		return fmt.Errorf("%T %s: %s=%s (%s: %s), want %s (%s)", obj, obj.GetName(), typ, cond.Status, cond.Reason, cond.Message, status, reason)
	}
	if cond.ObservedGeneration != obj.GetGeneration() {
		return fmt.Errorf("%T %s: condition is for generation %d, not %d", obj, obj.GetName(), cond.ObservedGeneration, obj.GetGeneration())
	}
	return nil
}

// reconciled makes the operator reconcile oc once more and waits until it
// has: it changes the client's display name, which the operator does not
// use, so that the generation moves, and waits for the Ready condition to
// be set for that generation, with its current status and reason. A test
// asserting that a re-reconcile changed nothing asserts it after the
// reconcile, not after a sleep that may end before the reconcile begins.
func reconciled(t *testing.T, oc *oauthv1.OAuthClient) {
	t.Helper()
	get(t, oc)
	ready := readyCondition(oc)
	if ready == nil {
		t.Fatalf("OAuthClient %s has no Ready condition to wait on", oc.Name)
	}
	patch := fmt.Sprintf(`{"spec":{"displayName":"reconcile %d"}}`, oc.Generation+1)
	if err := testenv.Get(t).Client.Patch(context.Background(), oc, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, oc, oauthv1.ConditionReady, ready.Status, ready.Reason)
}

// waitRecheck waits until obj's condition is as wanted while moving the
// operator's clock on by secretRecheck's first interval, 10 s, at each
// look: a client waiting on a Secret the operator does not watch (it did
// not label it) finds a change to that Secret only when it looks again.
func waitRecheck(t *testing.T, op *operator, obj client.Object, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	began := time.Now()
	testenv.Eventually(t, 20*time.Second, func() error {
		op.clock.Add(10 * time.Second)
		return conditionIs(t, obj, typ, status, reason)
	})
	t.Logf("the recheck found the change after %s", time.Since(began).Round(time.Millisecond))
}

func readyCondition(o client.Object) *metav1.Condition {
	return meta.FindStatusCondition(conditionsOf(o), oauthv1.ConditionReady)
}

// settled waits until op has caught up with everything in namespaces: its cache
// holds every OAuthClient, Scope and AuthorizationServer, and every Secret
// it manages, at the API server's current version (so the watch events of
// its own last writes, and the reconciles they queue, have reached it), and
// no reconcile is running. It has to see that twice in a row, 50 ms apart,
// with nothing written in between. Tests that count the operator's requests
// over a window open and close the window here rather than after a sleep,
// which ended before the echoes of a slow write had come back and let a
// burst of requests fall outside the window.
func settled(t *testing.T, op *operator, namespaces ...string) {
	t.Helper()
	last := ""
	testenv.Eventually(t, 30*time.Second, func() error {
		versions := ""
		for _, ns := range namespaces {
			v, err := cacheCaughtUp(t, op, ns)
			if err != nil {
				last = ""
				return err
			}
			versions += ns + ": " + v + "\n"
		}
		if busy := activeReconciles(t); busy > 0 {
			last = ""
			return fmt.Errorf("%d reconciles running", busy)
		}
		if versions != last {
			last = versions
			return errors.New("caught up once; looking again")
		}
		return nil
	})
}

// cacheCaughtUp compares op's cache with the API server in ns and returns
// the versions it found the same in both.
func cacheCaughtUp(t *testing.T, op *operator, ns string) (string, error) {
	ctx := context.Background()
	managed := client.MatchingLabels{oauthv1.LabelManagedBy: oauthv1.LabelManagedByValue}
	var versions []string
	for _, l := range []struct {
		list client.ObjectList
		opts []client.ListOption
	}{
		{&oauthv1.OAuthClientList{}, nil},
		{&oauthv1.ScopeList{}, nil},
		{&oauthv1.AuthorizationServerList{}, nil},
		{&corev1.SecretList{}, []client.ListOption{managed}},
	} {
		opts := append([]client.ListOption{client.InNamespace(ns)}, l.opts...)
		server := l.list.DeepCopyObject().(client.ObjectList)
		if err := testenv.Get(t).Client.List(ctx, server, opts...); err != nil {
			return "", err
		}
		if err := op.cache.List(ctx, l.list, opts...); err != nil {
			return "", err
		}
		cached := map[string]string{}
		if err := meta.EachListItem(l.list, func(o runtime.Object) error {
			m := o.(client.Object)
			cached[m.GetName()] = m.GetResourceVersion()
			return nil
		}); err != nil {
			return "", err
		}
		if err := meta.EachListItem(server, func(o runtime.Object) error {
			m := o.(client.Object)
			if got := cached[m.GetName()]; got != m.GetResourceVersion() {
				return fmt.Errorf("the operator's cache has %T %s at version %q, the API server at %s", m, m.GetName(), got, m.GetResourceVersion())
			}
			delete(cached, m.GetName())
			versions = append(versions, m.GetName()+"@"+m.GetResourceVersion())
			return nil
		}); err != nil {
			return "", err
		}
		for name := range cached {
			return "", fmt.Errorf("the operator's cache still has %s, which is gone", name)
		}
	}
	return strings.Join(versions, " "), nil
}

// activeReconciles is how many reconciles the operators of this process
// are running now.
func activeReconciles(t *testing.T) int {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() == "controller_runtime_active_workers" {
			for _, m := range f.GetMetric() {
				total += m.GetGauge().GetValue()
			}
		}
	}
	return int(total)
}

// poke changes an annotation, which makes the operator reconcile at once:
// tests use it after moving the fake clock.
func poke(t *testing.T, obj client.Object) {
	t.Helper()
	c := testenv.Get(t).Client
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"test.gatehouse.dev/poke":"%d"}}}`, time.Now().UnixNano())
	if err := c.Patch(context.Background(), obj, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

func setAnnotation(t *testing.T, obj client.Object, k, v string) {
	t.Helper()
	c := testenv.Get(t).Client
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{k: v}}})
	if err := c.Patch(context.Background(), obj, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
}

// eventsFor lists the Events about an object, with their reasons.
func eventsFor(t *testing.T, ns, name string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := testenv.Get(t).Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func waitEvent(t *testing.T, ns, name, reason string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	testenv.Eventually(t, 10*time.Second, func() error {
		var reasons []string
		for _, e := range eventsFor(t, ns, name) {
			if e.Reason == reason {
				found = e
				return nil
			}
			reasons = append(reasons, e.Reason)
		}
		return fmt.Errorf("no %s event for %s/%s (have %v)", reason, ns, name, reasons)
	})
	return found
}

// assertNoPlaintext fails if secret appears in what anyone but the app can
// see: OAuthClient objects (status included), Events, and operator logs.
func assertNoPlaintext(t *testing.T, op *operator, ns, secret string) {
	t.Helper()
	if len(secret) < 16 {
		t.Fatalf("refusing to scan for a %d-byte needle", len(secret))
	}
	c := testenv.Get(t).Client
	var clients oauthv1.OAuthClientList
	if err := c.List(context.Background(), &clients, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var evs eventsv1.EventList
	if err := c.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var corev1Events corev1.EventList
	if err := c.List(context.Background(), &corev1Events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for what, v := range map[string]any{"OAuthClients": clients, "Events": evs, "core Events": corev1Events} {
		b, _ := json.Marshal(v)
		if strings.Contains(string(b), secret) {
			t.Errorf("the plaintext client secret appears in %s", what)
		}
	}
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprint(families), secret) {
		t.Error("the plaintext client secret appears in the metrics")
	}
	if op != nil {
		logs := op.logs.String() + globalLogs.String()
		if logs == "" {
			t.Error("the operator logged nothing: the log scan would prove nothing")
		}
		if strings.Contains(logs, secret) {
			t.Error("the plaintext client secret appears in the operator's logs")
		}
	}
}
