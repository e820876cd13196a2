package server

import (
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/formparse"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// Bounds on what an unauthenticated caller can make the server store with
// an authorization request.
const (
	maxNonce     = 512
	maxLoginHint = 256
)

// oidcParams are the OpenID Connect parameters of an authorization request
// (Core §3.1.2.1). They are read only when the request asks for openid,
// so that a plain OAuth request behaves as before; any other parameter is
// ignored, as §3.1.2.1 requires.
type oidcParams struct {
	nonce     string
	loginHint string
	// prompt values: none, login, consent.
	none, login, consent bool
	// maxAge is max_age (§3.1.2.1); negative when absent.
	maxAge time.Duration
	// hintSubject is the sub of a valid id_token_hint, or else the sub
	// value of the claims parameter; empty without either.
	hintSubject string
	// claims is the claims parameter (Core §5.5), claimsParam as sent.
	claims      *claimsRequest
	claimsParam string
}

// parseOIDCParams checks nonce, prompt, max_age and login_hint. A bad
// value is invalid_request through the redirect (§3.1.2.6), before
// anything is stored.
func parseOIDCParams(snap *config.Snapshot, q interface{ Get(string) string }) (oidcParams, *Error) {
	p := oidcParams{nonce: q.Get("nonce"), loginHint: q.Get("login_hint"), maxAge: -1}
	if len(p.nonce) > maxNonce {
		return p, invalidRequest("nonce is longer than " + strconv.Itoa(maxNonce) + " characters")
	}
	if len(p.loginHint) > maxLoginHint {
		return p, invalidRequest("login_hint is longer than " + strconv.Itoa(maxLoginHint) + " characters")
	}
	if prompt := q.Get("prompt"); prompt != "" {
		values := strings.Split(prompt, " ")
		for _, v := range values {
			switch v {
			case "none":
				p.none = true
			case "login":
				p.login = true
			case "consent":
				p.consent = true
			default:
				// select_account included: one browser holds one login.
				return p, invalidRequest("prompt value " + formparse.SafeName(v) + " is not supported; use none, login or consent")
			}
		}
		if p.none && len(values) > 1 {
			return p, invalidRequest("prompt=none cannot be combined with other values (Core §3.1.2.1)")
		}
	}
	if v := q.Get("max_age"); v != "" {
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			return p, invalidRequest("max_age must be a whole number of seconds")
		}
		p.maxAge = time.Duration(n) * time.Second
	}
	if hint := q.Get("id_token_hint"); hint != "" {
		claims, ok := verifyIDTokenHint(snap, hint)
		if !ok {
			return p, invalidRequest("id_token_hint is not an ID token this server issued")
		}
		p.hintSubject = claims.Subject
	}
	var e *Error
	p.claimsParam = q.Get("claims")
	if p.claims, e = parseClaimsRequest(p.claimsParam); e != nil {
		return p, e
	}
	if p.claims.demandsACR() {
		return p, newError(ErrUnmetAuthenticationRequirements, "acr is requested as essential with particular values, and this server sets no acr")
	}
	// A sub value asks about one person, as id_token_hint does (§5.5.1).
	if sub := p.claims.requestedSubject(); sub != "" && p.hintSubject == "" {
		p.hintSubject = sub
	}
	return p, nil
}

// reauthenticate reports whether the session's login is not good enough
// for this request: prompt=login asks for a new one, and max_age bounds
// how long ago the person may have typed their password.
//
// A session of someone other than the id_token_hint's subject does not
// count either: the relying party asked about that person (§3.1.2.1).
func (p oidcParams) reauthenticate(sess storage.Session, now time.Time) bool {
	return p.login || (p.maxAge >= 0 && now.Sub(sess.AuthTime) > p.maxAge) ||
		(p.hintSubject != "" && p.hintSubject != sess.Subject)
}
