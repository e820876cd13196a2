// Package testlogin is a test helper: it signs a person in through Gatehouse's login and
// consent pages with a plain HTTP client, as a browser would: the forms'
// hidden fields (CSRF token, request handle) are read from the pages and
// posted back with the cookies. Tests use it where a real browser would
// only add time: to get ID tokens for relying parties such as
// kube-apiserver, and to play the browser that `gatehouse login` opens.
package testlogin

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// Browser is a cookie-keeping HTTP client that stays on the issuer: a
// redirect elsewhere (to the client's redirect URI) ends a flow.
type Browser struct {
	hc     *http.Client
	origin string
}

// New makes a Browser for the issuer; transport may carry a CA to trust
// (nil: http.DefaultTransport).
func New(issuer string, transport http.RoundTripper) (*Browser, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, err
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	b := &Browser{origin: u.Scheme + "://" + u.Host}
	b.hc = &http.Client{Jar: jar, Transport: transport, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme+"://"+req.URL.Host != b.origin {
			return http.ErrUseLastResponse
		}
		if len(via) > 10 {
			return errors.New("more than 10 redirects")
		}
		return nil
	}}
	return b, nil
}

// SignIn opens authorizeURL, logs in with username and password (unless
// the session cookie already does) and approves the consent page when
// there is one. It returns where the server sends the browser back: the
// client's redirect URI with code and state, or with an error.
func (b *Browser) SignIn(ctx context.Context, authorizeURL, username, password string) (*url.URL, error) {
	resp, err := b.do(ctx, http.MethodGet, authorizeURL, nil)
	for step := 0; err == nil && step < 3; step++ {
		if loc := resp.location; loc != nil {
			return loc, nil
		}
		var fields url.Values
		switch {
		case strings.Contains(resp.body, `name="password"`):
			fields = url.Values{"username": {username}, "password": {password}}
		case strings.Contains(resp.body, `name="decision" value="approve"`):
			fields = url.Values{"decision": {"approve"}}
		default:
			return nil, fmt.Errorf("%s: neither a login nor a consent page (%d): %.500s", resp.url, resp.status, resp.body)
		}
		var action string
		if action, err = formAction(resp); err == nil {
			resp, err = b.do(ctx, http.MethodPost, action, withHidden(resp.body, fields))
		}
	}
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no redirect back to the client after login and consent; last page %s: %.500s", resp.url, resp.body)
}

// ApproveDevice plays the person of the device authorization grant (RFC
// 8628): it opens verificationURIComplete, confirms the code filled in,
// logs in with username and password (unless the session cookie already
// does) and answers the consent page with decision, "approve" or "deny".
// It returns the text of the page that ends the approval.
func (b *Browser) ApproveDevice(ctx context.Context, verificationURIComplete, username, password, decision string) (string, error) {
	resp, err := b.do(ctx, http.MethodGet, verificationURIComplete, nil)
	for step := 0; err == nil && step < 4; step++ {
		if resp.location != nil {
			return "", fmt.Errorf("%s: sent off the issuer to %s", resp.url, resp.location)
		}
		var fields url.Values
		switch {
		case strings.Contains(resp.body, `name="user_code"`):
			m := userCodeRE.FindStringSubmatch(resp.body)
			if m == nil || resp.status != http.StatusOK {
				return "", fmt.Errorf("%s: the code was not taken (%d): %.500s", resp.url, resp.status, resp.body)
			}
			fields = url.Values{"user_code": {html.UnescapeString(m[1])}}
		case strings.Contains(resp.body, `name="password"`):
			fields = url.Values{"username": {username}, "password": {password}}
		case strings.Contains(resp.body, `name="decision" value="approve"`):
			fields = url.Values{"decision": {decision}}
		case strings.Contains(resp.body, `id="device-result"`) && resp.status == http.StatusOK:
			return resp.body, nil
		default:
			return "", fmt.Errorf("%s: not a page of the device approval (%d): %.500s", resp.url, resp.status, resp.body)
		}
		var action string
		if action, err = formAction(resp); err == nil {
			resp, err = b.do(ctx, http.MethodPost, action, withHidden(resp.body, fields))
		}
	}
	if err != nil {
		return "", err
	}
	return "", fmt.Errorf("the device approval did not end; last page %s: %.500s", resp.url, resp.body)
}

type page struct {
	url      *url.URL
	status   int
	body     string
	location *url.URL // a redirect off the issuer
}

func (b *Browser) do(ctx context.Context, method, target string, form url.Values) (*page, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	p := &page{url: resp.Request.URL, status: resp.StatusCode, body: string(data)}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if p.location, err = resp.Location(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

var (
	formRE   = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	// userCodeRE is the /device page's code field and its value.
	userCodeRE = regexp.MustCompile(`name="user_code"[^>]*value="([^"]*)"`)
)

func formAction(p *page) (string, error) {
	m := formRE.FindStringSubmatch(p.body)
	if m == nil {
		return "", fmt.Errorf("%s: no form", p.url)
	}
	action, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return "", err
	}
	return action.String(), nil
}

// withHidden adds the page's hidden fields (the CSRF token, the request
// handle) to fields.
func withHidden(body string, fields url.Values) url.Values {
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		fields.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return fields
}
