// Command gatehouse-image builds container images without Docker: for the
// local cluster (make cluster, make image) a docker-archive tarball that
// `ctr images import` loads into containerd, and for releases (make
// release-image) a multi-platform image index in an OCI image layout,
// optionally pushed to a registry.
//
// Every image it builds starts from the same base as distroless
// static-debian12: /etc/passwd and /etc/group with root, nobody and nonroot
// (65532), /home/nonroot, /tmp (1777), a CA bundle at
// /etc/ssl/certs/ca-certificates.crt (the host's, or with -ca-certs mozilla
// Mozilla's roots from the Go module golang.org/x/crypto/x509roots/fallback
// pinned in go.mod) and, unless -zoneinfo=false, the host's
// /usr/share/zoneinfo. Files are then added from the host:
//
//	-file SRC:DST[:MODE]   one file; {os} and {arch} in SRC are the platform's
//	-tree SRC:DST          a directory tree (symlinks kept)
//	-exe  SRC:DST          an executable and the shared libraries ldd names
//
// The same inputs give the same digest: entries are sorted, every file's
// time is the Unix epoch, and the image's creation time is
// $SOURCE_DATE_EPOCH (the epoch when unset). With -ca-certs mozilla and
// -zoneinfo=false nothing comes from the host but the -file arguments, so
// two machines building one commit with one Go release agree too.
//
// Example, the gatehouse image (the Dockerfile's equivalent):
//
//	gatehouse-image -tag localhost/gatehouse:dev -out gatehouse.tar \
//	  -file bin/gatehouse-linux:/gatehouse:0755 -user 65532:65532 -entrypoint /gatehouse
//
// and a release for two platforms, pushed:
//
//	gatehouse-image -platform linux/amd64,linux/arm64 -ca-certs mozilla -zoneinfo=false \
//	  -file bin/release/gatehouse-{os}-{arch}:/gatehouse:0755 -entrypoint /gatehouse \
//	  -oci bin/release/image -push ghcr.io/gatehouse-dev/gatehouse:v1.2.3
package main

import (
	"archive/tar"
	"bytes"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// csv is a list given comma-separated, repeated or both.
type csv []string

func (l *csv) String() string { return strings.Join(*l, ",") }
func (l *csv) Set(v string) error {
	*l = append(*l, strings.Split(v, ",")...)
	return nil
}

// epoch is the modification time of every file, so the same inputs give
// the same image digest.
var epoch = time.Unix(0, 0)

// options are the flags.
type options struct {
	tag, out, oci, ociArchive, push string
	user, entrypoint, workdir       string
	caCerts                         string
	zoneinfo                        bool
	created                         time.Time
	platforms                       []string
	files, trees, exes, envs, cmd   []string
	labels                          []string
}

func main() {
	var o options
	var platforms csv
	var files, trees, exes, envs, cmd, labels list
	flag.StringVar(&o.tag, "tag", "", "image reference of the docker-archive (-out), e.g. localhost/gatehouse:dev")
	flag.StringVar(&o.out, "out", "", "docker-archive tarball to write (one platform)")
	flag.StringVar(&o.oci, "oci", "", "OCI image layout directory to write, with an index of every platform")
	flag.StringVar(&o.ociArchive, "oci-archive", "", "OCI archive (a tar of a layout whose index.json names the index -tag) to write, for ctr images import")
	flag.StringVar(&o.push, "push", "", "registry reference to push the index to (credentials from ~/.docker/config.json)")
	flag.StringVar(&o.user, "user", "65532:65532", "USER of the image")
	flag.StringVar(&o.entrypoint, "entrypoint", "", "ENTRYPOINT (one path; arguments go in -cmd)")
	flag.StringVar(&o.workdir, "workdir", "/", "WORKDIR")
	flag.StringVar(&o.caCerts, "ca-certs", "host", "CA bundle: host (/etc/ssl/certs/ca-certificates.crt) or mozilla (pinned Go module)")
	flag.BoolVar(&o.zoneinfo, "zoneinfo", true, "add the host's /usr/share/zoneinfo")
	flag.Var(&platforms, "platform", "OS/ARCH[/VARIANT] to build for, comma-separated or repeated (default linux/amd64)")
	flag.Var(&files, "file", "SRC:DST[:MODE] a file to add; {os} and {arch} in SRC are replaced (repeatable)")
	flag.Var(&trees, "tree", "SRC:DST a directory tree to add (repeatable)")
	flag.Var(&exes, "exe", "SRC:DST an executable and the shared libraries it links (repeatable)")
	flag.Var(&envs, "env", "KEY=VALUE (repeatable)")
	flag.Var(&cmd, "cmd", "a CMD argument (repeatable)")
	flag.Var(&labels, "label", "KEY=VALUE an image label, e.g. org.opencontainers.image.revision=... (repeatable)")
	flag.Parse()
	o.platforms, o.files, o.trees, o.exes, o.envs, o.cmd, o.labels = platforms, files, trees, exes, envs, cmd, labels
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-image:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-image:", err)
		os.Exit(1)
	}
}

