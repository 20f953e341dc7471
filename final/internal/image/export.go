package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// ErrNoBlob means a stored layer has no kept tar: it was stored by a
// gocell that did not keep one, and cannot be pushed or saved.
var ErrNoBlob = errors.New("layer has no kept tar")

// Export runs fn with the images as go-containerregistry's v1.Images,
// for push, save and the classroom registry, while no layer can be
// deleted (the layer lock, shared). Each is the stored image: its config
// byte for byte, so the same ID, and each layer's tar as it came,
// gzipped. Its manifest (OCI) is made here: its digest can differ from
// that of the manifest it was pulled by, whose compressed blobs are not
// kept. count, if not nil, is told the bytes read from each layer, by
// DiffID.
func (s *Store) Export(imgs []*Image, count func(diffID string, n int64), fn func([]v1.Image) error) error {
	unlock, err := s.lock(layersLock, unix.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	var out []v1.Image
	for _, img := range imgs {
		core, err := s.exported(img, count)
		if err != nil {
			return err
		}
		v, err := partial.CompressedToImage(core)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return fn(out)
}

// Save writes the images named by refs as a docker save archive (what
// docker load and podman load read, and gocell import), with their names.
func (s *Store) Save(refs []string, w io.Writer) error {
	var imgs []*Image
	for _, ref := range refs {
		img, err := s.Get(ref)
		if err != nil {
			return fmt.Errorf("save %s: %w", ref, err)
		}
		imgs = append(imgs, img)
	}
	return s.Export(imgs, nil, func(vs []v1.Image) error {
		tags := map[name.Tag]v1.Image{}
		var untagged []v1.Image
		for i, img := range imgs {
			// The name given, if it is a tag; else all the image's tags.
			names := img.RepoTags
			if r, err := ParseReference(refs[i]); err == nil && r.Digest == "" && r.String() != "" &&
				slices.Contains(img.RepoTags, r.String()) {
				names = []string{r.String()}
			}
			if len(names) == 0 {
				untagged = append(untagged, vs[i])
			}
			for _, n := range names {
				t, err := name.NewTag(n)
				if err != nil {
					return err
				}
				tags[t] = vs[i]
			}
		}
		if len(untagged) > 0 {
			return fmt.Errorf("save: an image without a name cannot be loaded back by name: gocell tag it first")
		}
		return tarball.MultiWrite(tags, w)
	})
}

// exportedImage is the partial.CompressedImageCore of a stored image.
type exportedImage struct {
	config   []byte
	manifest []byte
	layers   map[v1.Hash]*exportedLayer
}

// exported reads what the image's manifest needs: the config, and the
// digest and size of each layer's kept tar.
func (s *Store) exported(img *Image, count func(string, int64)) (*exportedImage, error) {
	h, err := hexOf(img.ID)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(s.path("images", h, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.ShortID(), err)
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(raw)),
			Digest: v1.Hash{Algorithm: "sha256", Hex: h}},
	}
	e := &exportedImage{config: raw, layers: map[v1.Hash]*exportedLayer{}}
	for _, diffID := range img.Layers {
		rec, err := s.layerInfo(diffID)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.ShortID(), err)
		}
		if rec.Blob == "" {
			return nil, fmt.Errorf("image %s: layer %s: %w (it was stored by an older gocell): "+
				"remove the image and pull or import it again", img.ShortID(), diffID, ErrNoBlob)
		}
		digest, err := v1.NewHash(rec.Blob)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", diffID, err)
		}
		did, err := v1.NewHash(diffID)
		if err != nil {
			return nil, err
		}
		lh, _ := hexOf(diffID)
		l := &exportedLayer{path: s.path("layers", lh, blobFile), digest: digest,
			diffID: did, size: rec.BlobSize}
		if count != nil {
			l.count = func(n int64) { count(diffID, n) }
		}
		e.layers[digest] = l
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCILayer,
			Size: rec.BlobSize, Digest: digest})
	}
	if e.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return e, nil
}

// RawConfigFile implements partial.CompressedImageCore.
func (e *exportedImage) RawConfigFile() ([]byte, error) { return e.config, nil }

// MediaType implements partial.CompressedImageCore.
func (e *exportedImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// RawManifest implements partial.CompressedImageCore.
func (e *exportedImage) RawManifest() ([]byte, error) { return e.manifest, nil }

// LayerByDigest implements partial.CompressedImageCore.
func (e *exportedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := e.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("blob %s: %w", h, ErrNotFound)
}

// exportedLayer is one layer's kept tar.
type exportedLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
	count          func(int64)
}

// Digest implements partial.CompressedLayer.
func (l *exportedLayer) Digest() (v1.Hash, error) { return l.digest, nil }

// DiffID tells partial the DiffID, which it would otherwise compute by
// reading the whole layer.
func (l *exportedLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Size implements partial.CompressedLayer.
func (l *exportedLayer) Size() (int64, error) { return l.size, nil }

// MediaType implements partial.CompressedLayer.
func (l *exportedLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// Compressed implements partial.CompressedLayer.
func (l *exportedLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil || l.count == nil {
		return f, err
	}
	return &countingReader{ReadCloser: f, count: l.count}, nil
}

// HistoryEntry is one step of how an image was built, from its config's
// history: the layer it made, if any, and its size unpacked.
type HistoryEntry struct {
	Created   time.Time
	CreatedBy string
	Comment   string
	// EmptyLayer: the step changed only the config (ENV, CMD ...).
	EmptyLayer bool
	Size       int64
}

// History lists the steps that built img, newest first, as docker
// history does. An image whose config has no history (one made by
// scripts/mkimage.sh, say) gets one entry per layer.
func (s *Store) History(img *Image) ([]HistoryEntry, error) {
	h, err := hexOf(img.ID)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(s.path("images", h, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.ShortID(), err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", img.ShortID(), err)
	}
	hist := cf.History
	if len(hist) == 0 {
		for range img.Layers {
			hist = append(hist, v1.History{Created: cf.Created})
		}
	}
	var out []HistoryEntry
	layer := 0
	for _, e := range hist {
		entry := HistoryEntry{Created: e.Created.Time, CreatedBy: e.CreatedBy, Comment: e.Comment, EmptyLayer: e.EmptyLayer}
		if !e.EmptyLayer && layer < len(img.Layers) {
			if rec, err := s.layerInfo(img.Layers[layer]); err == nil {
				entry.Size = rec.Size
			}
			layer++
		}
		out = append([]HistoryEntry{entry}, out...)
	}
	return out, nil
}
