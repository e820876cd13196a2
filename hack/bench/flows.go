package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
)

// flow is one benchmarked operation: setup prepares a worker once, op is
// what is timed. A flow with lean can also be driven by the lean client
// (-client lean): one request built once per worker, sent again and again.
type flow struct {
	setup func(ctx context.Context, e *env, w *worker) error
	op    func(ctx context.Context, e *env, w *worker) error
	lean  *leanFlow
}

// leanFlow is a flow as the lean client drives it: the request (built
// after setup) and what a good answer is.
type leanFlow struct {
	request func(e *env, w *worker) ([]byte, error)
	// want is the status every answer must have; check, when set, looks
	// at the body.
	want  int
	check func(body []byte) error
	// rebuild: build the request anew for every send (a single-use
	// client assertion), not once per worker.
	rebuild bool
}

var flowTable = map[string]flow{
	"client_credentials": {op: func(ctx context.Context, e *env, w *worker) error {
		_, err := w.token(ctx, e, ccForm)
		return err
	}, lean: &leanFlow{request: func(e *env, _ *worker) ([]byte, error) {
		return e.leanPost(e.endpoints().Token, ccForm)
	}, want: http.StatusOK, check: contains(`"access_token":"`)}},
	"introspection": {setup: func(ctx context.Context, e *env, w *worker) error {
		tok, err := w.token(ctx, e, ccForm)
		w.accessToken = tok.AccessToken
		return err
	}, op: introspect, lean: &leanFlow{request: func(e *env, w *worker) ([]byte, error) {
		return e.leanPost(e.endpoints().Introspection, url.Values{"token": {w.accessToken}})
	}, want: http.StatusOK, check: contains(`"active":true`)}},
	"jwks": {op: func(ctx context.Context, e *env, w *worker) error { return w.get(ctx, e.endpoints().JWKS) },
		lean: &leanFlow{request: func(e *env, _ *worker) ([]byte, error) { return leanGet(e.endpoints().JWKS) },
			want: http.StatusOK, check: contains(`"keys":[`)}},
	"metadata": {op: func(ctx context.Context, e *env, w *worker) error { return w.get(ctx, e.endpoints().Metadata) },
		lean: &leanFlow{request: func(e *env, _ *worker) ([]byte, error) { return leanGet(e.endpoints().Metadata) },
			want: http.StatusOK, check: contains(`"issuer"`)}},
	// The single-sign-on flow: a browser that is logged in and has
	// consented before gets a code at once, which the app exchanges.
	"sso_code": {setup: func(ctx context.Context, e *env, w *worker) error {
		_, err := w.codeFlow(ctx, e)
		return err
	}, op: func(ctx context.Context, e *env, w *worker) error {
		_, err := w.codeFlow(ctx, e)
		return err
	}},
	"refresh": {setup: func(ctx context.Context, e *env, w *worker) error {
		tok, err := w.codeFlow(ctx, e)
		w.refreshToken = tok.RefreshToken
		return err
	}, op: func(ctx context.Context, e *env, w *worker) error {
		tok, err := w.token(ctx, e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {w.refreshToken}})
		if err == nil {
			w.refreshToken = tok.RefreshToken
		}
		return err
	}},
	// A new browser each time: login page, password (bcrypt), code,
	// token. Consent is remembered after the first.
	"password_code": {op: func(ctx context.Context, e *env, w *worker) error {
		w.newBrowser()
		_, err := w.codeFlow(ctx, e)
		return err
	}},
}

var ccForm = url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}}

func (e *env) endpoints() endpoints.Endpoints {
	if e.eps != nil {
		return *e.eps
	}
	return endpoints.For(e.issuer)
}

// host is where the lean client connects for a flow: the server under
// test, or a peer's admin listener for its introspection.
func (e *env) host(flow string) string {
	if flow == "introspection" && e.introspectAddr != "" {
		return e.introspectAddr
	}
	return e.addr
}

// credentials are the client the flows authenticate as: the demo client,
// or the one registered at a peer.
func (e *env) credentials() (id, secret string) {
	if e.clientID != "" {
		return e.clientID, e.clientSecret
	}
	return demoClientID, demoClientSecret
}

