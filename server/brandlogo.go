package server

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
)

// brandLogoCacheControl: the logo's URL names its version, so a browser
// may keep it for a day; a changed logo has another URL.
const brandLogoCacheControl = "public, max-age=86400"

// handleBrandLogo serves spec.branding.logoConfigMapRef's image, for
// clusters whose people cannot reach a CDN. The image is a document like
// the JWKS (ETag, 304). Opened by itself, an SVG is a page of this
// origin: its own CSP runs no script and loads nothing, and the sandbox
// gives it no origin at all.
func (s *Server) handleBrandLogo(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	doc := s.derive(snap).brandLogo
	if doc == nil {
		http.NotFound(w, r)
		return result{outcome: "not_found"}
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	h.Set("X-Content-Type-Options", "nosniff")
	return doc.serve(w, r)
}

// brand is the server's branding as the pages show it: the logo is the
// https URL of spec.branding.logoURL, or this server's own BrandLogoPath
// with the image's version when it serves one.
func brand(snap *config.Snapshot) pages.Brand {
	b := &snap.Branding
	out := pages.Brand{Name: b.DisplayName, Logo: string(b.LogoURL), Primary: string(b.PrimaryColor), Accent: string(b.AccentColor)}
	if snap.BrandLogo != nil {
		out.Logo = strings.TrimSuffix(snap.Issuer, "/") + endpoints.BrandLogoPath + "?v=" + url.QueryEscape(snap.BrandLogo.Version)
		out.OwnLogo = true
	}
	return out
}
