package v1alpha1_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// projectFile is the part of kubebuilder's PROJECT (version 3) we write.
// Unmarshalled strictly, so a misspelt field fails too.
type projectFile struct {
	Version     string            `json:"version"`
	Domain      string            `json:"domain"`
	ProjectName string            `json:"projectName"`
	Repo        string            `json:"repo"`
	Resources   []projectResource `json:"resources"`
}

type projectResource struct {
	API *struct {
		CRDVersion string `json:"crdVersion"`
		Namespaced bool   `json:"namespaced"`
	} `json:"api"`
	Controller bool   `json:"controller"`
	Domain     string `json:"domain"`
	Group      string `json:"group"`
	Kind       string `json:"kind"`
	Path       string `json:"path"`
	Version    string `json:"version"`
}

// apiKind is a kind in one version as api/ defines it: registered in the
// scheme, and generated into a CRD in config/crd/bases.
type apiKind struct {
	kind, group, version string
	namespaced           bool
	inScheme             bool
	crd                  string
}

func (k apiKind) String() string { return k.kind + " " + k.group + "/" + k.version }

// The PROJECT file lists every kind of api/ in every version, each under
// the group and scope it really has, and nothing else.
func TestPROJECTListsEveryKind(t *testing.T) {
	root := filepath.Join("..", "..")
	var project projectFile
	raw, err := os.ReadFile(filepath.Join(root, "PROJECT"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, &project); err != nil {
		t.Fatalf("PROJECT: %v", err)
	}
	module := modulePath(t, root)
	if project.Version != "3" || project.Repo != module || project.Domain == "" {
		t.Fatalf("PROJECT: version %q, repo %q, domain %q; want version 3, repo %s and a domain", project.Version, project.Repo, project.Domain, module)
	}

	kinds := kindsOfAPI(t, root)
	listed := map[string]bool{}
	for _, r := range project.Resources {
		key := r.Kind + "/" + r.Version
		if listed[key] {
			t.Errorf("PROJECT lists %s %s twice", r.Kind, r.Version)
		}
		listed[key] = true
		k, ok := kinds[key]
		if !ok {
			t.Errorf("PROJECT lists %s %s, which api/ does not define", r.Kind, r.Version)
			continue
		}
		checkResource(t, project, r, k, module)
		hasController := fileExists(filepath.Join(root, "controllers", strings.ToLower(r.Kind)+"_controller.go"))
		if r.Controller != hasController {
			t.Errorf("PROJECT: %s controller %v, but controllers/%s_controller.go exists: %v", r.Kind, r.Controller, strings.ToLower(r.Kind), hasController)
		}
	}
	for key, k := range kinds {
		if !listed[key] {
			t.Errorf("api/ defines %s, which PROJECT does not list", k)
		}
	}
}

func checkResource(t *testing.T, project projectFile, r projectResource, k *apiKind, module string) {
	t.Helper()
	group := r.Group
	if r.Domain != "" {
		group += "." + r.Domain
	}
	if r.Domain != project.Domain || group != k.group {
		t.Errorf("PROJECT: %s is in group %q (group %q, domain %q), api/ has %q", r.Kind, group, r.Group, r.Domain, k.group)
	}
	if want := module + "/api/" + k.version; r.Path != want {
		t.Errorf("PROJECT: %s path %q, want %q", r.Kind, r.Path, want)
	}
	switch {
	case r.API == nil:
		t.Errorf("PROJECT: %s has no api section, but api/ defines it", r.Kind)
	case r.API.CRDVersion != "v1" || r.API.Namespaced != k.namespaced:
		t.Errorf("PROJECT: %s crdVersion %q namespaced %v; its CRD is apiextensions.k8s.io/v1, namespaced %v", r.Kind, r.API.CRDVersion, r.API.Namespaced, k.namespaced)
	}
	if !k.inScheme || k.crd == "" {
		t.Errorf("%s: registered in the scheme %v, CRD %q: every kind needs both (make manifests)", r.Kind, k.inScheme, k.crd)
	}
}

// kindsOfAPI collects the kinds, by kind/version, from both places api/
// shows them: the types registered in the scheme (addKnownTypes) and the
// CRDs controller-gen generated from the markers.
func kindsOfAPI(t *testing.T, root string) map[string]*apiKind {
	t.Helper()
	kinds := map[string]*apiKind{}
	scheme := runtime.NewScheme()
	if err := oauthv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ours := reflect.TypeOf(oauthv1.Scope{}).PkgPath()
	for kind, typ := range scheme.KnownTypes(oauthv1.GroupVersion) {
		// AddToGroupVersion registers metav1's option and event types
		// under the group too; list kinds are not resources.
		if typ.PkgPath() != ours || strings.HasSuffix(kind, "List") {
			continue
		}
		gv := oauthv1.GroupVersion
		kinds[kind+"/"+gv.Version] = &apiKind{kind: kind, group: gv.Group, version: gv.Version, inScheme: true}
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, v := range crd.Spec.Versions {
			kind := crd.Spec.Names.Kind
			k := kinds[kind+"/"+v.Name]
			if k == nil {
				k = &apiKind{kind: kind, group: crd.Spec.Group, version: v.Name}
				kinds[kind+"/"+v.Name] = k
			}
			if k.group != crd.Spec.Group {
				t.Errorf("%s: group %s, but the scheme has %s in %s", filepath.Base(f), crd.Spec.Group, kind, k.group)
			}
			k.crd, k.namespaced = filepath.Base(f), crd.Spec.Scope == apiextensionsv1.NamespaceScoped
		}
	}
	return kinds
}

func modulePath(t *testing.T, root string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "module "); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
