package image

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/gocell/gocell/final/internal/inroot"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Commit turns a container's overlayfs upper directory into a new image:
// base's layers plus one layer holding upperDir's changes, with cfg as its
// config (start from base.Config to keep the base's settings). base nil
// means an image from scratch. tag, if not empty, names the new image.
//
// The upper directory is written as an OCI layer tar, translating
// overlayfs's deletions back to OCI whiteouts (a 0/0 char device becomes
// an empty ".wh.NAME"; a directory with trusted.overlay.opaque=y gets a
// ".wh..wh..opq" entry), and that tar is stored through the same unpacker
// and DiffID computation as any pulled layer. So a committed layer is
// exactly what its DiffID says, and the same as if it had been pulled.
func (s *Store) Commit(base *Image, upperDir string, tag string, cfg Config) (*Image, error) {
	img, err := s.commit(base, upperDir, tag, cfg)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", upperDir, err)
	}
	return img, nil
}

// commit does the work of Commit.
func (s *Store) commit(base *Image, upperDir string, tag string, cfg Config) (*Image, error) {
	var names []string
	if tag != "" {
		r, err := ParseReference(tag)
		if err != nil {
			return nil, err
		}
		if r.Digest != "" {
			return nil, fmt.Errorf("tag %s: a tag cannot be a digest: %w",
				tag, ErrInvalidReference)
		}
		names = append(names, r.String())
	}
	cf, err := s.baseConfig(base)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lock(layersLock, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()

	// Stream the tar straight into the unpacker: no temporary tar file.
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(writeLayerTar(pw, upperDir))
	}()
	rec, err := s.storeLayer(pr, "")
	pr.CloseWithError(errors.New("layer stored")) // unblocks the writer on error
	<-done
	if err != nil {
		return nil, err
	}

	diffID, err := v1.NewHash(rec.DiffID)
	if err != nil {
		return nil, err
	}
	now := v1.Time{Time: time.Now().UTC().Truncate(time.Second)}
	cf.Created = now
	cf.Config.Env = cfg.Env
	cf.Config.Cmd = cfg.Cmd
	cf.Config.Entrypoint = cfg.Entrypoint
	cf.Config.WorkingDir = cfg.WorkingDir
	cf.Config.User = cfg.User
	cf.RootFS.Type = "layers"
	cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, diffID)
	cf.History = append(cf.History, v1.History{
		Created:   now,
		CreatedBy: "gocell commit",
	})
	raw, err := json.Marshal(cf)
	if err != nil {
		return nil, err
	}
	return s.addImage(raw, "", names)
}

// baseConfig is a copy of base's full config (more than Config holds:
// labels, exposed ports, history), or a fresh one for the host platform.
func (s *Store) baseConfig(base *Image) (*v1.ConfigFile, error) {
	if base == nil {
		p := HostPlatform()
		return &v1.ConfigFile{OS: p.OS, Architecture: p.Architecture,
			Variant: p.Variant}, nil
	}
	h, err := hexOf(base.ID)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.path("images", h, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("base image %s: %w", base.ShortID(), ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return v1.ParseConfigFile(f)
}

// The overlayfs features whose upper directories are not self-contained:
// a renamed directory only records where it came from (redirect_dir), a
// chmod'ed file may hold metadata only (metacopy). Mount the container
// without them (the kernel defaults) to be able to commit.
var overlayUnsupported = []string{"trusted.overlay.redirect", "trusted.overlay.metacopy"}

// writeLayerTar writes dir, an overlayfs upper directory, as an OCI layer
// tar: in lexical order, whiteouts translated, hardlinks within dir as tar
// links, owners as numeric ids only (names would be the host's, not the
// image's).
//
// The upper directory is the container's: its processes made every entry
// in it, and if it runs, they may be changing it as we read, swapping a
// directory for a symlink to /etc to have the host's /etc/shadow put into
// the image. So nothing here resolves a path in it: the walk goes from
// directory descriptor to directory descriptor with O_NOFOLLOW, each
// file is opened the same way and checked to be the entry it listed, and
// its content, mode and attributes are read through that descriptor. A
// swap makes the commit fail; it never reads outside. (The CLI also
// freezes a running container while it commits, as docker commit pauses
// it, so that the layer is one moment of it.)
func writeLayerTar(w io.Writer, dir string) error {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write layer tar: open %s: %w", dir, err)
	}
	lw := &layerWriter{tw: tar.NewWriter(w), links: map[inode]string{}}
	if err := lw.dir(root, ""); err != nil {
		return fmt.Errorf("write layer tar: %w", err)
	}
	return lw.tw.Close()
}

// inode identifies a file, to find its other names (hard links).
type inode struct{ dev, ino uint64 }

// layerWriter is one walk of writeLayerTar.
type layerWriter struct {
	tw    *tar.Writer
	links map[inode]string
}

// dir writes the entries of the open directory fd, whose name in the
// layer is prefix ("" for the top), and closes fd.
func (lw *layerWriter) dir(fd int, prefix string) error {
	f := os.NewFile(uintptr(fd), prefix)
	defer f.Close()
	entries, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", prefix, err)
	}
	sort.Strings(entries)
	for _, e := range entries {
		if err := lw.entry(fd, e, path.Join(prefix, e)); err != nil {
			return err
		}
	}
	return nil
}

