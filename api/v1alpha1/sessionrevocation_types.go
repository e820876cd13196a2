package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SessionRevocationSpec names the person whose sessions and grants end.
//
// +kubebuilder:validation:XValidation:rule="[has(self.subject), has(self.username)].exists_one(x, x)",message="name the person by exactly one of subject or username"
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a SessionRevocation is a record of one action and cannot be changed: create another"
type SessionRevocationSpec struct {
	// ServerRef is the AuthorizationServer, in this namespace, whose
	// sessions and grants end.
	ServerRef LocalObjectReference `json:"serverRef"`

	// Subject is the person's sub, as in their tokens: the users Secret's
	// subject (the username unless set), or "idp:<provider>:<hash>" for
	// a person from an identity provider (how to compute it:
	// docs/tutorials/identity-providers.md, "Subjects").
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Subject string `json:"subject,omitempty"`

	// Username is the person's username in the users Secret, for which
	// the server looks up the subject. People from identity providers are
	// named by subject.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Username string `json:"username,omitempty"`

	// Reason is why, for the record (an audit trail, a ticket number).
	// It is logged with the action.
	//
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`
}

// SessionRevocationStatus is what the token server did.
type SessionRevocationStatus struct {
	// Conditions: Complete is True once the sessions and grants have
	// ended (reason Completed), False when the person cannot be named
	// (reason UnknownUsername).
	//
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Subject is the sub whose sessions and grants ended.
	//
	// +optional
	Subject string `json:"subject,omitempty"`

	// SessionsEnded counts the browser sessions ended.
	//
	// +optional
	SessionsEnded int32 `json:"sessionsEnded,omitempty"`

	// GrantsRevoked counts the refresh-token families revoked, with the
	// access tokens issued under them.
	//
	// +optional
	GrantsRevoked int32 `json:"grantsRevoked,omitempty"`

	// ConsentsDeleted counts the remembered consents deleted.
	//
	// +optional
	ConsentsDeleted int32 `json:"consentsDeleted,omitempty"`

	// LogoutTokensQueued counts the back-channel logout tokens queued
	// for the applications the person used (OpenID Connect Back-Channel
	// Logout 1.0). Their delivery is reported on each OAuthClient.
	//
	// +optional
	LogoutTokensQueued int32 `json:"logoutTokensQueued,omitempty"`

	// CompletionTime is when it was done.
	//
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
}

// SessionRevocation ends every session of one person at an
// AuthorizationServer and revokes their grants: refresh tokens (and the
// access tokens issued with them), remembered consents. Each application
// that got tokens in those sessions, or holds a grant, and has a
// back-channel logout URI is sent a logout token. The token server acts
// on it once and records what it did in the status; the object is the
// record of the action (who created it is in the API server's audit log),
// and can be deleted afterwards.
//
// It ends what exists now: the person can log in again. To keep them out,
// remove them from the users Secret or their identity provider too.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=srev,categories=gatehouse
// +kubebuilder:printcolumn:name="Server",type=string,JSONPath=`.spec.serverRef.name`
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=`.status.subject`
// +kubebuilder:printcolumn:name="Complete",type=string,JSONPath=`.status.conditions[?(@.type=="Complete")].status`
// +kubebuilder:printcolumn:name="Sessions",type=integer,JSONPath=`.status.sessionsEnded`
// +kubebuilder:printcolumn:name="Grants",type=integer,JSONPath=`.status.grantsRevoked`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SessionRevocation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SessionRevocationSpec   `json:"spec"`
	Status SessionRevocationStatus `json:"status,omitempty"`
}

// SessionRevocationList is a list of SessionRevocations.
//
// +kubebuilder:object:root=true
type SessionRevocationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SessionRevocation `json:"items"`
}

// ConditionComplete is a SessionRevocation's condition: the action is done.
const ConditionComplete = "Complete"

// Reasons of a SessionRevocation's Complete condition.
const (
	ReasonCompleted       = "Completed"
	ReasonUnknownUsername = "UnknownUsername"
)
