package keyset

import (
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestGenerateParseRoundTrip(t *testing.T) {
	for _, alg := range []string{ES256, RS256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			k, err := Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			k.State, k.ActivatesAt = StateActive, time.Unix(1000, 0).UTC()
			data, err := (&Set{Keys: []Key{k}}).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			set, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := set.SigningKey(time.Unix(2000, 0))
			if !ok || got.ID != k.ID || got.Signer() == nil {
				t.Fatalf("signing key after round trip = %+v, %v", got, ok)
			}
			if again, _ := Thumbprint(got.Signer().Public()); again != k.ID {
				t.Errorf("kid %q is not the thumbprint %q", k.ID, again)
			}
		})
	}
	if _, err := Generate("HS256"); err == nil || !strings.Contains(err.Error(), `unsupported signing algorithm "HS256"`) {
		t.Errorf("Generate(HS256) error = %v", err)
	}
}

func TestParseRejectsBadSets(t *testing.T) {
	ec, _ := Generate(ES256)
	mismatched := ec
	mismatched.Algorithm = RS256
	for name, tc := range map[string]struct {
		data string
		want string
	}{
		"not JSON":           {`{`, "key set:"},
		"no PEM":             {`{"keys":[{"kid":"a","alg":"ES256","privateKey":"nope"}]}`, `key "a" has no PEM private key`},
		"algorithm mismatch": {mustJSON(t, Set{Keys: []Key{mismatched}}), `algorithm "RS256" does not fit`},
	} {
		if _, err := Parse([]byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// RFC 7638 §3.1 gives this RSA key and its thumbprint.
func TestThumbprintMatchesRFC7638Example(t *testing.T) {
	n, _ := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	var pub crypto.PublicKey = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	got, err := Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("thumbprint = %s, want %s", got, want)
	}
}

func TestPublicJWKSHasNoPrivateMaterial(t *testing.T) {
	set := &Set{}
	for i, alg := range []string{ES256, RS256, EdDSA} {
		k, err := Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		k.ActivatesAt = time.Unix(int64(i), 0)
		set.Keys = append(set.Keys, k)
	}
	jwks, err := set.PublicJWKS()
	if err != nil {
		t.Fatal(err)
	}
	raw := mustJSON(t, jwks)
	for _, private := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`, "PRIVATE KEY"} {
		if strings.Contains(raw, private) {
			t.Errorf("JWKS contains %s: %s", private, raw)
		}
	}
	if len(jwks.Keys) != 3 || jwks.Keys[0].Algorithm != EdDSA || jwks.Keys[0].Curve != "Ed25519" {
		t.Errorf("JWKS not newest first or incomplete: %s", raw)
	}
	for _, k := range jwks.Keys {
		if k.Use != "sig" || k.KeyID == "" {
			t.Errorf("JWK %+v lacks use=sig or kid", k)
		}
	}
}
