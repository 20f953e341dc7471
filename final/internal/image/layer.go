package image

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// layerRecord is layers/<hex>/layer.json.
type layerRecord struct {
	DiffID string `json:"diffID"`
	Size   int64  `json:"size"`
	// Blob and BlobSize are the digest and size of layer.tar.gz, the
	// layer's tar as it came (its sha256 is the DiffID), gzipped: what
	// push, save and the classroom registry send. A layer stored by an
	// older gocell has none.
	Blob     string `json:"blob,omitempty"`
	BlobSize int64  `json:"blobSize,omitempty"`
}

// blobFile is the name of the kept tar, gzipped, in a layer's directory.
const blobFile = "layer.tar.gz"

// layerJobs is how many layers are fetched and unpacked at once. Each
// layer has its own directory, so unlike a single rootfs they need not be
// unpacked in order.
const layerJobs = 3

// layerDir is where the layer with this DiffID is (or would be) unpacked.
func (s *Store) layerDir(diffID string) (string, error) {
	h, err := hexOf(diffID)
	if err != nil {
		return "", fmt.Errorf("layer: %w", err)
	}
	return s.path("layers", h, "diff"), nil
}

// layerInfo reads layer.json; ErrNotFound if the layer is not stored.
func (s *Store) layerInfo(diffID string) (layerRecord, error) {
	var rec layerRecord
	h, err := hexOf(diffID)
	if err != nil {
		return rec, fmt.Errorf("layer: %w", err)
	}
	b, err := os.ReadFile(s.path("layers", h, "layer.json"))
	if errors.Is(err, os.ErrNotExist) {
		return rec, fmt.Errorf("layer %s: %w", diffID, ErrNotFound)
	}
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		return rec, fmt.Errorf("layer %s: %w", diffID, err)
	}
	return rec, nil
}

// limitReader reads from r until left bytes have been read, and then
// fails with ErrTooLarge (io.LimitReader would end quietly, as if the
// layer were whole).
type limitReader struct {
	r     io.Reader
	left  int64
	limit int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// Exactly the limit is fine: fail only if there is more.
		var one [1]byte
		if n, err := io.ReadFull(l.r, one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("%w: more than %d bytes uncompressed", ErrTooLarge, l.limit)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// storeLayer unpacks the uncompressed layer tar read from r and stores it
// under its DiffID, the sha256 of exactly the bytes read. If want is set
// and the content does not match it, nothing is stored: the config lists
// DiffIDs, the manifest digest covers the config, so this check ties the
// files on disk to the digest that was asked for.
//
// The layer is unpacked into a fresh directory under tmp/ and renamed into
// layers/ in one step. rename(2) refuses to replace a non-empty directory,
// so if another pull stored the same layer meanwhile, its copy stays and
// ours is thrown away: rename-if-absent, no lock needed.
func (s *Store) storeLayer(r io.Reader, want string) (layerRecord, error) {
	var rec layerRecord
	tmp, err := os.MkdirTemp(s.path("tmp"), "layer-*")
	if err != nil {
		return rec, err
	}
	defer removeAll(tmp) // what is left if anything fails
	diff := filepath.Join(tmp, "diff")
	if err := os.Mkdir(diff, 0o755); err != nil {
		return rec, err
	}
	// The tar is kept too, as it came, gzipped on the way: an image is
	// pushed or saved with its own layers, so that its DiffIDs, and so
	// its ID, stay the same. (Made again from the directory, a tar
	// would differ in a header or in the order of entries.) BestSpeed:
	// a pull should not wait on the compression.
	blob, err := os.Create(filepath.Join(tmp, blobFile))
	if err != nil {
		return rec, err
	}
	defer blob.Close()
	blobHash, blobSize := sha256.New(), &countWriter{}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(blob, blobHash, blobSize), gzip.BestSpeed)
	if err != nil {
		return rec, err
	}
	h := sha256.New()
	tee := io.TeeReader(&limitReader{r: r, left: s.Limits.Bytes, limit: s.Limits.Bytes}, io.MultiWriter(h, zw))
	size, err := unpack(tee, diff, unpackOptions{
		whiteouts:  true,
		sameOwner:  os.Geteuid() == 0,
		maxEntries: s.Limits.Entries,
		maxBytes:   s.Limits.Bytes,
	})
	if err != nil {
		return rec, err
	}
	// The tar reader stops at the end-of-archive marker; the DiffID
	// covers the padding after it too.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return rec, fmt.Errorf("read layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return rec, fmt.Errorf("keep layer tar: %w", err)
	}
	if err := blob.Close(); err != nil {
		return rec, fmt.Errorf("keep layer tar: %w", err)
	}
	rec = layerRecord{DiffID: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: size,
		Blob: "sha256:" + hex.EncodeToString(blobHash.Sum(nil)), BlobSize: blobSize.n}
	if want != "" && rec.DiffID != want {
		return rec, fmt.Errorf("layer content has DiffID %s, the image "+
			"config says %s", rec.DiffID, want)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return rec, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "layer.json"), b, 0o644); err != nil {
		return rec, err
	}
	// MkdirTemp made it 0700, and so it stays: see Open.
	hexID, _ := hexOf(rec.DiffID) // computed above, so well formed
	err = os.Rename(tmp, s.path("layers", hexID))
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return rec, nil // stored by someone else meanwhile; same bytes
	}
	if err != nil {
		return rec, fmt.Errorf("store layer %s: %w", rec.DiffID, err)
	}
	return rec, nil
}