// entry writes the entry base of the directory dirfd, named name.
func (lw *layerWriter) entry(dirfd int, base, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	mtime := time.Unix(st.Mtim.Unix())
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		if st.Rdev != 0 {
			return fmt.Errorf("%s: device nodes cannot be committed "+
				"(nor pulled: see ErrUnsafeLayer)", name)
		}
		// overlayfs whiteout → OCI whiteout
		return lw.tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     path.Join(path.Dir(name), whiteoutPrefix+path.Base(name)),
			Mode:     0o644,
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		})
	case unix.S_IFBLK:
		return fmt.Errorf("%s: device nodes cannot be committed "+
			"(nor pulled: see ErrUnsafeLayer)", name)
	case unix.S_IFSOCK:
		return nil // sockets are live objects, not content (as docker)
	case unix.S_IFLNK:
		target, err := inroot.Readlink(dirfd, base)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		// A symlink cannot be opened: its attributes are not kept.
		return lw.tw.WriteHeader(header(&st, name, tar.TypeSymlink, target, nil))
	}
	// A directory, a regular file or a FIFO: opened without following
	// and without blocking, and checked to be what was listed.
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|
		unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var fst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if fst.Dev != st.Dev || fst.Ino != st.Ino {
		return fmt.Errorf("%s changed while it was committed", name)
	}
	attrs, err := xattrs(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, a := range overlayUnsupported {
		if _, ok := attrs[a]; ok {
			return fmt.Errorf("%s has %s: remount the container's "+
				"overlay without redirect_dir/metacopy to commit", name, a)
		}
	}
	switch fst.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := lw.tw.WriteHeader(header(&fst, name+"/", tar.TypeDir, "", attrs)); err != nil {
			return err
		}
		if string(attrs[opaqueXattr]) == "y" {
			err := lw.tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg,
				Name:     name + "/" + opaqueMarker,
				Mode:     0o644,
				ModTime:  mtime,
				Format:   tar.FormatPAX,
			})
			if err != nil {
				return err
			}
		}
		// The walk goes on from this descriptor; dir owns a copy.
		sub, err := unix.Dup(fd)
		if err != nil {
			return err
		}
		unix.CloseOnExec(sub)
		return lw.dir(sub, name)
	case unix.S_IFIFO:
		return lw.tw.WriteHeader(header(&fst, name, tar.TypeFifo, "", attrs))
	}
	if fst.Nlink > 1 {
		key := inode{uint64(fst.Dev), fst.Ino}
		if first, ok := lw.links[key]; ok {
			hdr := header(&fst, name, tar.TypeLink, "", attrs)
			hdr.Linkname = first
			return lw.tw.WriteHeader(hdr)
		}
		lw.links[key] = name
	}
	hdr := header(&fst, name, tar.TypeReg, "", attrs)
	hdr.Size = fst.Size
	if err := lw.tw.WriteHeader(hdr); err != nil {
		return err
	}
	// Exactly Size bytes: a file that grows or shrinks meanwhile fails.
	if _, err := io.CopyN(lw.tw, f, fst.Size); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// header is the tar header of an entry with stat st.
func header(st *unix.Stat_t, name string, typ byte, link string, attrs map[string][]byte) *tar.Header {
	hdr := &tar.Header{
		Typeflag: typ,
		Name:     name,
		Linkname: link,
		Mode:     int64(st.Mode & 0o7777),
		Uid:      int(st.Uid),
		Gid:      int(st.Gid),
		ModTime:  time.Unix(st.Mtim.Unix()),
		Format:   tar.FormatPAX,
	}
	for a, v := range attrs {
		if keepXattr(a) {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+a] = string(v)
		}
	}
	return hdr
}

// xattrs reads all extended attributes of the open file fd.
// Unprivileged callers do not see trusted.*; that is fine, since only root
// can commit an overlay that has them.
func xattrs(fd int) (map[string][]byte, error) {
	size, err := unix.Flistxattr(fd, nil)
	if errors.Is(err, unix.ENOTSUP) || size == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listxattr: %w", err)
	}
	buf := make([]byte, size)
	if size, err = unix.Flistxattr(fd, buf); err != nil {
		return nil, fmt.Errorf("listxattr: %w", err)
	}
	attrs := map[string][]byte{}
	for _, a := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		n, err := unix.Fgetxattr(fd, a, nil)
		if err != nil {
			continue // removed meanwhile, or not ours to read
		}
		v := make([]byte, n)
		if n, err = unix.Fgetxattr(fd, a, v); err != nil {
			continue
		}
		attrs[a] = v[:n]
	}
	return attrs, nil
}
