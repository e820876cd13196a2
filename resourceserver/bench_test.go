package resourceserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkValidate measures validation with the key cached: the cost on
// every request of a resource server.
func BenchmarkValidate(b *testing.B) {
	for _, alg := range []string{es256, rs256, edDSA} {
		b.Run(alg, func(b *testing.B) {
			f := newIssuer(b, alg)
			v := f.validator(nil)
			token := f.token(nil)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := v.Validate(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRequire is the middleware end to end, header parsing included.
func BenchmarkRequire(b *testing.B) {
	f := newIssuer(b)
	v := f.validator(nil)
	h := v.Require("orders:read")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	req.Header.Set("Authorization", "Bearer "+f.token(nil))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkRejectUnknownKid is the cost of a token with a made-up kid
// inside the rate-limit window: no fetch, just a map miss.
func BenchmarkRejectUnknownKid(b *testing.B) {
	f := newIssuer(b)
	v := f.validator(nil)
	other, _ := generateKey(es256)
	token := f.tokenWith(other, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(ctx, token); err == nil {
			b.Fatal("accepted")
		}
	}
}
