package pak

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Resolve settles the registry and builds the full image reference, exactly
// as the proxy does: REGISTRY + REPOSITORY + "@" + DIGEST.
//
// The pack's REGISTRY is used when present (RegistrySource "pak"), otherwise
// defaultRegistry (RegistrySource "default"). When both are empty the error
// wraps ErrNoRegistry and ErrInvalid and names the .conf. A malformed
// defaultRegistry gives a plain error that does not wrap ErrInvalid, since the
// configuration, not the pack, is at fault; ValidateRegistry checks it early.
//
// A REGISTRY without a dot or a port that is not localhost is a Docker Hub
// namespace, as SDK 0.x writes for a Docker Hub repository user/repo
// (REGISTRY=user, REPOSITORY=/repo): the reference is then user/repo@DIGEST,
// Registry is DockerHub (whose login applies) and Repository user/repo.
//
// The result is checked with github.com/distribution/reference: a host, a
// lower-case path and a sha256 digest, nothing else. Target.Warnings says
// what the pack gets wrong without being unreadable: the SDK 1.x localhost
// mangling.
func (img Image) Resolve(defaultRegistry string) (Target, error) {
	members := img.confMembers()
	registry, source := img.Registry, "pak"
	if registry == "" {
		registry, source = defaultRegistry, "default"
		if registry == "" {
			return Target{}, &Error{File: img.File, Members: members, Err: fmt.Errorf("%w%w", ErrNoRegistry, errSilent)}
		}
		if err := ValidateRegistry(registry); err != nil {
			return Target{}, fmt.Errorf("default_registry %w", err)
		}
	} else if err := validatePakRegistry(registry); err != nil {
		return Target{}, invalid(img.File, members, "REGISTRY %w", err)
	}
	if err := checkRepository(img.Repository); err != nil {
		return Target{}, invalid(img.File, members, "REPOSITORY %w", err)
	}
	if err := checkDigest(img.Digest); err != nil {
		return Target{}, invalid(img.File, members, "DIGEST %w", err)
	}

	t := Target{Image: img, Registry: registry, RegistrySource: source, Repository: img.Repository}
	if IsNamespace(registry) {
		t.Registry, t.Repository = DockerHub, registry+"/"+img.Repository
	}
	t.Reference = registry + "/" + img.Repository + "@" + img.Digest
	if err := checkReference(t.Reference, t.Registry, t.Repository, img.Digest); err != nil {
		return Target{}, invalid(img.File, members, "image reference %s: %w", quote(t.Reference), err)
	}
	if w := mangledLocalhost(registry, img.Repository); w != "" {
		t.Warnings = append(t.Warnings, w)
	}
	return t, nil
}

// validatePakRegistry checks a pack's REGISTRY: a registry host, or a Docker
// Hub namespace.
func validatePakRegistry(registry string) error {
	if IsNamespace(registry) {
		return nil
	}
	if registry != "" && !strings.ContainsAny(registry, ".:/") && registry != "localhost" && !hasSpaceOrControl(registry) {
		return fmt.Errorf("%s is neither a registry host (it needs a dot or a port, or must be localhost) nor a Docker Hub namespace (lower-case letters, digits and separators)", quote(registry))
	}
	return ValidateRegistry(registry)
}

// mangledLocalhost returns a warning when REGISTRY and REPOSITORY look like
// SDK 1.x's mangling of a registry given as HOST:PORT/path with a host name
// without a dot (localhost:5000/team/app): it takes HOST for a Docker Hub
// repository and ":PORT/path" for a tag, and writes
// REGISTRY=registry.hub.docker.com, REPOSITORY=/HOST. Empty otherwise.
func mangledLocalhost(registry, repository string) string {
	if !strings.EqualFold(registry, "registry.hub.docker.com") || strings.Contains(repository, "/") {
		return ""
	}
	return fmt.Sprintf("REGISTRY=%s with the one-component REPOSITORY=/%s is what Integration SDK 1.x writes when the registry was written as %s:PORT/...: "+
		"it takes %s for a Docker Hub repository and cuts \":PORT/...\" off as a tag, so the pak names the Docker Hub image %s/%s, surely not the adapter's. "+
		"Rebuild the pak with the registry written as 127.0.0.1:PORT/... or with a host name that has a dot (mp-build -r, or container_repository in the project's config.json)",
		registry, repository, repository, repository, registry, repository)
}

// confMembers returns the member names leading to the image's .conf, for
// error messages.
func (img Image) confMembers() []string {
	switch img.Format {
	case FormatPak:
		if i := strings.LastIndex(img.ConfPath, "/"); i > 0 {
			return []string{img.ConfPath[:i], img.ConfPath[i+1:]}
		}
	case FormatAdapterZip:
		if img.ConfPath != "" {
			return []string{img.ConfPath}
		}
	}
	return nil
}

// checkReference parses the full reference and checks that it says exactly
// registry, repository and digest, with no tag and no normalisation surprise.
// registry is the host the engine will contact (DockerHub for a namespace)
// and repository the path on it.
func checkReference(ref, registry, repository, dgst string) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return err
	}
	if _, tagged := named.(reference.Tagged); tagged {
		return errors.New("must not carry a tag")
	}
	canonical, ok := named.(reference.Canonical)
	if !ok || canonical.Digest().String() != dgst {
		return errors.New("does not end in the pack's digest")
	}
	if !sameDomain(reference.Domain(named), registry) {
		return fmt.Errorf("names registry %s, not %s", quote(reference.Domain(named)), quote(registry))
	}
	path := reference.Path(named)
	if path != repository && !(reference.Domain(named) == "docker.io" && path == "library/"+repository) {
		return fmt.Errorf("names repository %s, not %s", quote(path), quote(repository))
	}
	return nil
}

