// Package engine is prepull's one small interface to a container engine.
//
// Only docker.go imports the Docker client, and terminal.go Docker's
// progress renderer: moving to another client library
// (github.com/moby/moby/client) means rewriting those two files.
package engine

import "errors"

// Errors returned by an Engine, to be tested with errors.Is. The concrete
// error keeps the engine's own message.
var (
	// ErrUnreachable means the engine itself could not be reached.
	ErrUnreachable = errors.New("docker engine unreachable")
	// ErrRegistryUnreachable means the engine answered but could not
	// connect to the registry: a name that does not resolve, a connection
	// refused or reset, no route, a TLS handshake that timed out.
	ErrRegistryUnreachable = errors.New("registry unreachable")
	// ErrUnauthorized means the registry rejected the credentials.
	ErrUnauthorized = errors.New("registry rejected the credentials")
	// ErrNotFound means the registry has no such repository or digest.
	ErrNotFound = errors.New("repository or digest not found in the registry")
	// ErrNotPresent means the engine does not hold the image locally.
	ErrNotPresent = errors.New("image not present")
	// ErrCertificate means the registry's TLS certificate was not trusted.
	ErrCertificate = errors.New("registry certificate not trusted")
	// ErrNoSpace means the engine ran out of disk space.
	ErrNoSpace = errors.New("no space left on the engine's disk")
	// ErrPlatform means the image has no variant for the engine's platform:
	// the engine refused an index without one, or prepull's own check found
	// none (pull.ErrPlatform is this error).
	ErrPlatform = errors.New("the image cannot run on this proxy")
	// ErrInUse means the engine refused to remove an image that a
	// container uses.
	ErrInUse = errors.New("image is in use by a container")
	// ErrNameTaken means a local name prepull would give an image already
	// names another image.
	ErrNameTaken = errors.New("the name is another image's")
)

// Auth is what a registry login needs. It never leaves the process except
// towards the engine's API.
type Auth struct {
	ServerAddress string
	Username      string
	Password      string
	IdentityToken string
}

// Progress is one event of a pull's progress stream.
type Progress struct {
	Layer   string // layer ID, empty for whole-image messages
	Status  string // e.g. "Downloading", "Pull complete"
	Current int64  // bytes done for this layer, when known
	Total   int64  // layer size, when known
}

// Platform is the operating system and CPU architecture of an image, or of
// the images an engine runs, named as the OCI image specification names
// them: "linux", "amd64", "arm64", variant "v8".
type Platform struct {
	OS           string
	Architecture string
	Variant      string // empty when not given
}

// String is "os/architecture" or "os/architecture/variant".
func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Distribution is what the registry says of a reference, asked through the
// engine without pulling anything.
type Distribution struct {
	MediaType string // of the manifest or index the reference names
	Digest    string
	// Platforms are the platforms the reference offers: one for an image
	// manifest, one per entry for an index, as the engine reports them
	// (attestation entries of an index included, as unknown/unknown).
	// Empty when the engine could not tell.
	Platforms []Platform
}

// ImageUse is what the engine says of a local image before the agent
// removes it: its ID, every tag and digest reference it has, and the
// containers, running or stopped, created from it.
type ImageUse struct {
	ID         string
	References []string // tags and digest references, as the engine lists them
	Containers []string // IDs of the containers made from the image (or from an image built on it)
}