func leanGet(u string) ([]byte, error) {
	req, err := buildRequest(http.MethodGet, u, nil, "")
	return req, err
}

// leanPost is a form POST with the client's HTTP Basic credentials.
func (e *env) leanPost(u string, form url.Values) ([]byte, error) {
	id, secret := e.credentials()
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
	req, err := buildRequest(http.MethodPost, u, map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic " + basic}, form.Encode())
	return req, err
}

func contains(s string) func([]byte) error {
	return func(body []byte) error {
		if !bytes.Contains(body, []byte(s)) {
			return fmt.Errorf("answer without %s: %.200s", s, body)
		}
		return nil
	}
}

// leanOp is one operation of the lean client over its blocking
// connection (the event loop does the same for many at once).
func (w *worker) leanOp() error {
	if err := w.rebuildRequest(); err != nil {
		return err
	}
	status, body, err := w.lean.do(w.leanReq, false)
	if err != nil {
		return err
	}
	return w.checkLean(w.leanFlow, status, body)
}

// checkLean checks an answer of a lean flow.
func (w *worker) checkLean(lf *leanFlow, status int, body []byte) error {
	if status != lf.want {
		return fmt.Errorf("status %d, want %d: %.200s", status, lf.want, body)
	}
	if lf.check != nil {
		return lf.check(body)
	}
	return nil
}

// record counts one operation that began at began: a success with its
// latency, or an error.
func (w *worker) record(began time.Time, err error) {
	if err != nil {
		w.fail(err)
		return
	}
	w.ops++
	if !w.countOnly {
		w.latencies = append(w.latencies, time.Since(began).Seconds())
	}
}

func (w *worker) fail(err error) {
	w.errors++
	if len(w.firstErrors) < 2 {
		w.firstErrors = append(w.firstErrors, err.Error())
	}
}

// worker is one connection's client: its own transport (one keep-alive
// connection) and cookie jar.
type worker struct {
	http *http.Client
	// lean and leanReq drive a flow with the lean client.
	lean     *leanConn
	leanReq  []byte
	leanFlow *leanFlow
	// newRequest, when set, builds leanReq anew before each send.
	newRequest func() ([]byte, error)
	// op is what the worker does, with either client.
	op           func(ctx context.Context, e *env, w *worker) error
	accessToken  string
	refreshToken string
	// clientID and clientSecret, when set, replace the demo client's (a
	// peer's client).
	clientID, clientSecret string
	// leanHost is where the lean client connects.
	leanHost  string
	latencies []float64 // seconds
	ops       int
	// countOnly counts operations without keeping their latencies (the
	// soak, whose millions of them would only grow this process).
	countOnly   bool
	errors      int
	firstErrors []string
}

func newWorker() *worker {
	w := &worker{}
	w.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	w.newBrowser()
	return w
}

func (w *worker) newBrowser() {
	jar, _ := cookiejar.New(nil)
	w.http.Jar = jar
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func (w *worker) token(ctx context.Context, e *env, form url.Values) (tokenResponse, error) {
	var tok tokenResponse
	// A form with a client assertion authenticates itself.
	body, err := w.post(ctx, e.endpoints().Token, form, !form.Has("client_assertion"), http.StatusOK)
	if err != nil {
		return tok, err
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return tok, fmt.Errorf("token response %.200s", body)
	}
	return tok, nil
}

func introspect(ctx context.Context, e *env, w *worker) error {
	body, err := w.post(ctx, e.endpoints().Introspection, url.Values{"token": {w.accessToken}}, true, http.StatusOK)
	if err == nil && !strings.Contains(string(body), `"active":true`) {
		err = fmt.Errorf("introspection %.200s", body)
	}
	return err
}

func (w *worker) get(ctx context.Context, u string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	_, _, err := w.do(req, http.StatusOK)
	return err
}

func (w *worker) post(ctx context.Context, u string, form url.Values, clientAuth bool, want int) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientAuth {
		id, secret := demoClientID, demoClientSecret
		if w.clientID != "" {
			id, secret = w.clientID, w.clientSecret
		}
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	_, body, err := w.do(req, want)
	return body, err
}

// do sends a request and reads the whole answer, so that the connection
// is reused; a status other than want is an error.
func (w *worker) do(req *http.Request, want int) (*http.Response, []byte, error) {
	resp, err := w.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != want {
		return resp, body, fmt.Errorf("%s %s: status %d, want %d: %.200s", req.Method, req.URL.Path, resp.StatusCode, want, body)
	}
	return resp, body, nil
}

var debug = os.Getenv("BENCH_DEBUG") != ""

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// codeFlow follows /authorize through whatever pages the server shows
// (login, consent: approved and remembered) to the code, and exchanges
// it.
func (w *worker) codeFlow(ctx context.Context, e *env) (tokenResponse, error) {
	resp, verifier, err := w.authorize(ctx, e)
	if err != nil {
		return tokenResponse{}, err
	}
	return w.followToToken(ctx, e, resp.Header.Get("Location"), verifier)
}

// followToToken follows a code flow from a redirect to location through
// the pages the server shows to the code, and exchanges it.
func (w *worker) followToToken(ctx context.Context, e *env, location, verifier string) (tokenResponse, error) {
	for range 4 {
		next := e.local(location)
		if debug {
			fmt.Println("redirect", next)
		}
		if strings.HasPrefix(next, demoRedirectURI) {
			u, _ := url.Parse(next)
			code := u.Query().Get("code")
			if code == "" {
				return tokenResponse{}, fmt.Errorf("redirected without a code: %s", next)
			}
			return w.token(ctx, e, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {demoRedirectURI}, "code_verifier": {verifier}})
		}
		resp, err := w.page(ctx, next)
		if err != nil {
			return tokenResponse{}, err
		}
		location = resp.Header.Get("Location")
	}
	return tokenResponse{}, errors.New("too many redirects")
}

// authorize starts a code flow for the demo client: the answer of
// /authorize (a redirect) and the PKCE verifier.
func (w *worker) authorize(ctx context.Context, e *env) (*http.Response, string, error) {
	verifier := randomString()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {demoClientID}, "redirect_uri": {demoRedirectURI},
		"scope": {"orders:read"}, "state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.endpoints().Authorization+"?"+q.Encode(), nil)
	resp, _, err := w.do(req, http.StatusFound)
	return resp, verifier, err
}

// pageForm shows a page and returns its form's hidden fields and where it
// posts them.
func (w *worker) pageForm(ctx context.Context, u string) (string, url.Values, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	_, body, err := w.do(req, http.StatusOK)
	if err != nil {
		return "", nil, err
	}
	f := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(string(body), -1) {
		f.Set(m[1], m[2])
	}
	return u[:strings.IndexByte(u+"?", '?')], f, nil
}

// page shows a login or consent page and submits it.
func (w *worker) page(ctx context.Context, u string) (*http.Response, error) {
	action, f, err := w.pageForm(ctx, u)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.Contains(u, endpoints.LoginPath):
		f.Set("username", demoUsername)
		f.Set("password", demoPassword)
	case strings.Contains(u, endpoints.ConsentPath):
		f.Set("decision", "approve")
		f.Set("remember", "yes")
	default:
		return nil, fmt.Errorf("unexpected page %s", u)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, action, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _, err := w.do(req, http.StatusSeeOther)
	return resp, err
}

// local points a URL on the demo issuer at the server under test.
func (e *env) local(u string) string {
	if rest, ok := strings.CutPrefix(u, strings.TrimRight(e.demo["GATEHOUSE_ISSUER"], "/")); ok {
		return e.issuer + rest
	}
	return u
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// rebuildRequest builds the next request of a flow whose requests are
// each used once.
func (w *worker) rebuildRequest() error {
	if w.newRequest == nil {
		return nil
	}
	req, err := w.newRequest()
	if err != nil {
		return err
	}
	w.leanReq = req
	return nil
}
