package image

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

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
func writeLayerTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", name)
		}
		attrs, err := xattrs(p)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, a := range overlayUnsupported {
			if _, ok := attrs[a]; ok {
				return fmt.Errorf("%s has %s: remount the container's "+
					"overlay without redirect_dir/metacopy to commit", name, a)
			}
		}

		mode := info.Mode()
		switch {
		case mode&fs.ModeCharDevice != 0 && st.Rdev == 0:
			// overlayfs whiteout → OCI whiteout
			return tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg,
				Name:     path.Join(path.Dir(name), whiteoutPrefix+path.Base(name)),
				Mode:     0o644,
				ModTime:  info.ModTime(),
				Format:   tar.FormatPAX,
			})
		case mode&fs.ModeDevice != 0:
			return fmt.Errorf("%s: device nodes cannot be committed "+
				"(nor pulled: see ErrUnsafeLayer)", name)
		case mode&fs.ModeSocket != 0:
			return nil // sockets are live objects, not content (as docker)
		}

		target := ""
		if mode&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, target)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		hdr.Name = name
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		hdr.Uname, hdr.Gname = "", ""
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		for a, v := range attrs {
			if keepXattr(a) {
				if hdr.PAXRecords == nil {
					hdr.PAXRecords = map[string]string{}
				}
				hdr.PAXRecords["SCHILY.xattr."+a] = string(v)
			}
		}
		if hdr.Typeflag == tar.TypeReg && st.Nlink > 1 {
			key := inode{uint64(st.Dev), st.Ino}
			if first, ok := links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				links[key] = name
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() && string(attrs[opaqueXattr]) == "y" {
			err := tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg,
				Name:     name + "/" + opaqueMarker,
				Mode:     0o644,
				ModTime:  info.ModTime(),
				Format:   tar.FormatPAX,
			})
			if err != nil {
				return err
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			return copyFile(tw, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write layer tar: %w", err)
	}
	return tw.Close()
}

// copyFile appends the content of the regular file p to tw.
func copyFile(tw *tar.Writer, p string) error {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// xattrs reads all extended attributes of p (not following symlinks).
// Unprivileged callers do not see trusted.*; that is fine, since only root
// can commit an overlay that has them.
func xattrs(p string) (map[string][]byte, error) {
	size, err := unix.Llistxattr(p, nil)
	if errors.Is(err, unix.ENOTSUP) || size == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listxattr: %w", err)
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(p, buf); err != nil {
		return nil, fmt.Errorf("listxattr: %w", err)
	}
	attrs := map[string][]byte{}
	for _, a := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		n, err := unix.Lgetxattr(p, a, nil)
		if err != nil {
			continue // removed meanwhile, or not ours to read
		}
		v := make([]byte, n)
		if n, err = unix.Lgetxattr(p, a, v); err != nil {
			continue
		}
		attrs[a] = v[:n]
	}
	return attrs, nil
}
