// Package testimage builds small container images for tests from the
// host's statically linked busybox, and serves them from an in-process
// registry on 127.0.0.1, so that no test downloads anything. Only tests
// import it.
package testimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Busybox finds the host's static busybox, or fails the test saying how
// to install it.
func Busybox(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("BUSYBOX"), "/bin/busybox", "/usr/bin/busybox"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("busybox not found: apt-get install busybox-static (or set BUSYBOX)")
	return ""
}

// File is one entry of a layer. Without Type it is a symlink when Link
// is set, a directory when Name ends in "/", and a regular file
// otherwise; with Type it is what Type says, Link being a hardlink's or
// symlink's target and Major and Minor a device's numbers. A Mode of 0
// is 0644, or 0755 for a directory.
type File struct {
	Name, Body, Link string
	Mode             int64
	Type             byte
	Uid, Gid         int
	Major, Minor     int64
}

// ModTime is the modification time of every entry Tar writes, and the
// creation time of every image Image makes.
var ModTime = time.Unix(1700000000, 0).UTC()

// Tar is an uncompressed tar of files, in PAX format.
func Tar(t testing.TB, files []File) []byte {
	t.Helper()
	data, err := writeTar(files)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeTar(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.Name, Typeflag: f.Type, Linkname: f.Link, Mode: f.Mode,
			Uid: f.Uid, Gid: f.Gid, Devmajor: f.Major, Devminor: f.Minor, ModTime: ModTime, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			switch {
			case f.Link != "":
				h.Typeflag = tar.TypeSymlink
			case strings.HasSuffix(f.Name, "/"):
				h.Typeflag = tar.TypeDir
			default:
				h.Typeflag = tar.TypeReg
			}
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, f.Body); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Layer makes a layer of files (see Tar).
func Layer(t testing.TB, files []File) v1.Layer {
	t.Helper()
	layer, err := layer(files)
	if err != nil {
		t.Fatal(err)
	}
	return layer
}

func layer(files []File) (v1.Layer, error) {
	data, err := writeTar(files)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

// Passwd and Group are the busybox layer's /etc/passwd and /etc/group.
const (
	Passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
	Group  = "root:x:0:\nnogroup:x:65534:\n"
)

// busybox is the busybox layer, built once: digesting it compresses
// megabytes.
var busybox struct {
	once  sync.Once
	layer v1.Layer
	err   error
}

// BusyboxLayer is a layer with busybox, a symlink to /bin/busybox for
// each of its applets, and a minimal /etc (Passwd and Group).
func BusyboxLayer(t testing.TB) v1.Layer {
	t.Helper()
	bb := Busybox(t)
	busybox.once.Do(func() { busybox.layer, busybox.err = busyboxLayer(bb) })
	if busybox.err != nil {
		t.Fatal(busybox.err)
	}
	return busybox.layer
}

func busyboxLayer(bb string) (v1.Layer, error) {
	body, err := os.ReadFile(bb)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(bb, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list-full: %w", err)
	}
	files := []File{{Name: "bin/"}, {Name: "sbin/"}, {Name: "usr/"}, {Name: "usr/bin/"}, {Name: "usr/sbin/"},
		{Name: "etc/"}, {Name: "tmp/", Mode: 0o1777}, {Name: "root/", Mode: 0o700}, {Name: "proc/"}, {Name: "sys/"}, {Name: "dev/"},
		{Name: "bin/busybox", Body: string(body), Mode: 0o755},
		{Name: "etc/passwd", Body: Passwd},
		{Name: "etc/group", Body: Group},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "bin/busybox" {
			files = append(files, File{Name: applet, Link: "/bin/busybox"})
		}
	}
	return layer(files)
}

// Image stacks layers (bottom first) into a linux/amd64 image with cfg.
func Image(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	return PlatformImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, cfg, layers...)
}

// PlatformImage is Image for platform p.
func PlatformImage(t testing.TB, p v1.Platform, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: ModTime}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// BusyboxImage is busybox with Cmd sh and a PATH.
func BusyboxImage(t testing.TB) v1.Image {
	t.Helper()
	return Image(t, v1.Config{Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}, BusyboxLayer(t))
}

// Registry serves a registry on 127.0.0.1 until the test ends, and
// returns its host:port.
func Registry(t testing.TB) string {
	t.Helper()
	return RegistryWith(t, nil)
}

// RegistryWith is Registry calling before, if not nil, on each request
// ahead of the registry.
func RegistryWith(t testing.TB, before func(*http.Request)) string {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if before != nil {
			before(r)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Push uploads img to host as repo:tag and returns the full reference.
func Push(t testing.TB, host, repoTag string, img v1.Image) string {
	t.Helper()
	ref := parseRef(t, host, repoTag)
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref.String()
}

// PushIndex is Push for an image index.
func PushIndex(t testing.TB, host, repoTag string, idx v1.ImageIndex) string {
	t.Helper()
	ref := parseRef(t, host, repoTag)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref.String()
}

func parseRef(t testing.TB, host, repoTag string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
