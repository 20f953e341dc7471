package image

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushOptions tune Push.
type PushOptions struct {
	// Progress receives a line per layer, as Pull's does (an updating
	// bar on a terminal). nil: silent.
	Progress io.Writer
	// Timeout bounds each wait on the registry, as Pull's does. 0 means
	// DefaultTimeout.
	Timeout time.Duration
}

// Push sends the stored image named ref to the registry the name says
// (Docker Hub for a short name), under that name, and returns the digest
// of the manifest it pushed. Only blobs the registry lacks are sent. The
// credentials are those of gocell login (~/.docker/config.json).
func (s *Store) Push(ctx context.Context, ref string, opts PushOptions) (string, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	if r.Digest != "" {
		return "", fmt.Errorf("push %s: push a tag, not a digest: %w", ref, ErrInvalidReference)
	}
	img, err := s.Get(r.String())
	if err != nil {
		return "", fmt.Errorf("push %s: %w (gocell tag an image with this name first)", r.Familiar(), err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	host := r.Domain
	if host == DockerHub && s.hub != "" {
		host = s.hub
	}
	reg, err := name.NewRegistry(host)
	if err != nil {
		return "", fmt.Errorf("push %s: registry %q: %v: %w", r.Familiar(), host, err, ErrInvalidReference)
	}
	prog := newProgress(opts.Progress)
	bars := map[string]*bar{}
	var mu sync.Mutex
	started := map[string]bool{}
	for _, l := range img.Layers {
		if bars[l] == nil {
			rec, err := s.layerInfo(l)
			if err != nil {
				return "", fmt.Errorf("push %s: %w", r.Familiar(), err)
			}
			bars[l] = prog.layer(l, rec.BlobSize)
		}
	}
	count := func(diffID string, n int64) {
		mu.Lock()
		b := bars[diffID]
		if !started[diffID] {
			started[diffID] = true
			b.start(b.total)
		}
		mu.Unlock()
		b.add(n)
	}
	var digest v1.Hash
	err = s.Export([]*Image{img}, count, func(vs []v1.Image) error {
		v := vs[0]
		if digest, err = v.Digest(); err != nil {
			return err
		}
		prog.printf("pushing %s to registry %s", r.Familiar(), host)
		return remote.Write(r.remote(reg), v, remote.WithContext(ctx),
			remote.WithTransport(newTransport(opts.Timeout)),
			remote.WithAuthFromKeychain(authn.DefaultKeychain),
			remote.WithUserAgent("gocell"))
	})
	ended := map[string]bool{}
	for _, l := range img.Layers {
		b := bars[l]
		if ended[l] {
			continue // a layer the image has twice
		}
		ended[l] = true
		switch {
		case err != nil:
			b.fail()
		case started[l]:
			b.done()
		default:
			b.exists() // the registry had it: nothing was read
		}
	}
	if err != nil {
		return "", fmt.Errorf("push %s: %w", r.Familiar(), err)
	}
	return digest.String(), nil
}

// Publish writes every tagged image of the store into the registry at
// host (a loopback address that speaks http), under its repository path
// and tag: a name such as docker.io/library/busybox:latest becomes
// library/busybox:latest, the path a Docker Hub mirror is asked for. It
// calls published with each name and where it went; an image that cannot
// be exported (stored by an older gocell) is passed over with its error.
func (s *Store) Publish(ctx context.Context, host string, published func(name, as string, err error)) error {
	imgs, err := s.List()
	if err != nil {
		return err
	}
	reg, err := name.NewRegistry(host, name.Insecure)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		for _, tag := range img.RepoTags {
			r, err := ParseReference(tag)
			if err != nil {
				return err
			}
			as := r.Path + ":" + r.Tag
			err = s.Export([]*Image{img}, nil, func(vs []v1.Image) error {
				return remote.Write(r.remote(reg), vs[0], remote.WithContext(ctx))
			})
			published(r.Familiar(), as, err)
		}
	}
	return nil
}