func (o *options) check() error {
	if len(o.platforms) == 0 {
		o.platforms = []string{"linux/amd64"}
	}
	switch {
	case o.out == "" && o.oci == "" && o.ociArchive == "" && o.push == "":
		return errors.New("nothing to write: give -out, -oci, -oci-archive or -push")
	case (o.out != "" || o.ociArchive != "") && o.tag == "":
		return errors.New("-out and -oci-archive need -tag")
	case o.out != "" && len(o.platforms) > 1:
		return errors.New("-out holds one platform; use -oci or -push for several")
	case o.caCerts != "host" && o.caCerts != "mozilla":
		return fmt.Errorf("-ca-certs %q: want host or mozilla", o.caCerts)
	}
	for _, l := range o.labels {
		if k, _, ok := strings.Cut(l, "="); !ok || k == "" {
			return fmt.Errorf("-label %q: want KEY=VALUE", l)
		}
	}
	o.created = epoch
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %v", s, err)
		}
		o.created = time.Unix(sec, 0).UTC()
	}
	return nil
}

// platformImage is the image of one platform.
type platformImage struct {
	platform v1.Platform
	image    v1.Image
}

func run(o options) error {
	var images []platformImage
	for _, ps := range o.platforms {
		p, err := v1.ParsePlatform(ps)
		if err != nil {
			return fmt.Errorf("-platform %q: %w", ps, err)
		}
		img, size, err := o.build(*p)
		if err != nil {
			return fmt.Errorf("%s: %w", ps, err)
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "gatehouse-image: %s image %s (%d KiB layer)\n", ps, d, size/1024)
		images = append(images, platformImage{platform: *p, image: img})
	}
	if o.out != "" {
		ref, err := name.NewTag(o.tag)
		if err != nil {
			return err
		}
		d, err := writeImage(images[0].image, ref, o.out)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "gatehouse-image: %s (%s) -> %s\n", o.tag, d, o.out)
	}
	if o.oci == "" && o.ociArchive == "" && o.push == "" {
		return nil
	}
	idx := indexOf(images)
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	if o.oci != "" {
		if err := writeLayout(idx, o.oci); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "gatehouse-image: index %s (%s) -> %s\n", d, strings.Join(o.platforms, ", "), o.oci)
	}
	if o.ociArchive != "" {
		if err := writeArchive(idx, o.tag, o.ociArchive); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "gatehouse-image: %s (index %s) -> %s\n", o.tag, d, o.ociArchive)
	}
	if o.push != "" {
		ref, err := name.ParseReference(o.push)
		if err != nil {
			return err
		}
		if err := remote.WriteIndex(ref, idx, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
		fmt.Fprintf(os.Stderr, "gatehouse-image: pushed %s\n", ref)
	}
	// The digest on stdout, for scripts (signing, provenance).
	fmt.Println(d)
	return nil
}

// build makes the image of one platform.
func (o options) build(p v1.Platform) (v1.Image, int, error) {
	l := newLayer()
	files := make([]string, len(o.files))
	for i, f := range o.files {
		files[i] = strings.NewReplacer("{os}", p.OS, "{arch}", p.Architecture).Replace(f)
	}
	if err := l.fill(o.caCerts, o.zoneinfo, files, o.trees, o.exes); err != nil {
		return nil, 0, err
	}
	data, err := l.bytes()
	if err != nil {
		return nil, 0, err
	}
	img, err := o.imageOf(data, p)
	return img, len(data), err
}

