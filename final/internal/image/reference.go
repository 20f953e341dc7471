package image

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// DockerHub is the registry that names without a host refer to.
const DockerHub = "docker.io"

// Reference is a parsed image reference, normalized the way Docker does:
// "busybox" is docker.io/library/busybox:latest.
type Reference struct {
	// Domain is the registry host, with port if any: "docker.io",
	// "127.0.0.1:5000", "localhost:5000", "ghcr.io".
	Domain string
	// Path is the repository inside the registry: "library/busybox".
	Path string
	// Tag is the tag, "latest" when neither tag nor digest was given,
	// and "" when the reference is by digest.
	Tag string
	// Digest is "sha256:<hex>" for references by digest, else "".
	Digest string
}

// pathComponent is Docker's grammar for one slash-separated part of a
// repository path: lower-case alphanumerics joined by ".", "_", "__" or
// runs of "-". go-containerregistry accepts a little more ("a..b"); we
// hold names to the same rule Docker does, so both tools agree on them.
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// ParseReference parses a Docker-style reference: "busybox",
// "library/alpine:3.20", "ghcr.io/x/y:1", "host:5000/x/y@sha256:…".
// A reference with both a tag and a digest ("x:1@sha256:…") means the
// digest; the tag is dropped, as `docker pull` does. Errors wrap
// ErrInvalidReference.
func ParseReference(s string) (Reference, error) {
	bad := func(why string, args ...any) (Reference, error) {
		return Reference{}, fmt.Errorf("%q: %s: %w", s,
			fmt.Sprintf(why, args...), ErrInvalidReference)
	}
	if s == "" {
		return bad("empty reference")
	}
	if strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\n") {
		return bad("contains white space")
	}
	// go-containerregistry knows the rules for hosts, ports, tags and
	// digests, and rewrites docker.io to index.docker.io for the protocol.
	var ref name.Reference
	var err error
	if strings.Contains(s, "@") {
		ref, err = name.NewDigest(s)
	} else {
		ref, err = name.NewTag(s)
	}
	if err != nil {
		return bad("%v", err)
	}
	r := Reference{
		Domain: ref.Context().RegistryStr(),
		Path:   ref.Context().RepositoryStr(),
	}
	if r.Domain == name.DefaultRegistry {
		r.Domain = DockerHub
	}
	for _, c := range strings.Split(r.Path, "/") {
		if !pathComponent.MatchString(c) {
			return bad("repository path component %q is not "+
				"lower-case letters and digits joined by . _ or -", c)
		}
	}
	switch ref := ref.(type) {
	case name.Digest:
		r.Digest = ref.DigestStr()
	case name.Tag:
		r.Tag = ref.TagStr()
	}
	return r, nil
}

// Name is the repository without tag or digest:
// "docker.io/library/busybox".
func (r Reference) Name() string {
	return r.Domain + "/" + r.Path
}

// String is the normalized reference: "docker.io/library/busybox:latest"
// or "127.0.0.1:5000/x/y@sha256:…". It is the key the store files names
// under.
func (r Reference) String() string {
	return r.Name() + r.suffix()
}

// Familiar is the short form people type: "busybox:latest" for Docker Hub's
// library images, "user/app:1" for other Docker Hub images, String()
// otherwise.
func (r Reference) Familiar() string {
	if r.Domain != DockerHub {
		return r.String()
	}
	p := r.Path
	if rest, ok := strings.CutPrefix(p, "library/"); ok &&
		!strings.Contains(rest, "/") {
		p = rest
	}
	return p + r.suffix()
}

// suffix is ":tag" or "@digest".
func (r Reference) suffix() string {
	if r.Digest != "" {
		return "@" + r.Digest
	}
	return ":" + r.Tag
}

// WithDigest is the same repository, by digest.
func (r Reference) WithDigest(digest string) Reference {
	return Reference{Domain: r.Domain, Path: r.Path, Digest: digest}
}

// remote is the reference as go-containerregistry wants it, on the
// registry host given (the reference's own, or a mirror's).
func (r Reference) remote(reg name.Registry) name.Reference {
	repo := reg.Repo(r.Path)
	if r.Digest != "" {
		return repo.Digest(r.Digest)
	}
	return repo.Tag(r.Tag)
}
