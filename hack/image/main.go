// Command gatehouse-image builds container images without Docker, for the
// local cluster (make cluster, make image): a docker-archive tarball that
// `ctr images import` loads into containerd.
//
// Every image it builds starts from the same base as distroless
// static-debian12: /etc/passwd and /etc/group with root, nobody and nonroot
// (65532), /home/nonroot, /tmp (1777), the host's CA bundle at
// /etc/ssl/certs/ca-certificates.crt and its /usr/share/zoneinfo. Files are
// then added from the host:
//
//	-file SRC:DST[:MODE]   one file
//	-tree SRC:DST          a directory tree (symlinks kept)
//	-exe  SRC:DST          an executable and the shared libraries ldd names
//
// Example, the gatehouse image (the Dockerfile's equivalent):
//
//	gatehouse-image -tag localhost/gatehouse:dev -out gatehouse.tar \
//	  -file bin/gatehouse-linux:/gatehouse:0755 -user 65532:65532 -entrypoint /gatehouse
package main

import (
	"archive/tar"
	"bytes"
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

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// epoch is the modification time of every file, so the same inputs give
// the same image digest.
var epoch = time.Unix(0, 0)

func main() {
	var files, trees, exes, envs, cmd list
	tag := flag.String("tag", "", "image reference, e.g. localhost/gatehouse:dev")
	out := flag.String("out", "", "docker-archive tarball to write")
	user := flag.String("user", "65532:65532", "USER of the image")
	entrypoint := flag.String("entrypoint", "", "ENTRYPOINT (one path; arguments go in -cmd)")
	workdir := flag.String("workdir", "/", "WORKDIR")
	flag.Var(&files, "file", "SRC:DST[:MODE] a file to add (repeatable)")
	flag.Var(&trees, "tree", "SRC:DST a directory tree to add (repeatable)")
	flag.Var(&exes, "exe", "SRC:DST an executable and the shared libraries it links (repeatable)")
	flag.Var(&envs, "env", "KEY=VALUE (repeatable)")
	flag.Var(&cmd, "cmd", "a CMD argument (repeatable)")
	flag.Parse()
	if *tag == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "gatehouse-image: -tag and -out are required")
		os.Exit(2)
	}
	if err := run(*tag, *out, *user, *entrypoint, *workdir, files, trees, exes, envs, cmd); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-image:", err)
		os.Exit(1)
	}
}

func run(tag, out, user, entrypoint, workdir string, files, trees, exes, envs, cmd []string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	l := newLayer()
	if err := l.fill(files, trees, exes); err != nil {
		return err
	}
	data, err := l.bytes()
	if err != nil {
		return err
	}
	img, err := imageOf(data, user, entrypoint, workdir, envs, cmd)
	if err != nil {
		return err
	}
	d, err := writeImage(img, ref, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gatehouse-image: %s (%s, %d KiB layer) -> %s\n", tag, d, len(data)/1024, out)
	return nil
}

// fill adds the base directories and every -file, -tree and -exe argument.
func (l *layer) fill(files, trees, exes []string) error {
	if err := l.base(); err != nil {
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

// imageOf makes a one-layer image with a reproducible config (fixed creation
// time), so the same inputs give the same digest.
func imageOf(data []byte, user, entrypoint, workdir string, envs, cmd []string) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
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
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: epoch}
	cf.Config.User = user
	cf.Config.WorkingDir = workdir
	cf.Config.Env = append([]string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
	}, envs...)
	if entrypoint != "" {
		cf.Config.Entrypoint = []string{entrypoint}
	}
	if len(cmd) > 0 {
		cf.Config.Cmd = cmd
	}
	return mutate.ConfigFile(img, cf)
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
func (l *layer) base() error {
	l.put("/etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\n"+
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"+
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), 0o644)
	l.put("/etc/group", []byte("root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"), 0o644)
	l.put("/etc/nsswitch.conf", []byte("passwd: files\ngroup: files\nhosts: files dns\n"), 0o644)
	l.dir("/root", 0o700, 0)
	l.dir("/home/nonroot", 0o700, 65532)
	l.dir("/tmp", 0o1777, 0)
	l.dir("/var/run", 0o755, 0)
	const bundle = "/etc/ssl/certs/ca-certificates.crt"
	if err := l.addFile(bundle, bundle, 0o644); err != nil {
		return fmt.Errorf("CA certificates (install Debian's ca-certificates): %w", err)
	}
	if _, err := os.Stat("/usr/share/zoneinfo"); err == nil {
		if err := l.addTree("/usr/share/zoneinfo", "/usr/share/zoneinfo"); err != nil {
			return err
		}
	}
	return nil
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
