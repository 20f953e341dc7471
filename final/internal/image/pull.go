package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"
)

// DefaultTimeout bounds connecting to a registry and waiting for its
// answers when PullOptions.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// PullOptions tune Pull.
type PullOptions struct {
	// Mirrors are Docker Hub mirrors, like Docker's "registry-mirrors":
	// "https://mirror.example.com", "http://10.0.0.5:5000" or a bare
	// "host:port" (https, except loopback hosts, which speak http). For
	// references to Docker Hub each is tried in order, at the same
	// repository path, before Docker Hub itself; a mirror that fails
	// only costs time. References to other registries ignore them.
	Mirrors []string
	// Platform picks the image from a multi-platform index. The zero
	// value means HostPlatform().
	Platform v1.Platform
	// Progress receives one line per layer (an updating bar if it is a
	// terminal) and which registry served the pull. nil: silent.
	Progress io.Writer
	// Timeout bounds each step that waits on a registry: connecting,
	// the answers up to and including the image config, and any stall
	// while layers download (a slow but moving download is fine). 0
	// means DefaultTimeout.
	Timeout time.Duration
}

// HostPlatform is the platform this program runs on, e.g. linux/amd64 or
// linux/arm64/v8: what Pull picks from a multi-platform image by default.
func HostPlatform() v1.Platform {
	p := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v" + goarm()
	}
	return p
}

// goarm is the GOARM this binary was built for ("7" if not recorded).
func goarm() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" && s.Value != "" {
				return strings.SplitN(s.Value, ",", 2)[0] // "7,softfloat"
			}
		}
	}
	return "7"
}

// Pull fetches ref (anything ParseReference accepts) from its registry, or
// a mirror, and stores it: config, layers (only those not stored yet), and
// the names ref and name@digest. By tag, the digest recorded is that of
// what the tag pointed at (for a multi-platform image, the index).
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	img, err := s.pull(ctx, r, opts)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r.Familiar(), err)
	}
	return img, nil
}

// source is one place to pull from: a mirror or the reference's registry.
type source struct {
	label string // "mirror 10.0.0.5:5000", "registry docker.io"
	reg   name.Registry
}