// layerOpener opens the uncompressed tar of a layer, calling count with
// the number of bytes transferred as it is read. total is what count will
// add up to, or 0 if unknown.
type layerOpener func(l v1.Layer, count func(int64)) (rc io.ReadCloser, total int64, err error)

// openCompressed suits registries: progress counts the compressed bytes
// that cross the network against the size in the manifest, and
// go-containerregistry sniffs gzip or zstd and decompresses.
func openCompressed(l v1.Layer, count func(int64)) (io.ReadCloser, int64, error) {
	total, err := l.Size()
	if err != nil {
		return nil, 0, err
	}
	ul, err := partial.CompressedToLayer(&countedLayer{l: l, count: count})
	if err != nil {
		return nil, 0, err
	}
	rc, err := ul.Uncompressed()
	return rc, total, err
}

// openUncompressed suits archives: a docker save tarball often stores the
// tar uncompressed, and asking for Compressed() would gzip it only for us
// to gunzip it again.
func openUncompressed(l v1.Layer, count func(int64)) (io.ReadCloser, int64, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, 0, err
	}
	return &countingReader{ReadCloser: rc, count: count}, 0, nil
}

// countedLayer is a compressed layer whose bytes are counted as they are
// read. It is deliberately not a v1.Layer, so partial.CompressedToLayer
// builds Uncompressed() on top of our Compressed().
type countedLayer struct {
	l     v1.Layer
	count func(int64)
}

// Digest implements partial.CompressedLayer.
func (c *countedLayer) Digest() (v1.Hash, error) { return c.l.Digest() }

// Size implements partial.CompressedLayer.
func (c *countedLayer) Size() (int64, error) { return c.l.Size() }

// MediaType implements partial.CompressedLayer.
func (c *countedLayer) MediaType() (types.MediaType, error) { return c.l.MediaType() }

// Compressed implements partial.CompressedLayer.
func (c *countedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := c.l.Compressed()
	if err != nil {
		return nil, err
	}
	return &countingReader{ReadCloser: rc, count: c.count}, nil
}

// countWriter counts the bytes written through it.
type countWriter struct{ n int64 }

// Write implements io.Writer.
func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// countingReader reports every read to count.
type countingReader struct {
	io.ReadCloser
	count func(int64)
}

// Read implements io.Reader.
func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.count(int64(n))
	return n, err
}

// ctxReader stops a read loop once ctx is done, so that one failed layer
// stops its siblings even when their bytes come from a file.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// Read implements io.Reader.
func (c ctxReader) Read(p []byte) (int, error) {
	if err := context.Cause(c.ctx); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// layerMediaTypes are the layer kinds that hold a file system tar.
var layerMediaTypes = map[types.MediaType]bool{
	types.DockerLayer:             true,
	types.DockerUncompressedLayer: true,
	types.OCILayer:                true,
	types.OCILayerZStd:            true,
	types.OCIUncompressedLayer:    true,
}

// addLayers makes sure every layer of img is stored, fetching the missing
// ones, up to layerJobs at a time. cancel must cancel the context the
// layers' bytes are read under (for a registry image, the one it was
// fetched with), so that the first failure stops the others.
func (s *Store) addLayers(ctx context.Context, cancel context.CancelCauseFunc,
	img v1.Image, open layerOpener, prog *progress) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("layers: %w", err)
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return fmt.Errorf("manifest lists %d layers, config %d diff_ids",
			len(layers), len(cf.RootFS.DiffIDs))
	}
	for _, d := range cf.RootFS.DiffIDs { // they become directory names
		if _, err := hexOf(d.String()); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, layerJobs)
		mu       sync.Mutex
		firstErr error
		seen     = map[string]bool{}
	)
	for i, l := range layers {
		diffID := cf.RootFS.DiffIDs[i].String()
		if seen[diffID] { // e.g. several empty layers in one image
			continue
		}
		seen[diffID] = true
		if _, err := s.layerInfo(diffID); err == nil {
			prog.layer(diffID, 0).exists()
			continue
		}
		bar := prog.layer(diffID, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			err := s.fetchLayer(ctx, l, diffID, open, bar)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
					cancel(err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// fetchLayer reads one layer and stores it.
func (s *Store) fetchLayer(ctx context.Context, l v1.Layer, diffID string,
	open layerOpener, bar *bar) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	mt, err := l.MediaType()
	if err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	if !layerMediaTypes[mt] {
		return fmt.Errorf("layer %s: media type %s is not a file system "+
			"layer", diffID, mt)
	}
	rc, total, err := open(l, bar.add)
	if err != nil {
		bar.fail()
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	defer rc.Close()
	bar.start(total)
	if _, err := s.storeLayer(ctxReader{ctx: ctx, r: rc}, diffID); err != nil {
		bar.fail()
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	bar.done()
	return nil
}
