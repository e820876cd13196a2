// Command testapp is the app of the real-cluster tests (test/cluster): it
// runs in a pod, mounts its OAuthClient's Secret and its server's JWKS
// ConfigMap, and asks for client_credentials tokens in a loop, reading the
// credentials from the mounted files before every request, as an app that
// follows secret rotation does; or, with --env-client-id and
// --env-client-secret, from environment variables read once at start, as
// an app that never sees a rotation does (its pod must be restarted).
// GET /stats reports what it saw.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

type stats struct {
	mu         sync.Mutex
	Requests   int              `json:"requests"`
	OK         int              `json:"ok"`
	Failed     int              `json:"failed"`
	Errors     []string         `json:"errors,omitempty"`
	Secret     string           `json:"secret"`     // sha256 prefix of the mounted client_secret
	OKBySecret map[string]int   `json:"okBySecret"` // successful requests per secret
	JWKSKids   []string         `json:"jwksKids"`   // kids in the mounted JWKS
	FirstSeen  map[string]int64 `json:"firstSeen"`  // kid -> unix ms it first appeared in the mounted JWKS
	Pod        string           `json:"pod"`        // the pod's name
}

// envCredentials, when set, are the credentials from the environment.
var envCredentials *[2][]byte

func main() {
	secretDir := flag.String("secret-dir", "/etc/oauth-client", "the mounted OAuthClient Secret")
	jwksFile := flag.String("jwks-file", "/etc/gatehouse/jwks/jwks.json", "the mounted JWKS ConfigMap key")
	tokenURL := flag.String("token-url", "", "the token endpoint (in-cluster Service URL)")
	scope := flag.String("scope", "", "scope to ask for")
	interval := flag.Duration("interval", 200*time.Millisecond, "time between token requests")
	listen := flag.String("listen", ":8080", "address of /stats")
	envID := flag.String("env-client-id", "", "read the client_id from this environment variable, once")
	envSecret := flag.String("env-client-secret", "", "read the client_secret from this environment variable, once")
	flag.Parse()
	if *envID != "" || *envSecret != "" {
		envCredentials = &[2][]byte{[]byte(os.Getenv(*envID)), []byte(os.Getenv(*envSecret))}
	}

	host, _ := os.Hostname()
	st := &stats{OKBySecret: map[string]int{}, FirstSeen: map[string]int64{}, Pod: host}
	go func() {
		c := &http.Client{Timeout: 5 * time.Second}
		for {
			st.request(c, *secretDir, *tokenURL, *scope)
			st.readJWKS(*jwksFile)
			time.Sleep(*interval)
		}
	}()
	http.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		defer st.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	log.Printf("testapp: token endpoint %s, secret %s, listening on %s", *tokenURL, *secretDir, *listen)
	log.Fatal(http.ListenAndServe(*listen, nil))
}

func (st *stats) request(c *http.Client, dir, tokenURL, scope string) {
	id, err1 := os.ReadFile(filepath.Join(dir, "client_id"))
	secret, err2 := os.ReadFile(filepath.Join(dir, "client_secret"))
	if envCredentials != nil {
		id, secret, err1, err2 = envCredentials[0], envCredentials[1], nil, nil
	}
	if err1 != nil || err2 != nil {
		st.fail(fmt.Sprintf("reading the Secret: %v %v", err1, err2))
		return
	}
	sum := sha256.Sum256(secret)
	h := hex.EncodeToString(sum[:6])
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(string(id)), url.QueryEscape(string(secret)))
	resp, err := c.Do(req)
	if err != nil {
		st.fail(err.Error())
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.Requests++
	st.Secret = h
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"access_token"`) {
		st.Failed++
		st.addError(fmt.Sprintf("%s: %d %.200s", time.Now().Format(time.RFC3339), resp.StatusCode, body))
		return
	}
	st.OK++
	st.OKBySecret[h]++
}

func (st *stats) fail(msg string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.Requests++
	st.Failed++
	st.addError(time.Now().Format(time.RFC3339) + ": " + msg)
}

func (st *stats) addError(msg string) {
	if len(st.Errors) < 20 {
		st.Errors = append(st.Errors, msg)
	}
}

func (st *stats) readJWKS(file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		return
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if json.Unmarshal(b, &set) != nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.JWKSKids = st.JWKSKids[:0]
	for _, k := range set.Keys {
		st.JWKSKids = append(st.JWKSKids, k.Kid)
		if _, ok := st.FirstSeen[k.Kid]; !ok {
			st.FirstSeen[k.Kid] = time.Now().UnixMilli()
		}
	}
}