// pull tries each source in turn.
func (s *Store) pull(ctx context.Context, r Reference, opts PullOptions) (*Image, error) {
	if opts.Platform.OS == "" && opts.Platform.Architecture == "" {
		opts.Platform = HostPlatform()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	srcs, err := sources(r, opts.Mirrors, s.hub)
	if err != nil {
		return nil, err
	}
	prog := newProgress(opts.Progress)
	unlock, err := s.lock(layersLock, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var errs []error
	for i, src := range srcs {
		img, err := s.pullFrom(ctx, r, src, opts, prog)
		if err == nil {
			return img, nil
		}
		if ctx.Err() != nil { // cancelled by the caller: stop here
			return nil, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", src.label, err))
		if i+1 < len(srcs) {
			prog.printf("%s failed: %v; trying %s", src.label, err,
				srcs[i+1].label)
		}
	}
	return nil, errors.Join(errs...)
}

// sources lists where to pull r from: for Docker Hub, the mirrors first.
// hub, if set, replaces Docker Hub's address (tests).
func sources(r Reference, mirrors []string, hub string) ([]source, error) {
	var srcs []source
	if r.Domain == DockerHub {
		for _, m := range mirrors {
			reg, err := parseMirror(m)
			if err != nil {
				return nil, fmt.Errorf("mirror %q: %w", m, err)
			}
			srcs = append(srcs, source{label: "mirror " + reg.Name(), reg: reg})
		}
	}
	// go-containerregistry's Registry.Scheme() is "http" for loopback
	// hosts (localhost:PORT, *.localhost, 127.0.0.1, ::1) and RFC 1918
	// addresses: its ping then races https against plain http and uses
	// whichever answers. Every other registry is https only.
	host := r.Domain
	if host == DockerHub && hub != "" {
		host = hub
	}
	reg, err := name.NewRegistry(host)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %v: %w", r.Domain, err,
			ErrInvalidReference)
	}
	return append(srcs, source{label: "registry " + host, reg: reg}), nil
}

// parseMirror accepts "https://host[:port]", "http://host[:port]" or a bare
// "host[:port]". Like Docker, a mirror is a whole registry: no path.
func parseMirror(m string) (name.Registry, error) {
	host := m
	var opts []name.Option
	if strings.Contains(m, "://") {
		u, err := url.Parse(m)
		if err != nil {
			return name.Registry{}, err
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return name.Registry{}, fmt.Errorf("scheme %q: want http or https", u.Scheme)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return name.Registry{}, errors.New("a mirror is host[:port] only, no path")
		}
		host = u.Host
		if u.Scheme == "http" {
			opts = append(opts, name.Insecure)
		}
	}
	if host == "" {
		return name.Registry{}, errors.New("no host")
	}
	return name.NewRegistry(host, append(opts, name.StrictValidation)...)
}

// pullFrom pulls r from one source.
//
// Timeouts: ctx alone cannot express "answer within T" because the
// context go-containerregistry is given also governs every later layer
// download. So the first phase (ping, token, manifest, config) runs under
// a timer that cancels the context with a clear cause if it fires, and is
// stopped once the config is in; from then on the transport's stall guard
// (see newTransport) bounds each wait.
func (s *Store) pullFrom(parent context.Context, r Reference, src source,
	opts PullOptions, prog *progress) (*Image, error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	// pull prefixes errors with the source's name, so the cause need not.
	timer := time.AfterFunc(opts.Timeout, func() {
		cancel(fmt.Errorf("no answer within %s: %w", opts.Timeout,
			context.DeadlineExceeded))
	})
	defer timer.Stop()
	cause := func(err error) error {
		if parent.Err() == nil && context.Cause(ctx) != nil {
			return context.Cause(ctx) // the timer's, or the first failed layer's
		}
		return err
	}

	desc, err := remote.Get(r.remote(src.reg),
		remote.WithContext(ctx),
		remote.WithTransport(newTransport(opts.Timeout)),
		// Docker Hub and most registries want a bearer token even for
		// anonymous pulls; the keychain reads ~/.docker/config.json and
		// credential helpers, else pulls anonymously.
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithUserAgent("gocell"))
	if err != nil {
		return nil, cause(err)
	}
	img, err := pickImage(desc, opts.Platform)
	if err != nil {
		return nil, cause(err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, cause(fmt.Errorf("config: %w", err))
	}
	if !timer.Stop() {
		return nil, cause(ctx.Err())
	}
	if cf, err := img.ConfigFile(); err == nil && (cf.OS != opts.Platform.OS ||
		cf.Architecture != opts.Platform.Architecture) {
		prog.printf("warning: image is for %s/%s, not %s", cf.OS,
			cf.Architecture, opts.Platform.String())
	}
	prog.printf("pulling %s from %s (digest %s)", r.Familiar(), src.label,
		desc.Digest)
	if err := s.addLayers(ctx, cancel, img, openCompressed, prog); err != nil {
		return nil, cause(err)
	}
	names := []string{r.String()}
	if r.Digest == "" {
		names = append(names, r.WithDigest(desc.Digest.String()).String())
	}
	return s.addImage(raw, desc.Digest.String(), names)
}

// pickImage turns what a reference points at into one image: itself, or
// for a multi-platform index the entry for platform.
func pickImage(desc *remote.Descriptor, platform v1.Platform) (v1.Image, error) {
	switch {
	case desc.MediaType.IsSchema1():
		return nil, fmt.Errorf("%s: schema 1 manifests (images pushed "+
			"before 2017) are not supported", desc.MediaType)
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		return imageFromIndex(idx, platform)
	default:
		return desc.Image()
	}
}

// imageFromIndex picks platform's image from an index, descending into
// nested indexes.
func imageFromIndex(idx v1.ImageIndex, platform v1.Platform) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	d, err := choosePlatform(im.Manifests, platform)
	if err != nil {
		return nil, err
	}
	if d.MediaType.IsIndex() {
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		return imageFromIndex(child, platform)
	}
	return idx.Image(d.Digest)
}

// choosePlatform picks the first entry of an index that runs on want.
// OS and architecture must be equal; the variant too, when both sides
// name one, with the defaults filled in (arm64 means v8, arm means v7),
// since indexes are inconsistent about spelling them out. Entries without
// a platform (attestations, nested indexes) count only when alone.
func choosePlatform(ms []v1.Descriptor, want v1.Platform) (v1.Descriptor, error) {
	if len(ms) == 1 && ms[0].Platform == nil {
		return ms[0], nil
	}
	var have []string
	for _, m := range ms {
		if m.Platform == nil || !(m.MediaType.IsImage() || m.MediaType.IsIndex()) {
			continue
		}
		p := *m.Platform
		have = append(have, p.String())
		if p.OS != want.OS || p.Architecture != want.Architecture {
			continue
		}
		if want.Variant == "" ||
			variant(p) == variant(want) {
			return m, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no image for %s (the index has: %s): %w",
		want.String(), strings.Join(have, ", "), ErrNotFound)
}

// variant is p's CPU variant with the architecture's default filled in.
func variant(p v1.Platform) string {
	switch {
	case p.Variant != "":
		return p.Variant
	case p.Architecture == "arm64":
		return "v8"
	case p.Architecture == "arm":
		return "v7"
	}
	return ""
}

// newTransport is go-containerregistry's default HTTP transport with every
// wait bounded by timeout: dialing, the TLS handshake, waiting for response
// headers, and (stallGuard) each wait for more of a response body.
func newTransport(timeout time.Duration) http.RoundTripper {
	var t *http.Transport
	if base, ok := remote.DefaultTransport.(*http.Transport); ok {
		t = base.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	t.DialContext = (&net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
	}).DialContext
	t.TLSHandshakeTimeout = timeout
	t.ResponseHeaderTimeout = timeout
	return &stallGuard{next: t, timeout: timeout}
}

// stallGuard fails a response body read that waits longer than timeout,
// so that a registry (or Wi-Fi) that stops mid-layer does not hang the
// pull forever. Time spent by the caller between reads does not count.
type stallGuard struct {
	next    http.RoundTripper
	timeout time.Duration
}

// RoundTrip implements http.RoundTripper.
func (g *stallGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body := &guardedBody{rc: resp.Body, timeout: g.timeout}
	// Closing the body from the timer unblocks a pending Read.
	body.timer = time.AfterFunc(time.Hour, func() {
		body.stalled.Store(true)
		body.rc.Close()
	})
	body.timer.Stop()
	resp.Body = body
	return resp, nil
}

// guardedBody is a response body under a stallGuard.
type guardedBody struct {
	rc      io.ReadCloser
	timeout time.Duration
	timer   *time.Timer
	stalled atomic.Bool
}

// Read implements io.Reader.
func (b *guardedBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.timeout)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if b.stalled.Load() {
		return n, fmt.Errorf("registry sent nothing for %s: %w",
			b.timeout, context.DeadlineExceeded)
	}
	return n, err
}

// Close implements io.Closer.
func (b *guardedBody) Close() error {
	b.timer.Stop()
	return b.rc.Close()
}
