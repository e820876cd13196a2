package controllers

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatehouse-dev/gatehouse/internal/clientsecret"
	"github.com/gatehouse-dev/gatehouse/internal/operatormetrics"
)

// secretFacts is everything the secret decision looks at, read before it.
type secretFacts struct {
	now           time.Time
	secretName    string
	generatedHere bool   // the operator may write and rotate client_secret
	value         string // the client_secret in the Secret; "" for none
	hashes        secretHashes
	lastRotation  *metav1.Time
	grace         time.Duration
	interval      time.Duration // between rotations; 0 for on demand only
	rotateWanted  string        // the client's rotate-secret annotation
	rotateHandled *string       // the value last acted on, as recorded on the Secret; nil: none
}

// secretPlan is what reconcileSecret writes: the client_secret (used only
// when the operator may write it), the status, and what to tell the user.
type secretPlan struct {
	// weak, when set, refuses the value found; nothing else applies.
	weak         error
	plaintext    string
	hashes       secretHashes
	lastRotation *metav1.Time
	nextRotation time.Time
	events       []secretEvent
}

type secretEvent struct {
	typ, reason, note string // no Event when reason is empty
	counted           string // the operatormetrics.ClientSecrets label, if any
}

// decideSecret is the secret decision, in two ordered steps, with no I/O
// (generate makes new secrets):
//
//  1. The value in the Secret against the current hash:
//     a. none: generate one; every earlier hash goes at once (deleting the
//     Secret, or its key, is how to revoke a leaked secret);
//     b. the current one: keep it;
//     c. none published yet, in a Secret the operator writes: its own
//     secret whose status write was lost: take it back, no strength check;
//     d. anything else was put there by someone else: refuse it if weak,
//     otherwise adopt it, the previous secret staying valid for the grace
//     period.
//  2. Rotation, for secrets the operator writes: on the interval, or when
//     the rotate-secret annotation changed since it was last acted on (a
//     first value is only recorded). An adopted secret is rotated at its
//     source: asking the operator to rotate it only gets a warning.
//
// Hashes past their grace period are pruned last.
func decideSecret(f secretFacts, generate func() (string, error)) (secretPlan, error) {
	d := &secretDecision{f: f, generate: generate, hashes: f.hashes, lastRotation: f.lastRotation}
	d.recorded = f.rotateHandled != nil
	if d.recorded {
		d.handled = *f.rotateHandled
	}
	if err := d.valueFound(); err != nil || d.plan.weak != nil {
		return d.plan, err
	}
	if err := d.rotation(); err != nil {
		return secretPlan{}, err
	}
	d.plan.hashes, d.plan.lastRotation = d.hashes.pruned(f.now), d.lastRotation
	return d.plan, nil
}

// secretDecision is decideSecret's state between its two steps.
type secretDecision struct {
	f        secretFacts
	generate func() (string, error)
	// hashes and lastRotation are the status being decided.
	hashes       secretHashes
	lastRotation *metav1.Time
	plan         secretPlan
	handled      string // the rotate-secret value last acted on
	recorded     bool   // handled is known
}

func (d *secretDecision) tell(typ, reason, counted, format string, args ...any) {
	d.plan.events = append(d.plan.events, secretEvent{typ, reason, fmt.Sprintf(format, args...), counted})
}

// count counts a change in the metrics without an Event.
func (d *secretDecision) count(counted string) {
	d.plan.events = append(d.plan.events, secretEvent{counted: counted})
}

// valueFound is step 1: the value in the Secret against the current hash.
func (d *secretDecision) valueFound() error {
	f, plan := d.f, &d.plan
	current := d.hashes.current()
	switch {
	case f.value == "":
		var err error
		if plan.plaintext, err = d.generate(); err != nil {
			return err
		}
		d.hashes = secretHashes{{Hash: clientsecret.Hash(plan.plaintext)}}
		d.lastRotation = &metav1.Time{Time: f.now}
		d.handled, d.recorded = f.rotateWanted, true
		if current == "" {
			// A new client's first secret is news to nobody: its status
			// says where the secret is. An Event for each would be one
			// more API write per client, and held in the operator's event
			// cache for minutes, for nothing anyone acts on.
			d.count(operatormetrics.SecretGenerated)
			break
		}
		d.tell(corev1.EventTypeNormal, EventGenerated, operatormetrics.SecretGenerated,
			"the client secret in Secret %s was deleted: generated a new one and revoked the old one", f.secretName)
	case clientsecret.Hash(f.value) == current:
		plan.plaintext = f.value
	case current == "" && f.generatedHere:
		plan.plaintext = f.value
		d.hashes = d.hashes.withCurrent(clientsecret.Hash(f.value), time.Time{})
		if d.lastRotation == nil {
			d.lastRotation = &metav1.Time{Time: f.now}
		}
	default:
		if err := clientsecret.CheckAdoptable(f.value); err != nil {
			d.plan = secretPlan{weak: err}
			return nil
		}
		plan.plaintext = f.value
		graceUntil := time.Time{}
		if current != "" {
			graceUntil = f.now.Add(f.grace)
		}
		d.hashes = d.hashes.withCurrent(clientsecret.Hash(f.value), graceUntil)
		d.lastRotation = &metav1.Time{Time: f.now}
		d.handled, d.recorded = f.rotateWanted, true
		note := "adopted the client secret found in Secret %s"
		if current != "" {
			note = "the client secret in Secret %s changed outside the operator: adopted it; the previous one is accepted for the grace period"
		}
		d.tell(corev1.EventTypeNormal, EventAdopted, operatormetrics.SecretAdopted, note, f.secretName)
	}
	return nil
}

// rotation is step 2, for secrets the operator writes: on the interval,
// or when the rotate-secret annotation changed since it was last acted on.
func (d *secretDecision) rotation() error {
	f, plan := d.f, &d.plan
	onDemand := f.rotateWanted != "" && d.recorded && d.handled != f.rotateWanted
	switch {
	case f.generatedHere:
		if f.interval > 0 && d.lastRotation != nil {
			plan.nextRotation = d.lastRotation.Add(f.interval)
		}
		due := !plan.nextRotation.IsZero() && !f.now.Before(plan.nextRotation)
		if onDemand || due {
			var err error
			if plan.plaintext, err = d.generate(); err != nil {
				return err
			}
			d.hashes = d.hashes.withCurrent(clientsecret.Hash(plan.plaintext), f.now.Add(f.grace))
			d.lastRotation = &metav1.Time{Time: f.now}
			if !plan.nextRotation.IsZero() {
				plan.nextRotation = f.now.Add(f.interval)
			}
			d.tell(corev1.EventTypeNormal, EventRotated, operatormetrics.SecretRotated,
				"rotated the client secret in Secret %s; the previous one is accepted for %s", f.secretName, f.grace)
		}
	case onDemand:
		d.tell(corev1.EventTypeWarning, EventRotationExternal, "",
			"the client secret in Secret %s is adopted: rotate it where it comes from; the operator never overwrites it", f.secretName)
	}
	return nil
}
