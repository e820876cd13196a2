package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// One round: the projected token from its file is the client assertion,
// the client_id and assertion type come from the ConfigMap's files, and
// the access token goes to the API; a replaced token file is read again.
func TestRound(t *testing.T) {
	var assertions []string
	token := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		if r.Form.Get("client_id") != "shop.orders-worker" || r.Form.Get("grant_type") != "client_credentials" ||
			r.Form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
			r.Form.Get("scope") != "orders:read" || r.Header.Get("Authorization") != "" {
			t.Errorf("token request %v (Authorization %q)", r.Form, r.Header.Get("Authorization"))
		}
		assertions = append(assertions, r.Form.Get("client_assertion"))
		_ = json.NewEncoder(w).Encode(map[string]string{"access_token": "at-1", "token_type": "Bearer"})
	}))
	defer token.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "[]")
	}))
	defer api.Close()

	dir := t.TempDir()
	write := func(name, v string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("client_id", "shop.orders-worker")
	write("token_endpoint", token.URL)
	write("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	write("scope", "orders:read")
	write("token", "sa-token-1")
	c := &config{tokenFile: filepath.Join(dir, "token"), clientDir: dir, apiURL: api.URL}
	st := &stats{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st.round(t.Context(), log, http.DefaultClient, c)
	write("token", "sa-token-2") // the kubelet replaced it
	st.round(t.Context(), log, http.DefaultClient, c)
	if st.Tokens != 2 || st.APIOK != 2 || st.TokenErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
	if len(assertions) != 2 || assertions[0] != "sa-token-1" || assertions[1] != "sa-token-2" {
		t.Errorf("assertions sent: %q", assertions)
	}
}
