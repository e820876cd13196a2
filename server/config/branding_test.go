package config

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// The logo of spec.branding.logoConfigMapRef is served only when the
// ConfigMap has it, under the size bound, and it is the image its key's
// extension says; otherwise the problem says why and the pages show no
// logo.
func TestBrandLogo(t *testing.T) {
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64)...)
	svg := `<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>`
	cm := &corev1.ConfigMap{
		Data:       map[string]string{"logo.svg": svg, "logo.png": "text in data"},
		BinaryData: map[string][]byte{"logo.png": png, "fake.png": []byte("<svg/>"), "big.png": append(png, make([]byte, MaxBrandLogoBytes)...)},
	}
	for _, tc := range []struct {
		ref         *oauthv1.ConfigMapKeyReference
		cms         map[string]*corev1.ConfigMap
		contentType string
		image       []byte
		problem     string
	}{
		{ref: nil},
		{ref: &oauthv1.ConfigMapKeyReference{Name: "brand", Key: "logo.svg"}, cms: map[string]*corev1.ConfigMap{"brand": cm}, contentType: "image/svg+xml", image: []byte(svg)},
		{ref: &oauthv1.ConfigMapKeyReference{Name: "brand", Key: "logo.png"}, cms: map[string]*corev1.ConfigMap{"brand": cm}, contentType: "image/png", image: png},
		{ref: &oauthv1.ConfigMapKeyReference{Name: "brand", Key: "logo.svg"}, problem: "ConfigMap brand does not exist"},
		{ref: &oauthv1.ConfigMapKeyReference{Name: "brand", Key: "none.webp"}, cms: map[string]*corev1.ConfigMap{"brand": cm}, problem: "has no key none.webp"},
		{ref: &oauthv1.ConfigMapKeyReference{Name: "brand", Key: "fake.png"}, cms: map[string]*corev1.ConfigMap{"brand": cm}, problem: "is not a image/png image"},
		{ref: &oauthv1.ConfigMapKeyReference{Name: "brand", Key: "big.png"}, cms: map[string]*corev1.ConfigMap{"brand": cm}, problem: "want 1 to 262144"},
		{ref: &oauthv1.ConfigMapKeyReference{Name: "brand", Key: "logo.gif"}, cms: map[string]*corev1.ConfigMap{"brand": cm}, problem: "is not .svg, .png"},
	} {
		as := &oauthv1.AuthorizationServer{Spec: oauthv1.AuthorizationServerSpec{Branding: oauthv1.Branding{LogoConfigMapRef: tc.ref}}}
		logo, err := brandLogo(as, tc.cms)
		switch {
		case tc.problem != "":
			if err == nil || !strings.Contains(err.Error(), tc.problem) || logo != nil {
				t.Errorf("%+v: %v, want a problem with %q", tc.ref, err, tc.problem)
			}
		case tc.ref == nil:
			if logo != nil || err != nil {
				t.Errorf("no logo: %+v %v", logo, err)
			}
		case err != nil || logo == nil || logo.ContentType != tc.contentType || !bytes.Equal(logo.Image, tc.image) || len(logo.Version) != 16:
			t.Errorf("%+v: %+v %v", tc.ref, logo, err)
		}
	}
}

// Against a real API server, the token server's source follows the logo
// ConfigMap spec.branding.logoConfigMapRef names: no logo while it does
// not exist, the image once it is created, the new version once it
// changes.
func TestKubeSourceFollowsTheBrandLogo(t *testing.T) {
	cp := testenv.Get(t)
	ctx := t.Context()
	const ns = "brand-auth"
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	as := &oauthv1.AuthorizationServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "http://127.0.0.1:8080", Branding: oauthv1.Branding{
			LogoConfigMapRef: &oauthv1.ConfigMapKeyReference{Name: "corp-brand", Key: "logo.svg"},
		}},
	}
	if err := cp.Client.Create(ctx, as); err != nil {
		t.Fatal(err)
	}
	src, err := NewKube(cp.Config, cp.Scheme, ns, "auth", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runSource(ctx, t, src)
	start := time.Now()
	waitFor(t, start, 10*time.Second, "first snapshot, without the logo", func() bool {
		s := src.Current()
		return s != nil && s.BrandLogo == nil && strings.Contains(strings.Join(s.Problems, "\n"), "ConfigMap corp-brand does not exist")
	})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "corp-brand"}, Data: map[string]string{"logo.svg": "<svg xmlns=\"http://www.w3.org/2000/svg\"/>"}}
	if err := cp.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Now(), 10*time.Second, "the logo", func() bool {
		s := src.Current()
		return s.BrandLogo != nil && string(s.BrandLogo.Image) == cm.Data["logo.svg"]
	})
	first := src.Current().BrandLogo.Version
	cm.Data["logo.svg"] = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"2\"/>"
	if err := cp.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Now(), 10*time.Second, "the changed logo", func() bool {
		l := src.Current().BrandLogo
		return l != nil && l.Version != first && l.ContentType == "image/svg+xml"
	})
}
