package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// profileCPU starts CPU profiles of kube-apiserver and the operator for
// the first -profile-seconds of the bulk apply, when -profile is set; the
// returned function waits for them to be written.
func (e *env) profileCPU(ctx context.Context) (wait func()) {
	if e.o.profileDir == "" {
		return func() {}
	}
	if err := os.MkdirAll(e.o.profileDir, 0o755); err != nil {
		progress("profile: %v", err)
		return func() {}
	}
	apiHTTP, err := rest.HTTPClientFor(e.cp.Config)
	if err != nil {
		progress("profile: %v", err)
		return func() {}
	}
	secs := e.o.profileSeconds
	var wg sync.WaitGroup
	for name, target := range map[string]struct {
		url string
		c   *http.Client
	}{
		"kube-apiserver": {fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(e.cp.Config.Host, "/"), secs), apiHTTP},
		"operator":       {fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", e.pprofPort, secs), http.DefaultClient},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			saveProfile(ctx, target.c, target.url, filepath.Join(e.o.profileDir, name+"-cpu.pprof"))
		}()
	}
	return wg.Wait
}

// operatorEnv samples the operator's allocations finely when profiling,
// so that its heap profile attributes small objects per client.
func (e *env) operatorEnv() []string {
	if e.o.profileDir == "" {
		return nil
	}
	return []string{"GODEBUG=memprofilerate=4096"}
}

// collectOperatorGarbage makes the operator run a garbage collection.
func (e *env) collectOperatorGarbage(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", e.pprofPort), nil)
	if err != nil {
		return
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// profileHeap writes the operator's heap profile after a forced GC.
func (e *env) profileHeap(ctx context.Context) {
	if e.o.profileDir == "" {
		return
	}
	saveProfile(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", e.pprofPort),
		filepath.Join(e.o.profileDir, "operator-heap.pprof"))
}

func saveProfile(ctx context.Context, c *http.Client, url, path string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		progress("profile: %v", err)
		return
	}
	resp, err := c.Do(req)
	if err != nil {
		progress("profile %s: %v", filepath.Base(path), err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		progress("profile %s: status %d, %v", filepath.Base(path), resp.StatusCode, err)
		return
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		progress("profile: %v", err)
		return
	}
	progress("profile written to %s", path)
}
