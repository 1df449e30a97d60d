package pak

import (
	"strings"

	"github.com/distribution/reference"
)

// This file is the one place that decides which registry a host name, or a
// pack's REGISTRY, means. The reference check, the configuration's
// registries list, the credential lookup and the certs.d folder all ask
// here; the image reference never changes: it stays exactly what the pack
// says, since that is what the proxy looks up.

// DockerHub is Docker Hub's canonical name, the one Docker Engine uses for
// it (index.docker.io becomes docker.io in its references) and the certs.d
// folder Docker Engine's containerd image store reads for it.
const DockerHub = "docker.io"

// dockerHubAliases are the other names a pack or a configuration may give
// Docker Hub: its legacy index, its API host, and the host SDK 1.x writes as
// REGISTRY for every Docker Hub repository.
var dockerHubAliases = []string{"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

// CanonicalRegistry returns the canonical form of a registry host[:port]:
// lower case (host names are case-insensitive), and DockerHub for every name
// of Docker Hub. Two hosts mean the same registry when their canonical forms
// are equal.
func CanonicalRegistry(host string) string {
	h := strings.ToLower(strings.TrimSpace(host))
	if h == DockerHub {
		return h
	}
	for _, alias := range dockerHubAliases {
		if h == alias {
			return DockerHub
		}
	}
	return h
}

// IsNamespace reports whether a pack's REGISTRY is a Docker Hub namespace
// rather than a registry host: no dot, no port, not localhost, and shaped
// like a repository path component. Docker reads such a first component as
// a path on Docker Hub, and so does the proxy, which concatenates REGISTRY
// and REPOSITORY. SDK 0.x writes one for every Docker Hub repository.
func IsNamespace(registry string) bool {
	return registry != "" && !strings.ContainsAny(registry, ".:/") && registry != "localhost" &&
		checkRepository(registry) == nil
}

// IsDockerHub reports whether host is one of Docker Hub's names.
func IsDockerHub(host string) bool { return CanonicalRegistry(host) == DockerHub }

// SameRegistry reports whether hosts a and b name the same registry.
func SameRegistry(a, b string) bool { return CanonicalRegistry(a) == CanonicalRegistry(b) }

// SameImage reports whether references a and b name the same image in
// Docker Engine, however a pack spells them: every name of Docker Hub is
// docker.io (CanonicalRegistry), a one-component Docker Hub repository is
// under library/, host names are case-insensitive. Unparsable references
// are the same only when equal.
func SameImage(a, b string) bool { return normalReference(a) == normalReference(b) }

// SameRepository reports whether references a and b, their tags and
// digests aside, name the same repository as SameImage compares them.
func SameRepository(a, b string) bool {
	return normalRepository(a) == normalRepository(b)
}

// normalReference returns ref in the one spelling SameImage compares: its
// repository as normalRepository gives it, then its tag and digest as
// written.
func normalReference(ref string) string {
	name, digest, hasDigest := strings.Cut(ref, "@")
	s := normalRepository(name)
	if named, err := reference.ParseNormalizedNamed(name); err == nil {
		if t, ok := named.(reference.Tagged); ok {
			s += ":" + t.Tag()
		}
	}
	if hasDigest {
		s += "@" + digest
	}
	return s
}

// normalRepository returns the repository of ref (tag and digest dropped)
// in the one spelling SameRepository compares. An unparsable one is
// returned as written.
func normalRepository(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	domain, path := CanonicalRegistry(reference.Domain(named)), reference.Path(named)
	if domain == DockerHub && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	return domain + "/" + path
}
