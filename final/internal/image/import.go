package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// OCI layout annotations that name an image. containerd (and docker save
// since 25.0) put the full reference in the first; the OCI spec's own
// key often holds only a tag.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// imported is one image found in an archive, before it is stored.
type imported struct {
	img   v1.Image
	names []string // normalized references
}

// Import loads the images in path: a `docker save` tarball (optionally
// gzip-compressed), or an OCI image layout, as a directory or a tar of
// one. Names come from the archive (RepoTags; the OCI ref.name
// annotations); tag, if not empty, names the image too and needs the
// archive to hold exactly one. A multi-platform index in a layout yields
// the host's platform, as Pull would.
func (s *Store) Import(ctx context.Context, path string, tag string) ([]*Image, error) {
	imgs, err := s.importPath(ctx, path, tag)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return imgs, nil
}

// importPath does the work of Import.
func (s *Store) importPath(ctx context.Context, path string, tag string) ([]*Image, error) {
	var extra []string
	if tag != "" {
		r, err := ParseReference(tag)
		if err != nil {
			return nil, err
		}
		if r.Digest != "" {
			return nil, fmt.Errorf("tag %s: a tag cannot be a digest: %w",
				tag, ErrInvalidReference)
		}
		extra = []string{r.String()}
	}
	unlock, err := s.lock(layersLock, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()

	var found []imported
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, err
	case fi.IsDir():
		found, err = readLayout(path)
	default:
		var cleanup func()
		found, cleanup, err = s.readArchive(path)
		defer cleanup()
	}
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no images in archive: %w", ErrNotFound)
	}
	if extra != nil && len(found) != 1 {
		return nil, fmt.Errorf("the archive holds %d images; a tag needs "+
			"exactly one", len(found))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	prog := newProgress(nil)
	var out []*Image
	for _, f := range found {
		if err := s.addLayers(ctx, cancel, f.img, openUncompressed, prog); err != nil {
			return nil, err
		}
		raw, err := f.img.RawConfigFile()
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		img, err := s.addImage(raw, "", append(f.names, extra...))
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// readArchive reads a tar file: docker save format if it has a
// manifest.json (docker 25+ writes both formats into one tar; its
// manifest.json carries the names), else an OCI layout. The images read
// from their source lazily; cleanup, always set, removes what reading
// them needs once they are stored.
func (s *Store) readArchive(path string) (found []imported, cleanup func(), err error) {
	cleanup = func() {}
	opener := archiveOpener(path)
	has, err := tarHas(opener, "manifest.json", "oci-layout")
	if err != nil {
		return nil, cleanup, err
	}
	switch {
	case has["manifest.json"]:
		found, err = readDockerArchive(opener)
		return found, cleanup, err
	case has["oci-layout"]:
		// go-containerregistry reads layouts from directories, so
		// unpack it first. Blobs are data, but the tar is untrusted all
		// the same: the same careful unpacker, minus whiteouts.
		dir, err := os.MkdirTemp(s.path("tmp"), "import-*")
		if err != nil {
			return nil, cleanup, err
		}
		cleanup = func() { removeAll(dir) }
		rc, err := opener()
		if err != nil {
			return nil, cleanup, err
		}
		defer rc.Close()
		if _, err := unpack(rc, dir, unpackOptions{}); err != nil {
			return nil, cleanup, fmt.Errorf("unpack OCI layout: %w", err)
		}
		found, err = readLayout(dir)
		return found, cleanup, err
	default:
		return nil, cleanup, errors.New("neither a docker save archive " +
			"(manifest.json) nor an OCI image layout (oci-layout)")
	}
}

// archiveOpener opens path as an uncompressed tar stream, gunzipping it
// if it starts with the gzip magic (docker save | gzip > x.tar.gz).
func archiveOpener(path string) tarball.Opener {
	return func() (io.ReadCloser, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		br := bufio.NewReader(f)
		magic, _ := br.Peek(2)
		if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
			zr, err := gzip.NewReader(br)
			if err != nil {
				f.Close()
				return nil, err
			}
			return struct {
				io.Reader
				io.Closer
			}{zr, f}, nil
		}
		return struct {
			io.Reader
			io.Closer
		}{br, f}, nil
	}
}

// tarHas reports which of the given top-level names the tar holds.
func tarHas(opener tarball.Opener, names ...string) (map[string]bool, error) {
	rc, err := opener()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	has := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return has, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		for _, n := range names {
			if strings.TrimPrefix(hdr.Name, "./") == n {
				has[n] = true
			}
		}
	}
}

// readDockerArchive reads the images of a docker save tarball.
func readDockerArchive(opener tarball.Opener) ([]imported, error) {
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("docker save manifest: %w", err)
	}
	var found []imported
	for i, d := range m {
		var names []string
		for _, t := range d.RepoTags {
			r, err := ParseReference(t)
			if err != nil {
				return nil, fmt.Errorf("RepoTags: %w", err)
			}
			names = append(names, r.String())
		}
		// tarball.Image finds an image in a multi-image archive by tag;
		// untagged images can only be found when alone.
		var tag *name.Tag
		if len(d.RepoTags) > 0 {
			t, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("RepoTags: %w", err)
			}
			tag = &t
		} else if len(m) > 1 {
			return nil, fmt.Errorf("image %d of %d (%s) has no tag; only "+
				"tagged images can be picked from a multi-image archive",
				i+1, len(m), d.Config)
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, err
		}
		found = append(found, imported{img: img, names: names})
	}
	return found, nil
}

// readLayout reads the images of an OCI image layout directory.
func readLayout(dir string) ([]imported, error) {
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return nil, fmt.Errorf("not an OCI image layout (no oci-layout "+
			"file): %w", err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []imported
	for _, d := range im.Manifests {
		var img v1.Image
		switch {
		case d.MediaType.IsImage():
			img, err = idx.Image(d.Digest)
		case d.MediaType.IsIndex():
			var child v1.ImageIndex
			if child, err = idx.ImageIndex(d.Digest); err == nil {
				img, err = imageFromIndex(child, HostPlatform())
			}
		default:
			continue // not an image (e.g. an artifact)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Digest, err)
		}
		found = append(found, imported{img: img, names: layoutNames(d)})
	}
	return found, nil
}

// layoutNames reads the names an OCI index entry gives its image. A bare
// "org.opencontainers.image.ref.name" like "1.0" is a tag with no
// repository, so it names nothing on its own.
func layoutNames(d v1.Descriptor) []string {
	for _, key := range []string{annotationContainerdName, annotationRefName} {
		v := d.Annotations[key]
		if v == "" || (key == annotationRefName && !strings.ContainsAny(v, "/:")) {
			continue
		}
		if r, err := ParseReference(v); err == nil {
			return []string{r.String()}
		}
	}
	return nil
}
