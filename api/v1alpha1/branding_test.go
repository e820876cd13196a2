package v1alpha1_test

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// spec.branding is checked at apply time: colours only as #rrggbb (they
// reach the pages' stylesheet), the logo only as an https URL the CSP can
// name exactly, a language the server has, and English by default.
func TestBrandingValidation(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()
	for i, tc := range []struct {
		name, patch, want string // want "" accepts
	}{
		{"full", `spec: {branding: {displayName: "Example Corp", logoURL: "https://cdn.example.com/logo.svg", primaryColor: "#0B5FFF", accentColor: "#ffb000", defaultLanguage: de}}`, ""},
		{"colour without #", `spec: {branding: {primaryColor: "0b5fff"}}`, "must be a colour as #rrggbb"},
		{"short colour", `spec: {branding: {accentColor: "#fff"}}`, "must be a colour as #rrggbb"},
		{"colour breaking out of the stylesheet", `spec: {branding: {primaryColor: "red;}"}}`, "must be a colour as #rrggbb"},
		{"colour name", `spec: {branding: {primaryColor: "red"}}`, "must be a colour as #rrggbb"},
		{"http logo", `spec: {branding: {logoURL: "http://cdn.example.com/logo.svg"}}`, "must be an absolute https URL"},
		{"logo breaking out of the CSP", `spec: {branding: {logoURL: "https://cdn.example.com/a.svg; script-src *"}}`, "must not contain whitespace, quotes"},
		{"unknown language", `spec: {branding: {defaultLanguage: xx}}`, `Unsupported value: "xx"`},
		{"logo from a ConfigMap", `spec: {branding: {logoConfigMapRef: {name: corp-brand, key: logo.svg}}}`, ""},
		{"logo twice", `spec: {branding: {logoURL: "https://cdn.example.com/logo.svg", logoConfigMapRef: {name: corp-brand, key: logo.svg}}}`, "logoURL and logoConfigMapRef are exclusive"},
		{"logo of no image type", `spec: {branding: {logoConfigMapRef: {name: corp-brand, key: logo.txt}}}`, "key must end in .svg, .png, .jpg, .jpeg or .webp"},
		{"name with a newline", `spec: {branding: {displayName: "a\nb"}}`, "must not contain control characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, validServer, tc.patch)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("branding-%d", i))
			createAsValidated(ctx, t, cp, obj, tc.want)
		})
	}
	// Without spec.branding the pages speak English.
	obj := object(t, validServer, `spec: {}`)
	obj.SetNamespace(ns)
	obj.SetName("branding-default")
	if err := cp.Client.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	if lang, _, _ := unstructured.NestedString(obj.Object, "spec", "branding", "defaultLanguage"); lang != "en" {
		t.Errorf("spec.branding.defaultLanguage defaults to %q, want en", lang)
	}
}
