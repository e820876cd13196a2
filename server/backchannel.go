package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0). Ending a
// session (endSessions) queues, in the same storage step, one delivery
// per client that got tokens in it and has a back-channel logout URI:
// the store's outbox. Each replica's dispatcher (RunBackchannel) claims
// due deliveries, signs a logout token for each and POSTs it from a
// bounded pool of workers, and retries failures with exponential
// backoff until MaxAttempts or DeliverFor, then abandons them, with a
// metric and a Warning Event on the OAuthClient.
//
// Nothing waits on a relying party: the logout page returns once the
// outbox is written. A slow or dead relying party costs at most
// PerClient workers for Timeout per attempt; every other client's
// deliveries go on. A claim lasts a lease; a replica that dies mid-way
// leaves its claims to lapse, and another replica delivers them: a
// delivery is at least once, with one jti for all its attempts.

// BackchannelOptions tune logout-token delivery; zero fields take the
// defaults.
type BackchannelOptions struct {
	// Workers deliver at once on this replica; 16.
	Workers int
	// PerClient bounds one client's deliveries in flight at once; 2.
	PerClient int
	// Timeout bounds one attempt: connection, TLS, request and answer; 5s.
	Timeout time.Duration
	// MaxAttempts: a delivery that failed this often is abandoned; 10.
	MaxAttempts int
	// FirstRetry is the wait after the first failure, doubled after each
	// later one up to MaxRetryWait; 2s and 5m.
	FirstRetry, MaxRetryWait time.Duration
	// DeliverFor: a delivery not made this long after the logout is
	// abandoned; 1h.
	DeliverFor time.Duration
	// Poll is how often the outbox is read for retries that fell due and
	// claims that lapsed; 5s. New deliveries start at once.
	Poll time.Duration
	// Client sends the logout tokens; nil for one that follows no
	// redirects.
	Client *http.Client
}

