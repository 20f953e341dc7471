package image

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseReference(t *testing.T) {
	dg := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct{ in, want, familiar string }{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/alpine:3.20", "docker.io/library/alpine:3.20", "alpine:3.20"},
		{"docker.io/user/app", "docker.io/user/app:latest", "user/app:latest"},
		{"index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"ghcr.io/x/y:1", "ghcr.io/x/y:1", "ghcr.io/x/y:1"},
		{"localhost/x", "localhost/x:latest", "localhost/x:latest"},
		{"localhost:5000/x/y", "localhost:5000/x/y:latest", "localhost:5000/x/y:latest"},
		{"127.0.0.1:5000/x/y:1", "127.0.0.1:5000/x/y:1", "127.0.0.1:5000/x/y:1"},
		{"host:5000/x/y@" + dg, "host:5000/x/y@" + dg, "host:5000/x/y@" + dg},
		{"busybox@" + dg, "docker.io/library/busybox@" + dg, "busybox@" + dg},
		// Tag and digest: the digest wins, as with docker pull.
		{"busybox:1@" + dg, "docker.io/library/busybox@" + dg, "busybox@" + dg},
		{"a_b/c__d/e-f--g/h.i:Tag_1.x-y", "docker.io/a_b/c__d/e-f--g/h.i:Tag_1.x-y", "a_b/c__d/e-f--g/h.i:Tag_1.x-y"},
	} {
		r, err := ParseReference(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, r.String(), tc.in)
		assert.Equal(t, tc.familiar, r.Familiar(), tc.in)
	}
	r, err := ParseReference("127.0.0.1:5000/x/y:1")
	require.NoError(t, err)
	assert.Equal(t, Reference{Domain: "127.0.0.1:5000", Path: "x/y", Tag: "1"}, r)
	assert.Equal(t, "127.0.0.1:5000/x/y", r.Name())
}

func TestParseReferenceInvalid(t *testing.T) {
	for _, in := range []string{
		"", " busybox", "busy box", "Busybox", "busybox:", ":tag", "x:a:b",
		"x@sha256:abc", "x@md5:" + strings.Repeat("a", 32), "a//b", "-a",
		"a-", "a..b", "host:5000/", "x:" + strings.Repeat("t", 129),
		"x/../y", "x@@sha256:" + strings.Repeat("a", 64),
	} {
		_, err := ParseReference(in)
		require.ErrorIs(t, err, ErrInvalidReference, "%q", in)
		assert.Contains(t, err.Error(), "invalid reference", in)
	}
}

// go-containerregistry, not this package, decides http vs https; the
// design relies on loopback registries being plain http, so pin it.
func TestLoopbackIsPlainHTTP(t *testing.T) {
	for host, scheme := range map[string]string{
		"127.0.0.1:5000":   "http",
		"localhost:5000":   "http",
		"localhost":        "https", // no port: ggcr only matches "localhost:"
		"[::1]:5000":       "http",
		"docker.io":        "https",
		"registry.example": "https",
	} {
		srcs, err := sources(Reference{Domain: host, Path: "x", Tag: "1"}, nil, "")
		require.NoError(t, err)
		assert.Equal(t, scheme, srcs[0].reg.Scheme(), host)
	}
}

func TestParseMirror(t *testing.T) {
	for in, want := range map[string]string{
		"https://mirror.gcr.io":  "https://mirror.gcr.io",
		"http://10.1.2.3:5000/":  "http://10.1.2.3:5000",
		"http://mirror.lan:5000": "http://mirror.lan:5000",
		"127.0.0.1:5001":         "http://127.0.0.1:5001",
		"mirror.example.com":     "https://mirror.example.com",
	} {
		reg, err := parseMirror(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, reg.Scheme()+"://"+reg.Name(), in)
	}
	for _, in := range []string{"", "ftp://x", "https://x/path", "https://", "https://u:p@x"} {
		_, err := parseMirror(in)
		assert.Error(t, err, in)
	}
}

func TestChoosePlatform(t *testing.T) {
	m := func(os, arch, variant string) v1.Descriptor {
		return v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json",
			Platform: &v1.Platform{OS: os, Architecture: arch, Variant: variant}}
	}
	ms := []v1.Descriptor{
		m("unknown", "unknown", ""), // an attestation
		m("linux", "amd64", ""),
		m("linux", "arm", "v6"),
		m("linux", "arm", "v7"),
		m("linux", "arm64", ""), // no variant: means v8
	}
	for want, idx := range map[string]int{
		"linux/amd64": 1, "linux/arm/v7": 3, "linux/arm/v6": 2,
		"linux/arm64/v8": 4, "linux/arm64": 4, "linux/arm": 2,
	} {
		p, err := v1.ParsePlatform(want)
		require.NoError(t, err)
		d, err := choosePlatform(ms, *p)
		require.NoError(t, err, want)
		assert.Equal(t, ms[idx].Platform, d.Platform, want)
	}
	_, err := choosePlatform(ms, v1.Platform{OS: "linux", Architecture: "s390x"})
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "no image for linux/s390x (the index has: unknown/unknown, linux/amd64, linux/arm/v6")
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B",
		1000: "1.0 kB", 1_234_567: "1.2 MB", 3_400_000_000: "3.4 GB"} {
		assert.Equal(t, want, humanSize(n))
	}
}
