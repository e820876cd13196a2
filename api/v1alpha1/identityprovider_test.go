package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// spec.identityProviders is checked at apply time, each mistake with a
// message that says what to do.
func TestIdentityProvidersValidation(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()
	const (
		oidc = `oidc: {issuer: "https://login.example.com", clientID: gatehouse, clientSecretRef: {name: sso, key: secret}}`
		ldap = `ldap: {host: "ldap.example.com:636", bindDN: "cn=svc", bindPasswordRef: {name: l, key: p}, userSearch: {baseDN: "ou=people"}}`
	)
	idp := func(items ...string) string {
		return `spec: {identityProviders: [` + strings.Join(items, ", ") + `]}`
	}
	for i, tc := range []struct {
		name, patch, want string // want "" accepts
	}{
		{"oidc", idp(`{name: corp, displayName: Corp SSO, ` + oidc + `}`), ""},
		{"ldap with StartTLS and groups", idp(`{name: ad, ldap: {host: "[::1]:389", security: StartTLS, bindDN: x, bindPasswordRef: {name: l, key: p}, userSearch: {baseDN: b, filter: "(objectClass=user)", usernameAttribute: sAMAccountName, idAttribute: objectGUID}, groupSearch: {baseDN: g}}}`), ""},
		{"oidc on loopback http", idp(`{name: dev, oidc: {issuer: "http://127.0.0.1:5556", clientID: c, clientSecretRef: {name: s, key: k}}}`), ""},
		{"both kinds", idp(`{name: corp, ` + oidc + `, ` + ldap + `}`), "an identity provider needs exactly one of oidc or ldap"},
		{"no kind", idp(`{name: corp}`), "an identity provider needs exactly one of oidc or ldap"},
		{"name not a DNS label", idp(`{name: "Corp:SSO", ` + oidc + `}`), "name must be a DNS label"},
		{"duplicate names", idp(`{name: corp, `+oidc+`}`, `{name: corp, `+ldap+`}`), "Duplicate value"},
		{"oidc issuer over http", idp(`{name: corp, oidc: {issuer: "http://login.example.com", clientID: c, clientSecretRef: {name: s, key: k}}}`), "issuer must use https"},
		{"oidc without secret", idp(`{name: corp, oidc: {issuer: "https://login.example.com", clientID: c}}`), "clientSecretRef: Required value"},
		{"ldap host with a scheme", idp(`{name: ad, ldap: {host: "ldaps://ldap.example.com:636", bindDN: x, bindPasswordRef: {name: l, key: p}, userSearch: {baseDN: b}}}`), "host must be host:port"},
		{"ldap host without port", idp(`{name: ad, ldap: {host: "ldap.example.com", bindDN: x, bindPasswordRef: {name: l, key: p}, userSearch: {baseDN: b}}}`), "host must be host:port"},
		{"ldap plain text", idp(`{name: ad, ldap: {host: "ldap.example.com:389", security: None, bindDN: x, bindPasswordRef: {name: l, key: p}, userSearch: {baseDN: b}}}`), `Unsupported value: "None"`},
		{"ldap filter without parentheses", idp(`{name: ad, ldap: {host: "l:636", bindDN: x, bindPasswordRef: {name: l, key: p}, userSearch: {baseDN: b, filter: "objectClass=person"}}}`), "filter must be an LDAP filter in parentheses"},
		{"ldap attribute with a filter in it", idp(`{name: ad, ldap: {host: "l:636", bindDN: x, bindPasswordRef: {name: l, key: p}, userSearch: {baseDN: b, usernameAttribute: "uid)(x"}}}`), "an attribute name is letters, digits and '-'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, validServer, tc.patch)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("idp-%d", i))
			createAsValidated(ctx, t, cp, obj, tc.want)
		})
	}
}