func (o BackchannelOptions) withDefaults() BackchannelOptions {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.PerClient <= 0 {
		o.PerClient = 2
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	def(&o.Timeout, 5*time.Second)
	def(&o.FirstRetry, 2*time.Second)
	def(&o.MaxRetryWait, 5*time.Minute)
	def(&o.DeliverFor, time.Hour)
	def(&o.Poll, 5*time.Second)
	if o.Client == nil {
		o.Client = &http.Client{
			Transport: tracing.Transport(&http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				DialContext:         (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout: o.Timeout,
				MaxIdleConnsPerHost: 2,
				IdleConnTimeout:     90 * time.Second,
			}),
			// A relying party answers; it does not send the server on
			// (no redirect can turn the POST towards another host).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return o
}

// lease is how long a claimed delivery is this replica's: far longer than
// an attempt, since a claimed delivery starts at once.
func (o BackchannelOptions) lease() time.Duration { return max(time.Minute, 4*o.Timeout) }

// retryWait is the wait after the attempts-th failure.
func (o BackchannelOptions) retryWait(attempts int) time.Duration {
	wait := o.FirstRetry
	for i := 1; i < attempts && wait < o.MaxRetryWait; i++ {
		wait *= 2
	}
	return min(wait, o.MaxRetryWait)
}

// ClientEvents records Events about OAuthClients that their owners can act
// on (Kubernetes Events in production; see cmd/gatehouse).
type ClientEvents interface {
	Warning(client *config.Client, reason, message string)
}

// Event reasons on an OAuthClient.
const (
	// ReasonBackchannelLogoutFailed: a logout token could not be
	// delivered to the client's back-channel logout URI, and was
	// abandoned.
	ReasonBackchannelLogoutFailed = "BackchannelLogoutFailed"
)

// backchannelLogoutEvent is the event a logout token carries (§2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutTokenTTL bounds a logout token's life: each attempt signs a new
// one (same jti), so it need only outlive one delivery.
const logoutTokenTTL = 2 * time.Minute

// dispatcher delivers the outbox on this replica.
type dispatcher struct {
	s    *Server
	opts BackchannelOptions
	wake chan struct{}

	mu       sync.Mutex
	inflight map[string]int // by client
	total    int
}

func newDispatcher(s *Server, o BackchannelOptions) *dispatcher {
	return &dispatcher{s: s, opts: o.withDefaults(), wake: make(chan struct{}, 1), inflight: map[string]int{}}
}

// notify asks the dispatcher to look at the outbox now.
func (d *dispatcher) notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// RunBackchannel delivers logout tokens until ctx ends. Run it once per
// replica.
func (s *Server) RunBackchannel(ctx context.Context) {
	d := s.backchannel
	jobs := make(chan storage.LogoutDelivery, d.opts.Workers)
	var wg sync.WaitGroup
	for range d.opts.Workers {
		wg.Go(func() {
			for job := range jobs {
				d.deliver(ctx, job)
				d.done(job.ClientID)
			}
		})
	}
	t := time.NewTicker(d.opts.Poll)
	defer t.Stop()
	for {
		d.fill(ctx, jobs)
		select {
		case <-ctx.Done():
			close(jobs)
			wg.Wait()
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

// fill claims as many due deliveries as there are idle workers, none of a
// client that has deliveries in flight, and hands them out. The workers
// never wait for a job: at most Workers are claimed at once, and jobs
// holds that many.
func (d *dispatcher) fill(ctx context.Context, jobs chan<- storage.LogoutDelivery) {
	for ctx.Err() == nil {
		d.mu.Lock()
		idle := d.opts.Workers - d.total
		busy := make([]string, 0, len(d.inflight))
		for c := range d.inflight {
			busy = append(busy, c)
		}
		d.mu.Unlock()
		if idle <= 0 {
			return
		}
		due, err := d.s.store.ClaimLogoutDeliveries(ctx, idle, d.opts.PerClient, busy, d.opts.lease(), d.s.now())
		if err != nil {
			if ctx.Err() == nil {
				d.s.log.Warn("reading the back-channel logout outbox", "error", err)
			}
			return
		}
		if len(due) == 0 {
			return
		}
		d.mu.Lock()
		for _, job := range due {
			d.inflight[job.ClientID]++
			d.total++
		}
		d.s.metrics.backchannelInflight.Set(float64(d.total))
		d.mu.Unlock()
		for _, job := range due {
			jobs <- job
		}
	}
}

func (d *dispatcher) done(clientID string) {
	d.mu.Lock()
	if d.inflight[clientID]--; d.inflight[clientID] <= 0 {
		delete(d.inflight, clientID)
	}
	d.total--
	d.s.metrics.backchannelInflight.Set(float64(d.total))
	d.mu.Unlock()
	d.notify()
}

// deliver makes one attempt at a delivery and records its outcome.
func (d *dispatcher) deliver(ctx context.Context, job storage.LogoutDelivery) {
	s := d.s
	snap := s.src.Current()
	var client *config.Client
	if snap != nil {
		client = snap.Clients.Get(job.ClientID)
	}
	switch {
	case client == nil || client.Backchannel == nil:
		// Deleted, or its URI removed, since the logout: nobody to tell.
		d.finish(ctx, job, "dropped")
		return
	case job.SessionID == "" && client.Backchannel.SessionRequired:
		// §2.4: a client that needs sid cannot use a logout of the
		// person as a whole.
		d.finish(ctx, job, "dropped")
		return
	}
	now := s.now()
	err := d.attempt(ctx, snap, client, job, now)
	if err == nil {
		s.metrics.backchannelDelay.Observe(s.now().Sub(job.CreatedAt).Seconds())
		d.finish(ctx, job, "delivered")
		return
	}
	job.Attempts++
	job.LastError = truncate(err.Error(), 300)
	next := now.Add(d.opts.retryWait(job.Attempts))
	if job.Attempts >= d.opts.MaxAttempts || !next.Before(job.ExpiresAt) {
		msg := fmt.Sprintf("gave up delivering a logout token (sid %q) to %s after %d attempts over %s; last error: %s",
			job.SessionID, client.Backchannel.URI, job.Attempts, now.Sub(job.CreatedAt).Round(time.Second), job.LastError)
		s.log.Warn("back-channel logout abandoned", "client_id", client.ID, "sub", job.Subject, "sid", job.SessionID,
			"attempts", job.Attempts, "error", job.LastError)
		if s.events != nil {
			s.events.Warning(client, ReasonBackchannelLogoutFailed, msg)
		}
		d.finish(ctx, job, "abandoned")
		return
	}
	job.NextAttemptAt = next
	if err := s.store.RetryLogoutDelivery(ctx, job); err != nil && !errors.Is(err, storage.ErrNotFound) && ctx.Err() == nil {
		// The claim lapses and the delivery is due again.
		s.log.Warn("recording a failed back-channel logout attempt", "client_id", client.ID, "error", err)
	}
}

// finish removes a delivery from the outbox and counts its outcome.
func (d *dispatcher) finish(ctx context.Context, job storage.LogoutDelivery, outcome string) {
	d.s.metrics.backchannelLogouts.WithLabelValues(outcome).Inc()
	if err := d.s.store.FinishLogoutDelivery(ctx, job.ID); err != nil && ctx.Err() == nil {
		// The claim lapses and the delivery is made again: at least once.
		d.s.log.Warn("removing a back-channel logout delivery", "client_id", job.ClientID, "error", err)
	}
}

// attempt signs a logout token and POSTs it to the client (§2.5); nil
// when the relying party answered 2xx.
func (d *dispatcher) attempt(ctx context.Context, snap *config.Snapshot, client *config.Client, job storage.LogoutDelivery, now time.Time) error {
	token, err := d.s.signLogoutToken(snap, client, job, now)
	if err != nil {
		d.s.metrics.backchannelAttempts.WithLabelValues("signing_failed").Inc()
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, client.Backchannel.URI, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		d.s.metrics.backchannelAttempts.WithLabelValues("connection").Inc()
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		result := "connection"
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			result = "timeout"
		}
		d.s.metrics.backchannelAttempts.WithLabelValues(result).Inc()
		// The error names the URI, never the token (it is in the body).
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		// §2.8: 200 OK; some frameworks answer 204.
		d.s.metrics.backchannelAttempts.WithLabelValues("success").Inc()
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		d.s.metrics.backchannelAttempts.WithLabelValues("http_4xx").Inc()
	default:
		d.s.metrics.backchannelAttempts.WithLabelValues("http_5xx").Inc()
	}
	return fmt.Errorf("%s answered %s", client.Backchannel.URI, resp.Status)
}

// logoutTokenClaims is a logout token (§2.4): never a nonce, which would
// let it pass for an ID token.
type logoutTokenClaims struct {
	Issuer    string                     `json:"iss"`
	Subject   string                     `json:"sub,omitempty"`
	Audience  string                     `json:"aud"`
	IssuedAt  int64                      `json:"iat"`
	ExpiresAt int64                      `json:"exp"`
	ID        string                     `json:"jti"`
	Events    map[string]json.RawMessage `json:"events"`
	SessionID string                     `json:"sid,omitempty"`
}

// signLogoutToken signs the logout token of a delivery for its client,
// with the key and algorithm of the client's ID tokens, so that the
// relying party verifies it as it verifies those.
func (s *Server) signLogoutToken(snap *config.Snapshot, client *config.Client, job storage.LogoutDelivery, now time.Time) (string, error) {
	key, e := idTokenKey(snap, client, now)
	if e != nil {
		return "", errors.New(e.Description)
	}
	payload, err := json.Marshal(logoutTokenClaims{
		Issuer: snap.Issuer, Subject: job.Subject, Audience: client.ID,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(logoutTokenTTL).Unix(), ID: job.ID,
		Events:    map[string]json.RawMessage{backchannelLogoutEvent: json.RawMessage(`{}`)},
		SessionID: job.SessionID,
	})
	if err != nil {
		return "", err
	}
	js, err := s.derive(snap).signers.Get(key)
	if err != nil {
		return "", err
	}
	return js.SignLogoutToken(payload)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// endSessions ends the sessions sel selects, as opts says, queueing a
// logout token for each client with a back-channel logout URI that got
// tokens in them, and wakes the dispatcher. why is logged.
func (s *Server) endSessions(ctx context.Context, snap *config.Snapshot, sel storage.SessionSelector, opts storage.EndOptions, why string) (storage.Ended, error) {
	now := s.now()
	opts.OfflineScope = oidc.ScopeOfflineAccess
	opts.Notify = func(clientID string) bool {
		c := snap.Clients.Get(clientID)
		return c != nil && c.Backchannel != nil
	}
	opts.DeliverUntil = now.Add(s.backchannel.opts.DeliverFor)
	ended, err := s.store.EndSessions(ctx, sel, opts, now)
	if err != nil {
		return ended, err
	}
	if len(ended.Deliveries) > 0 {
		s.backchannel.notify()
	}
	s.auditSessionsEnded(ctx, snap, ended, why)
	if len(ended.Sessions) > 0 || ended.FamiliesRevoked > 0 || ended.ConsentsDeleted > 0 {
		subjects := map[string]bool{}
		for _, e := range ended.Sessions {
			subjects[e.Subject] = true
		}
		attrs := []any{slog.String("why", why), slog.Int("sessions", len(ended.Sessions)), slog.Int("grants_revoked", ended.FamiliesRevoked),
			slog.Int("consents_deleted", ended.ConsentsDeleted), slog.Int("logout_tokens", len(ended.Deliveries))}
		if len(subjects) == 1 {
			for sub := range subjects {
				attrs = append(attrs, slog.String("sub", sub))
			}
		}
		s.log.Info("sessions ended", attrs...)
	}
	return ended, nil
}
