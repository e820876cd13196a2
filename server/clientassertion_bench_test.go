package server

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/gatehouse-dev/gatehouse/server/config"
)

// BenchmarkTokenClientAssertion: a client_credentials token for a client
// authenticated by a client secret (the baseline), by its ServiceAccount's
// projected token (RS256, as kube-apiserver signs by default; the same
// token again and again, as a pod sends it) and by private_key_jwt
// assertions (each one new: single use) under each algorithm. Issue 20's
// goal: at most twice the baseline's CPU.
func BenchmarkTokenClientAssertion(b *testing.B) {
	f := newAssertionFixture(b)
	b.Run("client_secret_basic", func(b *testing.B) {
		benchToken(b, f, func(int) *http.Request {
			return newTokenHTTPRequest("grant_type=client_credentials&scope=orders%3Aread", ccClientID, ccSecret)
		})
	})
	b.Run("service_account", func(b *testing.B) {
		sa := f.cluster.sign(b, f.serviceAccountToken(), nil)
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}, "client_id": {saClientID},
			"client_assertion_type": {jwtBearerValue}, "client_assertion": {sa}}.Encode()
		benchToken(b, f, func(int) *http.Request { return newTokenHTTPRequest(form, "", "") })
	})
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		b.Run("private_key_jwt_"+alg, func(b *testing.B) {
			key := newJWTKey(b, alg, "k-"+alg)
			f.ts.update(func(s *config.Snapshot) {
				c := *s.Clients.Get(pkjClientID)
				c.Assertion = &config.ClientAssertion{Keys: key.static(b)}
				s.Clients = s.Clients.With(&c)
			})
			forms := make([]string, b.N)
			for i := range forms {
				forms[i] = url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}, "client_id": {pkjClientID},
					"client_assertion_type": {jwtBearerValue}, "client_assertion": {key.sign(b, f.privateKeyJWT(), nil)}}.Encode()
			}
			benchToken(b, f, func(i int) *http.Request { return newTokenHTTPRequest(forms[i], "", "") })
		})
	}
}

func benchToken(b *testing.B, f *assertionFixture, req func(i int) *http.Request) {
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b, processCPU())
	for i := range b.N {
		w := &discard{h: http.Header{}}
		f.ts.srv.ServeHTTP(w, req(i))
		if w.status != 0 && w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}