// indexOf is the OCI image index of the platforms' images.
func indexOf(images []platformImage) v1.ImageIndex {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, pi := range images {
		p := pi.platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: pi.image, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx
}

// writeLayout writes idx as a fresh OCI image layout at dir: its
// index.json is the index itself, so sha256(index.json) is the digest a
// registry gives the pushed index.
func writeLayout(idx v1.ImageIndex, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	_, err := layout.Write(dir, idx)
	return err
}

// writeArchive writes idx as an OCI archive: a tar of an image layout
// whose index.json points at idx under the name tag, the form `ctr images
// import` names images from.
func writeArchive(idx v1.ImageIndex, tag, out string) error {
	dir, err := os.MkdirTemp("", "gatehouse-image-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }() // a temporary copy; tarDir has read it
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag,
		"io.containerd.image.name":          tag,
	})); err != nil {
		return err
	}
	return tarDir(dir, out)
}

// tarDir writes the files under dir to a tar at out, sorted, with fixed
// times and owners.
func tarDir(dir, out string) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // closed and checked below; this is for the early returns
	tw := tar.NewWriter(f)
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, n)
		h := &tar.Header{Typeflag: tar.TypeReg, Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}

// fill adds the base directories and every -file, -tree and -exe argument.
func (l *layer) fill(caCerts string, zoneinfo bool, files, trees, exes []string) error {
	if err := l.base(caCerts, zoneinfo); err != nil {
		return err
	}
	for _, f := range files {
		src, dst, mode, err := parseFileArg(f)
		if err != nil {
			return err
		}
		if err := l.addFile(src, dst, mode); err != nil {
			return err
		}
	}
	for _, t := range trees {
		src, dst, ok := strings.Cut(t, ":")
		if !ok {
			return fmt.Errorf("-tree %q: want SRC:DST", t)
		}
		if err := l.addTree(src, dst); err != nil {
			return err
		}
	}
	for _, e := range exes {
		src, dst, ok := strings.Cut(e, ":")
		if !ok {
			return fmt.Errorf("-exe %q: want SRC:DST", e)
		}
		if err := l.addExe(src, dst); err != nil {
			return err
		}
	}
	return nil
}

// parseFileArg splits SRC:DST[:MODE]; mode -1 keeps the source file's mode.
func parseFileArg(f string) (src, dst string, mode int64, err error) {
	parts := strings.Split(f, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return "", "", 0, fmt.Errorf("-file %q: want SRC:DST[:MODE]", f)
	}
	mode = -1
	if len(parts) == 3 {
		if mode, err = strconv.ParseInt(parts[2], 8, 32); err != nil {
			return "", "", 0, fmt.Errorf("-file %q: mode: %v", f, err)
		}
	}
	return parts[0], parts[1], mode, nil
}

// imageOf makes a one-layer image for platform p with a reproducible
// config (fixed creation time), so the same inputs give the same digest.
func (o options) imageOf(data []byte, p v1.Platform) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: o.created}
	cf.Config.User = o.user
	cf.Config.WorkingDir = o.workdir
	cf.Config.Env = append([]string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
	}, o.envs...)
	if o.entrypoint != "" {
		cf.Config.Entrypoint = []string{o.entrypoint}
	}
	if len(o.cmd) > 0 {
		cf.Config.Cmd = o.cmd
	}
	if len(o.labels) > 0 {
		cf.Config.Labels = map[string]string{}
		for _, l := range o.labels {
			k, v, _ := strings.Cut(l, "=")
			cf.Config.Labels[k] = v
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	// OCI media types, as registries and signing tools expect of an
	// index's images.
	return mutate.MediaType(mutate.ConfigMediaType(img, types.OCIConfigJSON), types.OCIManifestSchema1), nil
}

// writeImage writes the tarball atomically (a reader never sees half an
// image) and its digest beside it.
func writeImage(img v1.Image, ref name.Tag, out string) (v1.Hash, error) {
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return v1.Hash{}, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return v1.Hash{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	return d, os.WriteFile(strings.TrimSuffix(out, ".tar")+".digest", []byte(d.String()+"\n"), 0o644)
}

// layer collects entries by path, so a later addition replaces an earlier
// one, and writes them sorted with their parent directories.
type layer struct {
	entries map[string]entry
}

type entry struct {
	hdr  tar.Header
	data []byte
}

func newLayer() *layer { return &layer{entries: map[string]entry{}} }

func (l *layer) dir(p string, mode int64, uid int) {
	p = clean(p)
	if p == "" {
		return
	}
	if _, ok := l.entries[p]; ok {
		return
	}
	l.dir(path.Dir(p), 0o755, 0)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: epoch}}
}

