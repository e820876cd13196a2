package pages

import (
	"html/template"
	"math"
	"regexp"
	"strconv"
	"unicode/utf8"
)

// DefaultBrandName is the pages' name when a server has no display name.
const DefaultBrandName = "Gatehouse"

// Brand is a server's look (AuthorizationServer spec.branding). The CRD
// validates it; the renderer checks again and leaves out what is not
// valid, since a colour goes into a stylesheet and a logo into the CSP.
type Brand struct {
	// Name replaces "Gatehouse" in the header and the title.
	Name string
	// Logo is an https image URL, allowed by exactly that URL (ImageSource).
	Logo string
	// OwnLogo: Logo is the token server's own URL for the image (its
	// issuer's origin, which may be http on loopback).
	OwnLogo bool
	// Primary and Accent are #rrggbb colours.
	Primary, Accent string
}

// logoSource is the CSP source expression of the brand's logo, "" when
// it has none or it is not valid.
func (b Brand) logoSource() string {
	if b.OwnLogo {
		return imageSource(b.Logo, "https", "http")
	}
	return ImageSource(b.Logo)
}

var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// DisplayName is the brand's name, Gatehouse's without one.
func (b Brand) DisplayName() string {
	if b.Name == "" {
		return DefaultBrandName
	}
	return b.Name
}

// Initial is the header's mark when there is no logo.
func (b Brand) Initial() string {
	r, _ := utf8.DecodeRuneInString(b.DisplayName())
	return string(r)
}

// style is the brand's stylesheet: its colours as the custom properties
// style.css reads, after it, so that they win in light and dark mode.
// "" when there is nothing to override. It is a second inline stylesheet,
// allowed by its own hash, so the CSP stays free of 'unsafe-inline'.
func (b Brand) style() template.CSS {
	var css string
	if hexColor.MatchString(b.Primary) {
		css += "--brand:" + b.Primary + ";--brand-ink:" + inkOn(b.Primary) + ";"
	}
	if hexColor.MatchString(b.Accent) {
		css += "--focus:" + b.Accent + ";--accent:" + b.Accent + ";"
	}
	if css == "" {
		return ""
	}
	return template.CSS(":root{" + css + "}") // built from validated colours only
}

// inkOn is the text colour on background bg (#rrggbb): black or white,
// whichever has the higher contrast ratio (WCAG 2.2, relative luminance).
func inkOn(bg string) string {
	lum := 0.0
	for i, weight := range []float64{0.2126, 0.7152, 0.0722} {
		v, _ := strconv.ParseUint(bg[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.04045 {
			c /= 12.92
		} else {
			c = math.Pow((c+0.055)/1.055, 2.4)
		}
		lum += weight * c
	}
	// Contrast with white (1.05/(L+0.05)) against black ((L+0.05)/0.05).
	if 1.05/(lum+0.05) >= (lum+0.05)/0.05 {
		return "#fff"
	}
	return "#000"
}
