//go:build hydra

package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// hydraEnv names the Hydra binary TestHydraPeer runs (hack/hydra.sh builds
// one). The test is built only with the hydra tag, which make bench-peers
// sets: Hydra is no dependency of Gatehouse, and make test neither builds
// nor skips it.
const hydraEnv = "GATEHOUSE_BENCH_HYDRA"

// TestHydraPeer starts Hydra in both configurations as the harness does
// and drives its flows briefly with the lean client: every answer must be
// good, the JWT configuration must sign ES256 with the key the harness
// created, and the peer's CPU must be measured.
func TestHydraPeer(t *testing.T) {
	bin := os.Getenv(hydraEnv)
	if bin == "" {
		t.Fatalf("%s must name a Hydra binary (hack/hydra.sh builds one)", hydraEnv)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s: %v", hydraEnv, err)
	}
	o := &options{peer: "hydra", peerBin: bin, peerConfigs: []string{hydraOpaque, hydraJWT}, conns: 2,
		duration: 500 * time.Millisecond, warmup: 100 * time.Millisecond, client: clientLean}
	ctx := context.Background()
	peers, err := startPeers(ctx, o, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, p := range peers {
			p.stop()
		}
	}()
	if got := []string{peers[0].product, peers[1].product}; got[0] != "hydra (opaque)" || got[1] != "hydra (jwt ES256)" {
		t.Fatalf("products %q", got)
	}
	for _, p := range peers {
		for _, flow := range []string{"client_credentials", "introspection", "jwks", "metadata"} {
			res, err := p.measure(ctx, flow)
			if err != nil {
				t.Fatalf("%s %s: %v", p.product, flow, err)
			}
			if res.Ops == 0 || res.Errors > 0 || res.ServerCPUSeconds <= 0 || res.Client != clientLean {
				t.Errorf("%s %s: %d operations, %d errors %q, %.3f s of CPU, client %s", p.product, flow, res.Ops, res.Errors,
					res.FirstErrors, res.ServerCPUSeconds, res.Client)
			}
		}
	}
	resp, err := http.Get(peers[1].eps.JWKS)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"kid":"bench-es256"`) {
		t.Errorf("the JWT configuration's JWKS has not the ES256 key: %.300s", body)
	}
}

func TestJWTAlg(t *testing.T) {
	for tok, want := range map[string]string{
		"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.e30.sig": "ES256",
		"ory_at_abc.def": "",
		"opaque":         "",
	} {
		if got := jwtAlg(tok); got != want {
			t.Errorf("jwtAlg(%q) = %q, want %q", tok, got, want)
		}
	}
}
