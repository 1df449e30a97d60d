package agent

import (
	"errors"

	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pull"
)

// The kinds of failure a last_error is (PakState.ErrorKind,
// ImageState.ErrorKind), so that what reads the state (prepull keep) can
// answer with the one-shot's exit code for it without parsing text. Empty
// is any other failure.
const (
	ErrorCredentials = "credentials" // the registry rejected the credentials
	ErrorNotFound    = "not-found"   // the registry has no such repository or digest
	ErrorPlatform    = "platform"    // the image has no variant for the engine's platform
	ErrorEngine      = "engine"      // Docker Engine could not be reached
	ErrorRegistry    = "registry"    // Docker Engine could not connect to the registry
	ErrorConfig      = "config"      // the configuration is at fault (default_registry)
)

// errorKind returns the kind of failure err is.
func errorKind(err error) string {
	switch {
	case errors.Is(err, engine.ErrUnauthorized):
		return ErrorCredentials
	case errors.Is(err, engine.ErrNotFound):
		return ErrorNotFound
	case errors.Is(err, pull.ErrPlatform):
		return ErrorPlatform
	case errors.Is(err, engine.ErrUnreachable):
		return ErrorEngine
	case errors.Is(err, engine.ErrRegistryUnreachable):
		return ErrorRegistry
	}
	return ""
}
