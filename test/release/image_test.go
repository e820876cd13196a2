//go:build release

package release_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/devenv"
)

// ociLayout reads an OCI image layout directory.
type ociLayout struct {
	t   *testing.T
	dir string
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	Platform  *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform,omitempty"`
}

func (l ociLayout) blob(digest string, v any) []byte {
	l.t.Helper()
	algo, hexd, _ := strings.Cut(digest, ":")
	data, err := os.ReadFile(filepath.Join(l.dir, "blobs", algo, hexd))
	if err != nil {
		l.t.Fatal(err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hexd {
		l.t.Fatalf("blob %s does not hash to its digest", digest)
	}
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			l.t.Fatalf("blob %s: %v", digest, err)
		}
	}
	return data
}

// TestReleaseImage builds the release image twice for linux/amd64 and
// linux/arm64 (make release-image), the second time pushing it to a local
// registry, and checks: the two builds have one digest, that digest is the
// index's and the registry's, and each platform's image holds a static
// binary of its own architecture, the CA roots, and nothing from the build
// machine.
func TestReleaseImage(t *testing.T) {
	root := repoRoot(t)
	script(t, nil, "hack/cluster/build.sh", "gatehouse-image")
	dir := t.TempDir()
	// go-containerregistry's in-memory registry, from the image builder's
	// module (hack/image pins its version).
	build := exec.Command("go", "build", "-C", filepath.Join(root, "hack", "image"), "-o", filepath.Join(dir, "registry"),
		"github.com/google/go-containerregistry/cmd/registry")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the registry: %v\n%s", err, out)
	}
	registry := startRegistry(t, filepath.Join(dir, "registry"))

	env := []string{"VERSION=v0.0.0-releasetest", "PLATFORMS=linux/amd64,linux/arm64"}
	script(t, append(env, "OUT="+filepath.Join(dir, "a")), "hack/release/image.sh")
	pushed := script(t, append(env, "OUT="+filepath.Join(dir, "b"), "PUSH=1", "IMAGE="+registry+"/gatehouse-dev/gatehouse"), "hack/release/image.sh")

	digests := map[string]string{}
	for _, b := range []string{"a", "b"} {
		d, err := os.ReadFile(filepath.Join(dir, b, "image.digest"))
		if err != nil {
			t.Fatal(err)
		}
		digests[b] = strings.TrimSpace(string(d))
	}
	if digests["a"] != digests["b"] || !strings.HasPrefix(digests["a"], "sha256:") {
		t.Fatalf("two builds of one commit: %s and %s", digests["a"], digests["b"])
	}
	digest := digests["a"]
	t.Logf("both builds: %s", digest)
	if want := registry + "/gatehouse-dev/gatehouse@" + digest; pushed != want {
		t.Errorf("the push printed %q, want %q", pushed, want)
	}

	l := ociLayout{t: t, dir: filepath.Join(dir, "a", "image")}
	indexJSON, err := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(indexJSON); "sha256:"+hex.EncodeToString(sum[:]) != digest {
		t.Fatalf("index.json hashes to %x, not the digest %s", sum, digest)
	}
	var index struct {
		MediaType string       `json:"mediaType"`
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(indexJSON, &index); err != nil {
		t.Fatal(err)
	}
	if index.MediaType != "application/vnd.oci.image.index.v1+json" || len(index.Manifests) != 2 {
		t.Fatalf("index: %s with %d manifests", index.MediaType, len(index.Manifests))
	}
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, m := range index.Manifests {
		if m.Platform == nil || m.Platform.OS != "linux" || machines[m.Platform.Architecture] == 0 {
			t.Fatalf("manifest %s has platform %+v", m.Digest, m.Platform)
		}
		checkPlatformImage(t, l, m, machines[m.Platform.Architecture])
		checkPushed(t, registry, m.Digest)
	}
	checkPushed(t, registry, "v0.0.0-releasetest")
}

// checkPlatformImage checks one platform's manifest, config and layer.
func checkPlatformImage(t *testing.T, l ociLayout, m descriptor, machine elf.Machine) {
	t.Helper()
	var manifest struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	l.blob(m.Digest, &manifest)
	var config struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Created      string `json:"created"`
		Config       struct {
			User       string            `json:"User"`
			Entrypoint []string          `json:"Entrypoint"`
			Labels     map[string]string `json:"Labels"`
		} `json:"config"`
	}
	l.blob(manifest.Config.Digest, &config)
	if config.Architecture != m.Platform.Architecture || config.OS != "linux" {
		t.Errorf("%s: config says %s/%s", m.Platform.Architecture, config.OS, config.Architecture)
	}
	if config.Config.User != "65532:65532" || !slices.Equal(config.Config.Entrypoint, []string{"/gatehouse"}) {
		t.Errorf("%s: user %q, entrypoint %v", m.Platform.Architecture, config.Config.User, config.Config.Entrypoint)
	}
	if config.Config.Labels["org.opencontainers.image.version"] != "v0.0.0-releasetest" || config.Config.Labels["org.opencontainers.image.revision"] == "" {
		t.Errorf("%s: labels %v", m.Platform.Architecture, config.Config.Labels)
	}
	if len(manifest.Layers) != 1 {
		t.Fatalf("%s: %d layers", m.Platform.Architecture, len(manifest.Layers))
	}
	files := layerFiles(t, l.blob(manifest.Layers[0].Digest, nil))
	bin, ok := files["gatehouse"]
	if !ok {
		t.Fatalf("%s: no /gatehouse in the layer", m.Platform.Architecture)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("%s: /gatehouse is not ELF: %v", m.Platform.Architecture, err)
	}
	if f.Machine != machine {
		t.Errorf("%s: /gatehouse is built for %v", m.Platform.Architecture, f.Machine)
	}
	if interp := f.Section(".interp"); interp != nil {
		t.Errorf("%s: /gatehouse is dynamically linked", m.Platform.Architecture)
	}
	roots := 0
	for rest := files["etc/ssl/certs/ca-certificates.crt"]; ; roots++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
	}
	if roots < 100 {
		t.Errorf("%s: the CA bundle holds %d certificates", m.Platform.Architecture, roots)
	}
	for name := range files {
		if strings.HasPrefix(name, "usr/share/zoneinfo") {
			t.Errorf("%s: the image holds the build machine's %s", m.Platform.Architecture, name)
			break
		}
	}
}

// layerFiles reads a gzipped tar layer: regular files by path.
func layerFiles(t *testing.T, layer []byte) map[string][]byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s is dated %v, not the epoch", h.Name, h.ModTime)
		}
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = data
		}
	}
}

// checkPushed reads a manifest back from the registry by tag or digest:
// the registry must answer with the digest the build computed.
func checkPushed(t *testing.T, registry, ref string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+registry+"/v2/gatehouse-dev/gatehouse/manifests/"+ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("registry: manifest %s: %s", ref, resp.Status)
	}
	sum := sha256.Sum256(body)
	got := "sha256:" + hex.EncodeToString(sum[:])
	if d := resp.Header.Get("Docker-Content-Digest"); d != got {
		t.Errorf("registry: manifest %s says digest %s, hashes to %s", ref, d, got)
	}
	if strings.HasPrefix(ref, "sha256:") && got != ref {
		t.Errorf("registry: manifest %s hashes to %s", ref, got)
	}
	t.Logf("registry serves %s as %s", ref, got)
}

// startRegistry runs go-containerregistry's in-memory registry on
// 127.0.0.1 and returns its host:port.
func startRegistry(t *testing.T, bin string) string {
	t.Helper()
	ports, err := devenv.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-port", fmt.Sprint(ports[0]))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
