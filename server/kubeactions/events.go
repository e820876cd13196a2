package kubeactions

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// ClientEvents records Events (events.k8s.io/v1) about OAuthClients, in
// their namespaces, through client-go's broadcaster: asynchronous, so a
// slow API server never holds up the caller, and with repeated Events
// folded into one series.
type ClientEvents struct {
	broadcaster events.EventBroadcaster
	recorder    events.EventRecorder
}

// NewClientEvents starts recording; Stop ends it.
func NewClientEvents(ctx context.Context, cs kubernetes.Interface, scheme *runtime.Scheme) (*ClientEvents, error) {
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
		return nil, fmt.Errorf("recording Events: %w", err)
	}
	return &ClientEvents{broadcaster: b, recorder: b.NewRecorder(scheme, "gatehouse-server")}, nil
}

// Warning implements server.ClientEvents.
func (e *ClientEvents) Warning(c *config.Client, reason, message string) {
	oc := &oauthv1.OAuthClient{
		TypeMeta:   metav1.TypeMeta{APIVersion: oauthv1.GroupVersion.String(), Kind: "OAuthClient"},
		ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Name(), UID: c.UID},
	}
	e.recorder.Eventf(oc, nil, corev1.EventTypeWarning, reason, "Deliver", "%s", message)
}

// Stop flushes and stops the recording.
func (e *ClientEvents) Stop() { e.broadcaster.Shutdown() }
