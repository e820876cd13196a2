package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// MaxBrandLogoBytes bounds a logo served from a ConfigMap: a header image,
// not a photograph.
const MaxBrandLogoBytes = 256 << 10

// BrandLogo is spec.branding.logoConfigMapRef's image, which the token
// server serves itself.
type BrandLogo struct {
	Image       []byte
	ContentType string
	// Version is a hash of Image, put in the logo's URL so that a browser
	// fetches a changed logo at once and may cache each version.
	Version string
}

// logoTypes are the image types a logo may have, by the key's extension,
// with what http.DetectContentType finds in such a file ("" for SVG,
// which is text and cannot be told apart by sniffing).
var logoTypes = map[string][2]string{
	".svg":  {"image/svg+xml", ""},
	".png":  {"image/png", "image/png"},
	".jpg":  {"image/jpeg", "image/jpeg"},
	".jpeg": {"image/jpeg", "image/jpeg"},
	".webp": {"image/webp", "image/webp"},
}

// brandLogo reads the logo spec.branding.logoConfigMapRef names from the
// watched ConfigMaps: nil without one; an error, for the snapshot's
// problems, when it cannot be served (the pages then show no logo).
func brandLogo(as *oauthv1.AuthorizationServer, cms map[string]*corev1.ConfigMap) (*BrandLogo, error) {
	ref := as.Spec.Branding.LogoConfigMapRef
	if ref == nil {
		return nil, nil
	}
	types, ok := logoTypes[strings.ToLower(path.Ext(ref.Key))]
	if !ok {
		return nil, fmt.Errorf("spec.branding.logoConfigMapRef: key %q is not .svg, .png, .jpg, .jpeg or .webp", ref.Key)
	}
	cm := cms[ref.Name]
	if cm == nil {
		return nil, fmt.Errorf("spec.branding.logoConfigMapRef: ConfigMap %s does not exist", ref.Name)
	}
	img, ok := cm.BinaryData[ref.Key]
	if !ok && types[1] == "" {
		var text string
		text, ok = cm.Data[ref.Key]
		img = []byte(text)
	}
	switch {
	case !ok:
		return nil, fmt.Errorf("spec.branding.logoConfigMapRef: ConfigMap %s has no key %s (an image other than SVG goes in binaryData)", ref.Name, ref.Key)
	case len(img) == 0 || len(img) > MaxBrandLogoBytes:
		return nil, fmt.Errorf("spec.branding.logoConfigMapRef: %s/%s has %d bytes, want 1 to %d", ref.Name, ref.Key, len(img), MaxBrandLogoBytes)
	case types[1] != "" && http.DetectContentType(img) != types[1]:
		return nil, fmt.Errorf("spec.branding.logoConfigMapRef: %s/%s is not a %s image", ref.Name, ref.Key, types[0])
	}
	sum := sha256.Sum256(img)
	return &BrandLogo{Image: img, ContentType: types[0], Version: hex.EncodeToString(sum[:8])}, nil
}