func (l *layer) put(p string, data []byte, mode int64) {
	p = clean(p)
	l.dir(path.Dir(p), 0o755, 0)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(data)), ModTime: epoch}, data: data}
}

func (l *layer) symlink(p, target string) {
	p = clean(p)
	l.dir(path.Dir(p), 0o755, 0)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: p, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// base writes what distroless static-debian12 has.
func (l *layer) base(caCerts string, zoneinfo bool) error {
	l.put("/etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\n"+
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"+
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), 0o644)
	l.put("/etc/group", []byte("root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"), 0o644)
	l.put("/etc/nsswitch.conf", []byte("passwd: files\ngroup: files\nhosts: files dns\n"), 0o644)
	l.dir("/root", 0o700, 0)
	l.dir("/home/nonroot", 0o700, 65532)
	l.dir("/tmp", 0o1777, 0)
	l.dir("/var/run", 0o755, 0)
	const caBundle = "/etc/ssl/certs/ca-certificates.crt"
	if caCerts == "mozilla" {
		l.put(caBundle, mozillaRoots(), 0o644)
	} else if err := l.addFile(caBundle, caBundle, 0o644); err != nil {
		return fmt.Errorf("CA certificates (install Debian's ca-certificates, or use -ca-certs mozilla): %w", err)
	}
	if _, err := os.Stat("/usr/share/zoneinfo"); err == nil && zoneinfo {
		if err := l.addTree("/usr/share/zoneinfo", "/usr/share/zoneinfo"); err != nil {
			return err
		}
	}
	return nil
}

// mozillaRoots is a PEM bundle of the roots of Mozilla's NSS trust store
// that carry no constraint beyond what X.509 says (a PEM file cannot
// express the others), in the pinned module's order.
func mozillaRoots() []byte {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint == nil {
			_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
		}
	}
	return b.Bytes()
}

func (l *layer) addFile(src, dst string, mode int64) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if mode < 0 {
		fi, err := os.Stat(src)
		if err != nil {
			return err
		}
		mode = int64(fi.Mode().Perm())
	}
	l.put(dst, data, mode)
	return nil
}

func (l *layer) addTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := path.Join(dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			l.dir(target, int64(info.Mode().Perm()), 0)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			l.symlink(target, link)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			l.put(target, data, int64(info.Mode().Perm()))
		}
		return nil
	})
}

var lddLine = regexp.MustCompile(`(?m)^\s*(?:\S+ => )?(/\S+) \(0x`)

// addExe adds an executable and, at their own paths, the shared libraries
// ldd resolves for it (symlinks followed, so the soname resolves).
func (l *layer) addExe(src, dst string) error {
	if err := l.addFile(src, dst, -1); err != nil {
		return err
	}
	out, err := exec.Command("ldd", src).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil
		}
		return fmt.Errorf("ldd %s: %v\n%s", src, err, out)
	}
	for _, m := range lddLine.FindAllStringSubmatch(string(out), -1) {
		lib := m[1]
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			return err
		}
		if err := l.addFile(real, lib, -1); err != nil {
			return err
		}
	}
	return nil
}

func (l *layer) bytes() ([]byte, error) {
	names := make([]string, 0, len(l.entries))
	for n := range l.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := l.entries[n]
		h := e.hdr
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
