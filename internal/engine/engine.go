// Package engine is prepull's one small interface to a container engine.
//
// Only docker.go imports the Docker client; moving to another client library
// (github.com/moby/moby/client) means rewriting that one file.
package engine

import (
	"context"
	"errors"
	"io"
)

// Errors returned by an Engine, to be tested with errors.Is. The concrete
// error keeps the engine's own message.
var (
	// ErrUnreachable means the engine itself could not be reached.
	ErrUnreachable = errors.New("docker engine unreachable")
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

// Engine is the set of engine operations prepull needs.
type Engine interface {
	// Ping checks that the engine answers and returns the negotiated API version.
	Ping(ctx context.Context) (apiVersion string, err error)
	// Login checks the credentials against the registry through the engine.
	// It stores nothing anywhere.
	Login(ctx context.Context, auth Auth) error
	// Pull pulls ref (a canonical name@digest reference), reads the whole
	// progress stream, calls progress for each event (progress may be nil),
	// and fails when the stream reports an error. auth may be nil (anonymous).
	Pull(ctx context.Context, ref string, auth *Auth, progress func(Progress)) error
	// RepoDigests returns the repo digests of the local image that ref names,
	// or an error wrapping ErrNotPresent when there is none.
	RepoDigests(ctx context.Context, ref string) ([]string, error)
	// Remove removes the local image that ref names (used by tests and benchmarks).
	Remove(ctx context.Context, ref string) error
	io.Closer
}
