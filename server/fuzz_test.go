package server

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/server/internal/formparse"
)

// FuzzParseTokenRequest: form parsing and scope parsing never panic, and
// what they accept is what the RFC allows: no repeated or empty parameters,
// scope-tokens without spaces or forbidden characters.
func FuzzParseTokenRequest(f *testing.F) {
	for _, s := range []string{
		"grant_type=client_credentials&scope=orders%3Aread+orders%3Awrite",
		"grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier=" + strings.Repeat("a", 43),
		"grant_type=refresh_token&refresh_token=x&scope=",
		"a=1&a=2",
		"%zz",
		"scope=a%20%20b",
		"scope=%22quoted%22",
		";=;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, e := parseForm(body)
		if e != nil {
			if e.Code != ErrInvalidRequest || e.Description == "" {
				t.Fatalf("form error %+v", e)
			}
			return
		}
		for k, vs := range form {
			if len(vs) != 1 || vs[0] == "" {
				t.Fatalf("accepted %q = %q", k, vs)
			}
		}
		scopes, e := parseScope(form.Get("scope"))
		if e != nil {
			if e.Code != ErrInvalidScope {
				t.Fatalf("scope error %+v", e)
			}
			return
		}
		for _, s := range scopes {
			if s == "" || strings.ContainsAny(s, " \"\\") {
				t.Fatalf("accepted scope %q", s)
			}
		}
	})
}

// FuzzClientAuthentication: whatever the Authorization header and body,
// authentication succeeds only with a registered client's real secret and
// method, and failures are RFC 6749 §5.2 errors.
func FuzzClientAuthentication(f *testing.F) {
	snap := testSnapshot(f, "http://127.0.0.1:1", time.Now())
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	f.Add(basic(ccClientID, ccSecret), "")
	f.Add(basic(ccClientID, oddSecret), "")
	f.Add(basic(ccClientID, "wrong"), "")
	f.Add("Basic "+base64.StdEncoding.EncodeToString([]byte(ccClientID+":"+oddSecret)), "")
	f.Add("Basic !!!", "")
	f.Add("Bearer abc", "")
	f.Add("", "client_id="+postClientID+"&client_secret="+postSecret)
	f.Add("", "client_id="+spaClientID)
	f.Add(basic(ccClientID, ccSecret), "client_secret=x")
	f.Add(basic(ccClientID, ccSecret), "client_id=other")
	const jwtBearer = "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
	f.Add("", jwtBearer+"&client_assertion=eyJhbGciOiJub25lIn0.eyJzdWIiOiJjIn0.")
	f.Add("", jwtBearer+"&client_id="+ccClientID+"&client_assertion=a.b.c")
	f.Add(basic(ccClientID, ccSecret), jwtBearer+"&client_assertion=a.b.c")
	f.Add("", "client_assertion_type=x&client_assertion=a.b.c&client_secret=s")
	f.Fuzz(func(t *testing.T, authorization, body string) {
		form, e := parseForm(body)
		if e != nil {
			return
		}
		cred, e := readClientCredentials(authorization, form)
		if e != nil {
			if e.Code != ErrInvalidClient && e.Code != ErrInvalidRequest {
				t.Fatalf("credential error %+v", e)
			}
			if e.Challenge != (e.Status == 401) {
				t.Fatalf("401 exactly when challenging: %+v", e)
			}
			return
		}
		// Without an assertion verifier no assertion can authenticate.
		c, _, e := checkClient(snap, cred, time.Now(), nil)
		if e != nil {
			basic := cred.Method == oauthv1.AuthClientSecretBasic
			if e.Code != ErrInvalidClient || e.Challenge != basic || strings.Contains(e.Description, cred.Secret) && cred.Secret != "" {
				t.Fatalf("authentication error %+v", e)
			}
			return
		}
		want := map[string]string{ccClientID: ccSecret, postClientID: postSecret, spaClientID: ""}
		secret, known := want[c.ID]
		ok := known && (cred.Secret == secret || c.ID == ccClientID && cred.Secret == oddSecret)
		if !ok || c.AuthMethod != cred.Method || (cred.Method == oauthv1.AuthNone) != c.Public {
			t.Fatalf("authenticated %s with method %s and secret %q", c.ID, cred.Method, cred.Secret)
		}
	})
}

// parseForm parses a body as the token endpoint does.
func parseForm(body string) (url.Values, *Error) {
	v, e := formparse.Parse(body)
	if e != nil {
		return nil, formRefused(e)
	}
	return v, nil
}
