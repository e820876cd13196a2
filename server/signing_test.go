package server

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
)

// The claims and token response written by hand decode to what
// encoding/json would have written (the strings themselves: package
// jsonappend's tests).
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "plain", `q"uote`, `back\slash`, "nl\nTab\tcr\r", "ctl\x00\x01\x1f\x7f", "ünïcödé ✓ 𝄞",
		"bad\xffutf8\xc3", "\u2028\u2029", "<script>&"}
	c := accessTokenClaimValues{Issuer: "https://id.example/\"x", Subject: strs[5], Audience: []string{"a", strs[7]},
		ExpiresAt: 1900000000, IssuedAt: 1899999400, ID: "jti", ClientID: "c\\id", Scopes: []string{"orders:read", "x\"y"},
		AuthTime: 1899990000, GrantID: "g"}
	var claims accessTokenClaims
	if err := json.Unmarshal(appendAccessTokenClaims(nil, c), &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Issuer != c.Issuer || claims.Subject != "ctl\x00\x01\x1f\x7f" || !reflect.DeepEqual([]string(claims.Audience), []string{"a", "bad\ufffdutf8\ufffd"}) ||
		claims.ExpiresAt.Unix() != c.ExpiresAt || claims.IssuedAt.Unix() != c.IssuedAt || claims.ID != "jti" || claims.ClientID != c.ClientID ||
		claims.Scope != "orders:read x\"y" || claims.AuthTime != c.AuthTime || claims.GrantID != "g" {
		t.Errorf("claims decode to %+v", claims)
	}
	var bare map[string]any
	_ = json.Unmarshal(appendAccessTokenClaims(nil, accessTokenClaimValues{Issuer: "i", Subject: "s", Audience: []string{"a"}, ID: "j", ClientID: "c"}), &bare)
	for _, k := range []string{"scope", "auth_time", "grant_id"} {
		if _, ok := bare[k]; ok {
			t.Errorf("empty %s is written: %v", k, bare)
		}
	}
	for _, r := range []tokenResponse{
		{AccessToken: "a.b.c", TokenType: "Bearer", ExpiresIn: 600},
		{AccessToken: "a.b.c", TokenType: "Bearer", ExpiresIn: 600, RefreshToken: "r", Scope: "openid x", IDToken: "i.d.t"},
	} {
		want, _ := json.Marshal(r)
		var w, g map[string]any
		_ = json.Unmarshal(want, &w)
		if err := json.Unmarshal(r.appendJSON(nil), &g); err != nil || !reflect.DeepEqual(w, g) {
			t.Errorf("token response %s, encoding/json %s (%v)", r.appendJSON(nil), want, err)
		}
	}
}

func TestIntrospectionJSONMatchesEncodingJSON(t *testing.T) {
	for _, in := range []introspection{
		{},
		{Active: true, Scope: "a b", ClientID: "c\"", TokenType: "Bearer", Exp: 2, Iat: 1, Sub: "s", Aud: []string{"x", "y"}, Iss: "i", JTI: "j"},
		{Active: true, Scope: "a", ClientID: "c", TokenType: "refresh_token", Exp: 2, Iat: 1, Sub: "s", Iss: "i"},
	} {
		want, _ := json.Marshal(in)
		var w, g map[string]any
		_ = json.Unmarshal(want, &w)
		if err := json.Unmarshal(in.appendJSON(nil), &g); err != nil || !reflect.DeepEqual(w, g) {
			t.Errorf("introspection %s, encoding/json %s (%v)", in.appendJSON(nil), want, err)
		}
	}
}

// The verified-token memory is bounded, and keeps tokens still asked about.
func TestVerifiedTokensBounded(t *testing.T) {
	v := newVerifiedTokens()
	hot := &accessTokenClaims{ClientID: "hot"}
	v.put("hot", hot)
	for i := range 5 * verifiedGeneration {
		v.put("t"+strconv.Itoa(i), &accessTokenClaims{})
		if _, ok := v.get("hot"); !ok {
			t.Fatalf("a token asked about constantly was dropped after %d others", i)
		}
	}
	if n := v.len(); n > 2*verifiedGeneration {
		t.Errorf("%d entries, bound %d", n, 2*verifiedGeneration)
	}
	if _, ok := v.get("t0"); ok {
		t.Error("the oldest entry was never dropped")
	}
}
