package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/config"
)

// jwksMaxAge is how long validators may cache the JWKS.
//
// It must stay well below the key set's prepublish period (default 24h,
// at least 1m): a new key is published that long before it signs, so a
// validator whose cached copy is younger than the prepublish period has seen
// the key before its first token arrives. Five minutes keeps the endpoint's
// load negligible; with a short prepublish period the cap is half of it, so
// even a validator that fetched just before the key appeared refreshes in
// time. Validators that meet an unknown kid refetch anyway.
func jwksMaxAge(prepublish time.Duration) string {
	age := min(5*time.Minute, prepublish/2)
	return strconv.Itoa(int(age / time.Second))
}

func buildJWKS(snap *config.Snapshot) (*document, error) {
	if snap.Keys == nil {
		return nil, errNoKeys
	}
	jwks, err := snap.Keys.PublicJWKS()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(jwks)
	if err != nil {
		return nil, err
	}
	return newDocument(b, "application/jwk-set+json", "public, max-age="+jwksMaxAge(snap.PrepublishPeriod)), nil
}

type constError string

func (e constError) Error() string { return string(e) }

const errNoKeys = constError("no signing keys yet")

// handleJWKS serves the public keys (RFC 7517 §5): next, active and retired.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	if res, ok := onlyGET(w, r); !ok {
		return res
	}
	d := s.derive(snap)
	if d.jwksErr != nil {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "signing keys are not available yet", http.StatusServiceUnavailable)
		return result{outcome: ErrTemporarilyUnavailable}
	}
	return d.jwks.serve(w, r)
}
