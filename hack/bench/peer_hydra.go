package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
)

// The peer: Ory Hydra (-peer hydra), started as a process on loopback and
// driven with the same flows, connections, durations and load generator as
// Gatehouse, pinned with the same -server-cpus. It stores in memory (its
// DSN "memory", an in-memory SQLite, so the binary must be built with the
// sqlite tag: hack/hydra.sh), has one client_credentials client registered
// through its admin API and runs in one of two configurations:
//
//   - opaque: Hydra's default access tokens (HMAC-signed, stored);
//   - jwt: strategies.access_token jwt, the tokens signed with an ES256 key
//     the harness creates in the key set Hydra signs access tokens with
//     (hydra.jwt.access-token) before the first token. Hydra signs with the
//     first private key of that set, whatever its algorithm, and generates
//     an RS256 one only when the set is empty (jwk.GetOrGenerateKeys).
//
// Hydra's client secrets are hashed with its default, PBKDF2-SHA256 at
// 25,000 iterations, checked on every token request; -hydra-pbkdf2-iterations
// lowers it to see what the rest costs. Gatehouse's secrets (256 random
// bits) are hashed with SHA-256.

// peerFlows are the flows a peer can be driven through.
var peerFlows = map[string]bool{"client_credentials": true, "introspection": true, "jwks": true, "metadata": true}

// The names Hydra's configurations have in -peer-configs.
const (
	hydraOpaque = "opaque"
	hydraJWT    = "jwt"
)

// hydraAccessTokenKeySet is the key set Hydra signs JWT access tokens with
// (x.OAuth2JWTKeyName).
const hydraAccessTokenKeySet = "hydra.jwt.access-token"

// startPeers starts one Hydra per configuration in -peer-configs.
func startPeers(ctx context.Context, o *options, dir string) ([]*env, error) {
	var peers []*env
	for _, c := range o.peerConfigs {
		p, err := startHydra(ctx, o, dir, c)
		if err != nil {
			for _, q := range peers {
				q.stop()
			}
			return nil, fmt.Errorf("hydra (%s): %w", c, err)
		}
		peers = append(peers, p)
	}
	return peers, nil
}

// startHydra runs `hydra serve all --dev` with a generated configuration,
// waits until it is ready and registers the client.
func startHydra(ctx context.Context, o *options, dir, config string) (_ *env, err error) {
	ports, err := devenv.FreePorts(2)
	if err != nil {
		return nil, err
	}
	public, admin := ports[0], ports[1]
	sub := filepath.Join(dir, "hydra-"+config)
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(sub, "hydra.yaml")
	if err := os.WriteFile(cfgFile, hydraConfig(public, admin, config, o.hydraPBKDF2), 0o600); err != nil {
		return nil, err
	}
	args := []string{o.peerBin, "serve", "all", "--dev", "--sqa-opt-out", "--config", cfgFile}
	if o.serverCPUs != "" {
		args = append([]string{"taskset", "-c", o.serverCPUs}, args...)
	}
	log, err := os.Create(filepath.Join(sub, "hydra.log"))
	if err != nil {
		return nil, err
	}
	p := &env{o: o, dir: sub, product: "hydra (" + config + ")",
		addr: "127.0.0.1:" + strconv.Itoa(public), introspectAddr: "127.0.0.1:" + strconv.Itoa(admin)}
	p.issuer = "http://" + p.addr
	p.eps = &endpoints.Endpoints{Issuer: p.issuer, Token: p.issuer + "/oauth2/token",
		Introspection: "http://" + p.introspectAddr + "/admin/oauth2/introspect",
		JWKS:          p.issuer + "/.well-known/jwks.json", Metadata: p.issuer + "/.well-known/openid-configuration"}
	p.server = exec.Command(args[0], args[1:]...)
	p.server.Stdout, p.server.Stderr = log, log
	p.server.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := p.server.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", o.peerBin, err)
	}
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	if err := waitReady(ctx, "http://"+p.introspectAddr+"/health/ready", log.Name()); err != nil {
		return nil, err
	}
	if err := p.setUpHydra(config); err != nil {
		return nil, err
	}
	progress("%s (pid %d) ready at %s, admin %s", p.product, p.server.Process.Pid, p.issuer, p.introspectAddr)
	return p, nil
}

