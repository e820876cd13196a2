package controllers_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

type operatorAuditLine struct {
	Event     string `json:"event"`
	ClientID  string `json:"clientID"`
	Issuer    string `json:"issuer"`
	ObjectRef struct {
		Resource, Namespace, Name, APIGroup string
	} `json:"objectRef"`
	ResponseStatus struct {
		Status, Reason, Message string
	} `json:"responseStatus"`
}

func operatorAuditLines(t *testing.T, buf *testenv.LogBuffer, log *audit.Log) []operatorAuditLine {
	t.Helper()
	log.Flush()
	var out []operatorAuditLine
	for _, s := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if s == "" {
			continue
		}
		var l operatorAuditLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		out = append(out, l)
	}
	return out
}

// Issue 23 item 1: the operator's audit lines: a signing key generated, a
// client refused and then admitted, its secret generated; each once, and
// never the secret.
func TestOperatorAuditLog(t *testing.T) {
	ns := newNamespace(t, nil)
	buf := &testenv.LogBuffer{}
	log := audit.New(buf, audit.Options{})
	t.Cleanup(func() { _ = log.Close() })
	startOperatorOpts(t, testenv.Get(t).Config, controllers.Options{Clock: newFakeClock(), Audit: log}, ns)

	srv := server(ns, "auth")
	create(t, srv)
	oc := oauthClient(ns, "shop", "", "auth", "orders:read")
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonUnknownScope)
	create(t, scope(ns, "orders-read", "auth", "orders:read"))
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	secret := string(appSecret(t, ns, "shop-oauth-client").Data["client_secret"])

	var lines []operatorAuditLine
	count := func(event, reason string) (n int, last operatorAuditLine) {
		for _, l := range lines {
			if l.Event == event && l.ResponseStatus.Reason == reason {
				n++
				last = l
			}
		}
		return n, last
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines = operatorAuditLines(t, buf, log)
		secrets, _ := count(audit.EventClientSecret, controllers.EventGenerated)
		keys, _ := count(audit.EventSigningKey, controllers.EventKeyPublished)
		if (secrets > 0 && keys >= 2) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	n, l := count(audit.EventSigningKey, controllers.EventKeyPublished)
	// One per key: the access tokens' and the ID tokens' (RS256).
	if n != 2 || l.ObjectRef.Resource != "authorizationservers" || l.ObjectRef.Name != "auth" || l.Issuer != srv.Spec.Issuer || l.ResponseStatus.Status != audit.StatusSuccess {
		t.Errorf("%d key lines, last %+v", n, l)
	}
	n, l = count(audit.EventClientAdmission, oauthv1.ReasonUnknownScope)
	if n != 1 || l.ResponseStatus.Status != audit.StatusFailure || l.ClientID != ns+".shop" || !strings.Contains(l.ResponseStatus.Message, "orders:read") {
		t.Errorf("%d refusal lines, last %+v", n, l)
	}
	n, l = count(audit.EventClientAdmission, oauthv1.ReasonReady)
	if n != 1 || l.ResponseStatus.Status != audit.StatusSuccess || l.ObjectRef.Resource != "oauthclients" || l.ObjectRef.Namespace != ns || l.ObjectRef.APIGroup != oauthv1.GroupVersion.Group {
		t.Errorf("%d admission lines, last %+v", n, l)
	}
	n, l = count(audit.EventClientSecret, controllers.EventGenerated)
	if n != 1 || l.ClientID != ns+".shop" {
		t.Errorf("%d secret lines, last %+v", n, l)
	}
	if secret == "" || strings.Contains(buf.String(), secret) {
		t.Errorf("the audit log carries the client secret (or there was none: %d bytes)", len(secret))
	}
}
