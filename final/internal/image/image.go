// Package image owns images and layers: it pulls them from registries and
// imports them from archives, and stores every layer once, by DiffID,
// unpacked into a directory that overlayfs can use as a lower layer.
//
// An image is three things: an ordered list of layers (file system
// changes, bottom first), a config (Env, Cmd, Entrypoint, WorkingDir,
// User …) and names that point at it (tags such as
// docker.io/library/busybox:latest, or digests). The registry protocol and
// the archive formats (docker save tarballs, OCI image layouts) come from
// github.com/google/go-containerregistry; what happens to the bytes once
// they arrive is written out here, because that is the lesson: how a layer
// tar becomes a directory, how deletions ("whiteouts") are represented, and
// why unpacking an untrusted tar is an attack surface.
//
// # Storage layout
//
// Everything lives under the root passed to Open (default /var/lib/gocell):
//
//	root/
//	  image.lock                  flock: shared while layers are added, exclusive while they are deleted
//	  refs.lock                   flock: serialises changes to names and image records
//	  repositories.json           names → image ID: {"refs": {"docker.io/library/busybox:latest": "sha256:…"}}
//	  images/<hex>/config.json    the image config blob, byte for byte; ID = "sha256:" + sha256(config.json)
//	  images/<hex>/image.json     what the config does not say: manifest digest, unpacked size
//	  layers/<hex>/diff/          the unpacked layer (overlayfs lowerdir); <hex> is its DiffID
//	  layers/<hex>/layer.json     {"diffID": "sha256:…", "size": bytes, "blob": "sha256:…", "blobSize": bytes}
//	  layers/<hex>/layer.tar.gz   the layer's tar as it came, gzipped: what push and save send
//	  tmp/                        work space; every new layer is unpacked here first
//
// A layer directory appears with a single rename(2) from tmp/, so it is
// either complete or absent: a pull that fails half way leaves nothing in
// layers/, and two pulls racing for the same layer both succeed, one of them
// discarding its copy. Names are never used as file names: a reference is a
// key in repositories.json, so a hostile name cannot become a path.
//
// # Unpacking rules
//
// Layers come from strangers, so unpacking refuses, with an error, any tar
// entry that could reach outside the layer directory: absolute names, ".."
// components, entries whose parent path runs through a symlink (symlinks
// are created, never followed), hardlinks to absolute or escaping names or
// to files not in the layer, and char or block device nodes. Whiteouts
// (".wh.NAME") become the 0/0 char devices overlayfs expects and opaque
// markers (".wh..wh..opq") become the trusted.overlay.opaque="y" xattr.
package image

import (
	"errors"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrNotFound means no image, name or layer matches what was asked for.
var ErrNotFound = errors.New("not found")

// ErrInvalidReference means an image reference is malformed, e.g. upper
// case letters, an empty tag or a digest that is not sha256:<64 hex>.
var ErrInvalidReference = errors.New("invalid reference")

// ErrAmbiguous means a short ID prefix matches more than one image.
var ErrAmbiguous = errors.New("ambiguous image ID prefix")

// ErrUnsafeLayer means a layer tar tried to write outside its directory or
// create something an image may not carry (see the package doc).
var ErrUnsafeLayer = errors.New("unsafe layer")

// ErrTooLarge means a layer holds more than Limits allows.
var ErrTooLarge = errors.New("layer too large")

// Limits bound what one layer may write when it is unpacked: a layer is
// input from anyone, and a small compressed one can expand to fill the
// disk (a gzip of zeros) or the inode table (millions of empty files).
type Limits struct {
	// Bytes is the most the uncompressed layer tar may hold, headers,
	// content and padding together.
	Bytes int64
	// Entries is the most entries (files, directories, links…) it may
	// hold.
	Entries int
}

// DefaultLimits are the limits of a Store opened with Open: more than
// any ordinary image layer, less than a learner's VM disk.
var DefaultLimits = Limits{Bytes: 16 << 30, Entries: 1 << 20}

// Config is the part of an image config that a runtime needs to start the
// container's first process.
type Config struct {
	// Env holds "KEY=value" pairs.
	Env []string
	// Cmd is the default command, or the arguments to Entrypoint.
	Cmd []string
	// Entrypoint, when set, is prepended to Cmd.
	Entrypoint []string
	// WorkingDir is the initial working directory ("" means "/").
	WorkingDir string
	// User is "uid", "uid:gid", "name" or "name:group" ("" means root).
	User string
}

// Image is a stored image.
type Image struct {
	// ID is "sha256:<hex>" of the config blob, as Docker shows it.
	ID string
	// RepoTags are the normalized tag names that point at the image, e.g.
	// "docker.io/library/busybox:latest" or "127.0.0.1:5000/x/y:1".
	RepoTags []string
	// RepoDigests are the name@digest references that point at it.
	RepoDigests []string
	// Digest is the manifest (or index) digest it was last pulled by, if
	// any. Images that were imported or committed have none.
	Digest string
	// Layers are the DiffIDs (sha256 of the uncompressed layer tars),
	// bottom layer first, as in the config's rootfs.diff_ids.
	Layers []string
	// Config is how to run it.
	Config Config
	// Created is when the image was built, from its config.
	Created time.Time
	// Size is the sum of the unpacked sizes of its layers in bytes.
	Size int64
	// OS and Architecture are from the config, e.g. "linux", "amd64".
	OS           string
	Architecture string
}

// ShortID is the first 12 hex digits of the ID, as `docker images` shows.
func (img *Image) ShortID() string {
	return shortHex(img.ID)
}

// configOf picks the runtime fields out of an OCI image config.
func configOf(cf *v1.ConfigFile) Config {
	return Config{
		Env:        cf.Config.Env,
		Cmd:        cf.Config.Cmd,
		Entrypoint: cf.Config.Entrypoint,
		WorkingDir: cf.Config.WorkingDir,
		User:       cf.Config.User,
	}
}

// shortHex turns "sha256:0123456789abcdef…" into "0123456789ab".
func shortHex(digest string) string {
	hex := digest
	if i := len("sha256:"); len(hex) > i && hex[:i] == "sha256:" {
		hex = hex[i:]
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}
