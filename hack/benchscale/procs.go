package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a process the harness watches: CPU and RSS from /proc, heap from
// its Prometheus endpoint when it has one.
type proc struct {
	name    string
	pid     int
	metrics string // URL of /metrics, or ""
	cmd     *exec.Cmd
	exited  chan struct{}

	finalCPU float64 // once stopped by retire

	mu       sync.Mutex
	peakRSS  int64 // bytes, VmHWM
	peakHeap int64 // go_memstats_heap_alloc_bytes
	lastHeap int64
}

// startProc runs the gatehouse binary with args, logging to dir/name.log.
func startProc(name, exe string, args, env []string, dir, metricsURL string) (*proc, error) {
	log, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = log.Close() // nothing was written through it
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, pid: cmd.Process.Pid, metrics: metricsURL, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = log.Close(); close(p.exited) }() // the child wrote through its own descriptor
	return p, nil
}

// stop sends SIGTERM and waits, SIGKILL after 20 s.
func (p *proc) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *proc) alive() bool {
	if p.cmd == nil {
		return true
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// retire stops a process whose figures stay in the report.
func (p *proc) retire() {
	p.finalCPU = p.cpuSeconds()
	p.name += "-before-restart"
	p.stop()
}

// cpuSeconds is the process's user+system time so far.
func (p *proc) cpuSeconds() float64 {
	if !p.alive() {
		return p.finalCPU
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// statusBytes reads a "kB" line of /proc/PID/status.
func (p *proc) statusBytes(key string) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// sample records peak RSS and heap.
func (p *proc) sample(ctx context.Context) {
	rss := p.statusBytes("VmHWM")
	var heap int64
	if p.metrics != "" {
		if v, err := scrape(ctx, p.metrics, "go_memstats_heap_alloc_bytes", nil); err == nil {
			heap = int64(v)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peakRSS = max(p.peakRSS, rss)
	p.peakHeap = max(p.peakHeap, heap)
	if heap > 0 {
		p.lastHeap = heap
	}
}

func (p *proc) peaks() (rss, heap, last int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peakRSS, p.peakHeap, p.lastHeap
}

// childProcs finds this process's children named name (envtest starts etcd
// and kube-apiserver without telling their pids).
func childProc(name string) (*proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i || string(b[i+1:j]) != name {
			continue
		}
		f := strings.Fields(string(b[j+2:]))
		if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			return &proc{name: name, pid: pid}, nil
		}
	}
	return nil, fmt.Errorf("no child process %s", name)
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// scrape sums the samples of a metric in a Prometheus text endpoint whose
// labels contain every string of match.
func scrape(ctx context.Context, url, name string, match []string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return sumMetric(resp.Body, name, match)
}

func sumMetric(r io.Reader, name string, match []string) (float64, error) {
	var sum float64
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labels, value := "", rest
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			labels, value = rest[:end+1], rest[end+1:]
		}
		if !matchAll(labels, match) {
			continue
		}
		fs := strings.Fields(value)
		if len(fs) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fs[0], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, s.Err()
}

func matchAll(labels string, match []string) bool {
	for _, m := range match {
		if !strings.Contains(labels, m) {
			return false
		}
	}
	return true
}

// waitHTTP waits until url answers 200.
func waitHTTP(ctx context.Context, url string, timeout time.Duration, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := httpClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p != nil && !p.alive() {
			return fmt.Errorf("%s exited (see its log)", p.name)
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("waiting for %s", url), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
