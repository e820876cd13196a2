package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

// callbackResult is what the browser brought back to the loopback
// redirect URI.
type callbackResult struct {
	code string
	err  error
}

// interactive runs the authorization code flow with PKCE (RFC 7636) in the
// person's browser, with a loopback redirect URI on a port chosen now
// (RFC 8252 §7.3), and returns the ID token.
func (l *login) interactive() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	cfg := l.oauth
	cfg.RedirectURL = fmt.Sprintf("http://%s/callback", ln.Addr())
	state, nonce, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", nonce))

	results := make(chan callbackResult, 1)
	srv := &http.Server{Handler: callbackHandler(state, results), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	fmt.Fprintf(l.stderr, "gatehouse login: log in to %s in your browser:\n\n  %s\n\n", l.flags.issuer, authURL)
	if l.flags.openBrowser {
		if err := openBrowser(authURL); err != nil {
			fmt.Fprintf(l.stderr, "gatehouse login: could not open a browser (%v): open the URL above\n", err)
		}
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.flags.timeout)
	defer cancel()
	var res callbackResult
	select {
	case res = <-results:
	case <-ctx.Done():
		return "", fmt.Errorf("no login within %s", l.flags.timeout)
	}
	if res.err != nil {
		return "", res.err
	}
	tok, err := cfg.Exchange(l.ctx, res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", fmt.Errorf("exchanging the code: %w", err)
	}
	raw, err := l.keep(tok, "")
	if err != nil {
		return "", err
	}
	if _, err := l.verify(raw, nonce); err != nil {
		return "", err
	}
	return raw, nil
}

// callbackHandler takes the first redirect back that carries this login's
// state: its code, or its error (RFC 6749 §4.1.2.1). Other requests (a
// favicon, a stale tab) get a 400 and change nothing.
func callbackHandler(state string, results chan<- callbackResult) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/callback" || q.Get("state") != state {
			htmlPage(w, http.StatusBadRequest, "This is not the login gatehouse login is waiting for.")
			return
		}
		res := callbackResult{code: q.Get("code")}
		switch {
		case q.Get("error") != "":
			res.err = fmt.Errorf("the login failed: %s: %s", q.Get("error"), q.Get("error_description"))
			htmlPage(w, http.StatusOK, "The login failed: "+q.Get("error")+". You can close this window.")
		case res.code == "":
			res.err = errors.New("the redirect back carried no code")
			htmlPage(w, http.StatusBadRequest, "The redirect back carried no code.")
		default:
			htmlPage(w, http.StatusOK, "You are logged in. You can close this window.")
		}
		select {
		case results <- res:
		default: // a second redirect back: the first one counts
		}
	})
}

// htmlPage is what the browser shows after the redirect back.
func htmlPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><title>gatehouse login</title><p id=result>%s</p>", html.EscapeString(msg))
}