// sameDomain tells whether the domain that reference parsing found is the
// registry as written: github.com/distribution/reference turns Docker Hub's
// legacy name index.docker.io into docker.io and keeps every other host.
// Which hosts mean the same registry is CanonicalRegistry's business.
func sameDomain(parsed, registry string) bool {
	return parsed == registry || (parsed == DockerHub && IsDockerHub(registry))
}

// ValidateRegistry checks that host is a registry host with an optional port,
// as REGISTRY or a configured default registry must be: e.g.
// "harbor.example.com", "harbor.example.com:8443", "docker.io",
// "localhost:5000" or "[::1]:5000". URLs, paths, spaces and anything Docker
// would read as a Docker Hub namespace are refused. The error text starts with
// the quoted host.
func ValidateRegistry(host string) error {
	q := quote(host)
	if err := checkName(host); err != nil {
		return err
	}
	switch {
	case strings.Contains(host, "://"):
		return fmt.Errorf("%s must be a host with an optional port, not a URL", q)
	case strings.Contains(host, "/"):
		return fmt.Errorf("%s must be a host with an optional port, without a path (the path belongs in REPOSITORY)", q)
	case strings.Contains(host, "@"):
		return fmt.Errorf("%s must not contain @", q)
	case !strings.ContainsAny(host, ".:") && host != "localhost":
		return fmt.Errorf("%s is not a registry host: it needs a dot or a port, or must be localhost", q)
	}
	named, err := reference.ParseNormalizedNamed(host + "/x")
	if err != nil {
		return fmt.Errorf("%s is not a valid registry host: %w", q, err)
	}
	if !sameDomain(reference.Domain(named), host) {
		return fmt.Errorf("%s is not a valid registry host", q)
	}
	if i := strings.LastIndex(host, ":"); i > strings.LastIndex(host, "]") {
		port, err := strconv.Atoi(host[i+1:])
		if err != nil || port < 1 || port > 65535 {
			return fmt.Errorf("%s has an invalid port", q)
		}
	}
	return nil
}

// checkName checks what a registry host and a repository path must both
// be: not empty, not longer than a reference allows, without a space or a
// control character.
func checkName(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > reference.RepositoryNameTotalLengthMax:
		return fmt.Errorf("%s is longer than %d bytes", quote(s), reference.RepositoryNameTotalLengthMax)
	case hasSpaceOrControl(s):
		return fmt.Errorf("%s contains a space or control character", quote(s))
	}
	return nil
}

// checkRepository checks a repository path (without its leading slash) for
// the shape a registry accepts and for anything that could inject: it must be
// lower-case path components of [a-z0-9] joined by ".", "_", "__" or "-",
// separated by "/".
func checkRepository(repo string) error {
	q := quote(repo)
	if err := checkName(repo); err != nil {
		return err
	}
	switch {
	case strings.Contains(repo, "@"):
		return fmt.Errorf("%s must not contain @ (the digest belongs in DIGEST)", q)
	case strings.Contains(repo, ":"):
		return fmt.Errorf("%s must not contain : (no tag, no port)", q)
	case strings.ToLower(repo) != repo:
		return fmt.Errorf("%s must be lower case", q)
	}
	for _, part := range strings.Split(repo, "/") {
		switch part {
		case "":
			return fmt.Errorf("%s has an empty path component", q)
		case ".", "..":
			return fmt.Errorf("%s must not contain . or .. path components", q)
		}
	}
	for _, r := range repo {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/", r)) {
			return fmt.Errorf("%s has %s, not allowed in a repository path", q, quote(string(r)))
		}
	}
	named, err := reference.ParseNormalizedNamed("registry.invalid/" + repo)
	if err != nil {
		return fmt.Errorf("%s is not a valid repository path: %w", q, err)
	}
	if !reference.IsNameOnly(named) || reference.Path(named) != repo {
		return fmt.Errorf("%s is not a valid repository path", q)
	}
	return nil
}

// checkDigest checks that d is "sha256:" followed by 64 lower-case hex digits.
func checkDigest(d string) error {
	q := quote(d)
	alg, hex, ok := strings.Cut(d, ":")
	switch {
	case !ok:
		return fmt.Errorf("%s has no sha256: prefix", q)
	case strings.EqualFold(alg, "sha256") && alg != "sha256":
		return fmt.Errorf("%s must start with sha256: in lower case", q)
	case alg != "sha256":
		return fmt.Errorf("%s uses algorithm %s, want sha256", q, quote(alg))
	case len(hex) != 64:
		return fmt.Errorf("%s has %d characters after sha256:, want 64 hex digits", q, len(hex))
	}
	for _, r := range hex {
		switch {
		case r >= '0' && r <= '9' || r >= 'a' && r <= 'f':
		case r >= 'A' && r <= 'F':
			return fmt.Errorf("%s must use lower-case hex digits", q)
		default:
			return fmt.Errorf("%s has %s, not a hex digit", q, quote(string(r)))
		}
	}
	parsed, err := digest.Parse(d)
	if err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	if parsed.Algorithm() != digest.SHA256 {
		return fmt.Errorf("%s uses algorithm %s, want sha256", q, quote(string(parsed.Algorithm())))
	}
	return nil
}

// hasSpaceOrControl tells whether s holds white space, control characters or
// invalid UTF-8 (which would show as U+FFFD).
func hasSpaceOrControl(s string) bool {
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}
