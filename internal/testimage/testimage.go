// Package testimage builds small container images for tests from the
// host's statically linked busybox, and serves them from an in-process
// registry on 127.0.0.1, so that no test downloads anything. Only tests
// import it.
package testimage

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
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

// File is one entry of a layer: a regular file, or with Link a symlink.
type File struct {
	Name, Body, Link string
	Mode             int64
}

// Layer makes an uncompressed tar layer of files.
func Layer(t testing.TB, files []File) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(1700000000, 0)
	for _, f := range files {
		h := &tar.Header{Name: f.Name, Mode: f.Mode, ModTime: now, Typeflag: tar.TypeReg, Size: int64(len(f.Body))}
		switch {
		case f.Link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f.Link, 0
		case strings.HasSuffix(f.Name, "/"):
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return layer
}

// BusyboxLayer is a layer with busybox, a symlink for each of its
// applets, and a minimal /etc.
func BusyboxLayer(t testing.TB) v1.Layer {
	t.Helper()
	bb := Busybox(t)
	body, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bb, "--list-full").Output()
	if err != nil {
		t.Fatalf("busybox --list-full: %v", err)
	}
	files := []File{{Name: "bin/"}, {Name: "sbin/"}, {Name: "usr/"}, {Name: "usr/bin/"}, {Name: "usr/sbin/"},
		{Name: "etc/"}, {Name: "tmp/", Mode: 0o1777}, {Name: "root/", Mode: 0o700}, {Name: "proc/"}, {Name: "sys/"}, {Name: "dev/"},
		{Name: "bin/busybox", Body: string(body), Mode: 0o755},
		{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"},
		{Name: "etc/group", Body: "root:x:0:\nnogroup:x:65534:\n"},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "bin/busybox" {
			files = append(files, File{Name: applet, Link: "/bin/busybox"})
		}
	}
	return Layer(t, files)
}

// Image stacks layers into an image with a config.
func Image(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
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
	cf.OS, cf.Architecture = "linux", "amd64"
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
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Push uploads img to host as repo:tag and returns the full reference.
func Push(t testing.TB, host, repoTag string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref.String()
}