// hydraConfig is Hydra's configuration file: memory storage, loopback
// listeners, warnings only in the log (as the Gatehouse server under test),
// and the access token strategy.
func hydraConfig(public, admin int, config string, pbkdf2 int) []byte {
	strategy := hydraOpaque
	if config == hydraJWT {
		strategy = hydraJWT
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "dsn: memory\nlog:\n  level: warn\nserve:\n  public:\n    host: 127.0.0.1\n    port: %d\n", public)
	fmt.Fprintf(&b, "  admin:\n    host: 127.0.0.1\n    port: %d\n", admin)
	fmt.Fprintf(&b, "urls:\n  self:\n    issuer: http://127.0.0.1:%d/\n", public)
	fmt.Fprintf(&b, "secrets:\n  system:\n    - %s\n", randomString())
	fmt.Fprintf(&b, "strategies:\n  access_token: %s\n", strategy)
	if pbkdf2 > 0 {
		fmt.Fprintf(&b, "oauth2:\n  hashers:\n    algorithm: pbkdf2\n    pbkdf2:\n      iterations: %d\n", pbkdf2)
	}
	return b.Bytes()
}

// waitReady polls a readiness URL until it answers 200.
func waitReady(ctx context.Context, u, log string) error {
	for began := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Since(began) > 2*time.Minute || ctx.Err() != nil {
			return fmt.Errorf("not ready at %s (see %s)", u, log)
		}
	}
}

// setUpHydra creates the ES256 access-token key (jwt), registers the
// client and checks that a token is issued as configured.
func (p *env) setUpHydra(config string) error {
	adminURL := "http://" + p.introspectAddr
	if config == hydraJWT {
		key := map[string]string{"alg": "ES256", "use": "sig", "kid": "bench-es256"}
		if _, err := postJSON(adminURL+"/admin/keys/"+hydraAccessTokenKeySet, key, http.StatusCreated); err != nil {
			return fmt.Errorf("creating the ES256 access-token key: %w", err)
		}
	}
	p.clientSecret = randomString()
	body, err := postJSON(adminURL+"/admin/clients", map[string]any{"client_secret": p.clientSecret,
		"grant_types": []string{"client_credentials"}, "response_types": []string{"token"}, "scope": "orders:read",
		"token_endpoint_auth_method": "client_secret_basic"}, http.StatusCreated)
	if err != nil {
		return fmt.Errorf("registering the client: %w", err)
	}
	var c struct {
		ID string `json:"client_id"`
	}
	if err := json.Unmarshal(body, &c); err != nil || c.ID == "" {
		return fmt.Errorf("registering the client: answer %.200s", body)
	}
	p.clientID = c.ID
	// Hydra makes a missing published key set (the ID token's RSA key)
	// in the JWKS handler, without a lock: under 16 connections at once
	// it would make one per request and keep them all, and every JWKS
	// and metadata request after would load every one. One request first
	// makes it once, as a Hydra that has served a request has.
	resp, err := http.Get(p.eps.JWKS)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", p.eps.JWKS, resp.StatusCode)
	}
	return p.checkHydraToken(config)
}

// checkHydraToken gets one token and checks its kind: opaque, or a JWT
// signed ES256 (so a Hydra that ignored the key is not reported as ES256).
func (p *env) checkHydraToken(config string) error {
	w := newWorker()
	defer w.http.CloseIdleConnections()
	w.clientID, w.clientSecret = p.clientID, p.clientSecret
	tok, err := w.token(context.Background(), p, ccForm)
	if err != nil {
		return err
	}
	alg := jwtAlg(tok.AccessToken)
	switch {
	case config == hydraJWT && alg != "ES256":
		return fmt.Errorf("access token is not a JWT signed ES256 (alg %q): %.60s", alg, tok.AccessToken)
	case config != hydraJWT && alg != "":
		return fmt.Errorf("access token is a JWT (alg %q), not opaque", alg)
	case alg != "":
		p.product = "hydra (jwt " + alg + ")"
	}
	return nil
}

// jwtAlg is the alg of a JWS compact token's header, "" when the token is
// not one.
func jwtAlg(tok string) string {
	head, _, ok := strings.Cut(tok, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Alg
}

// postJSON posts v as JSON and wants the status want.
func postJSON(u string, v any, want int) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	resp, err := http.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("POST %s: status %d, want %d: %.300s", u, resp.StatusCode, want, body)
	}
	return body, nil
}
