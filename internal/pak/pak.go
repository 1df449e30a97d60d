// Package pak reads VCF Operations management packs (.pak files) and the
// adapter archives inside them, and tells which container image a pack's
// adapter runs.
//
// The reader touches only what it needs: the outer central directory, the
// outer manifest.txt and the inner adapter archive, which is small.
// It never extracts to disk and never reads content/.
package pak

import (
	"errors"
	"fmt"
	"strings"

	// Aliased: display is this package's own quoting of member names.
	safetext "github.com/prepull/prepull/internal/display"
)

// SlimSuffix ends the name of a file that holds only what a proxy needs of
// a pak (its .conf and manifest: prepull slim, prepull keep, remote --keep),
// so that *.pak only ever names full paks, which VCF Operations installs.
// The agent takes such files beside .pak files.
const SlimSuffix = ".prepull"

// ErrInvalid is wrapped by every error that means the input does not name a
// pullable image: not a pak, no .conf, a bad or missing DIGEST, and so on.
var ErrInvalid = errors.New("not a pullable pack")

// ErrClassic is wrapped (together with ErrInvalid) when the pack is a classic,
// non-container pack that references no image.
var ErrClassic = errors.New("not a containerized management pack (classic adapter, no container image)")

// ErrNoRegistry is wrapped (together with ErrInvalid) when the .conf has no
// REGISTRY line and no default registry was given.
var ErrNoRegistry = errors.New("no REGISTRY in the pack and no default_registry configured")

// Error is a read error that names the file and, where known, the archive
// members leading to the problem, e.g.
// "MyAdapter_1.0.0.pak: adapter.zip: MyAdapter.conf: DIGEST is missing".
type Error struct {
	File    string   // the path as given, or "-" for standard input
	Members []string // outer to inner member names, may be empty
	Err     error    // what is wrong; wraps ErrInvalid
}

// Error returns the file, the member names and the problem, joined by ": ".
// A file name or member name that is not plain printable text is quoted.
func (e *Error) Error() string {
	parts := make([]string, 0, len(e.Members)+2)
	parts = append(parts, safetext.Text(e.File))
	for _, m := range e.Members {
		parts = append(parts, display(m))
	}
	msg := "unknown error"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return strings.Join(append(parts, msg), ": ")
}

// Unwrap returns the problem, so that errors.Is finds ErrInvalid and the
// other sentinel errors.
func (e *Error) Unwrap() error { return e.Err }

// invalid builds an *Error whose message is the formatted text and which
// wraps ErrInvalid. The format may itself use %w.
func invalid(file string, members []string, format string, args ...any) *Error {
	return &Error{File: file, Members: members, Err: invalidf(format, args...)}
}

// invalidf formats an error that wraps ErrInvalid without showing its text.
// The format may itself use %w.
func invalidf(format string, args ...any) error {
	return fmt.Errorf(format+"%w", append(args, errSilent)...)
}

// errSilent wraps ErrInvalid without adding text to the message.
var errSilent = silentError{}

type silentError struct{}

func (silentError) Error() string { return "" }
func (silentError) Unwrap() error { return ErrInvalid }

// Image is what a pack references, exactly as the pack states it.
type Image struct {
	File        string `json:"file"`                   // the path as given, or "-"
	Format      string `json:"format"`                 // "pak", "adapter.zip" or "conf"
	PackName    string `json:"pack_name,omitempty"`    // manifest "name", when read from a pak
	PackVersion string `json:"pack_version,omitempty"` // manifest "version", when read from a pak
	AdapterKind string `json:"adapter_kind"`
	ConfPath    string `json:"conf"`       // member path of the .conf, e.g. "adapter.zip/MyAdapter.conf"
	Registry    string `json:"registry"`   // REGISTRY as written; empty when the pack leaves it out
	Repository  string `json:"repository"` // REPOSITORY without its leading slash
	Digest      string `json:"digest"`     // DIGEST, "sha256:" + 64 lower-case hex
}

// Target is an Image with its registry settled and its full reference built.
// For a pack whose REGISTRY is a Docker Hub namespace (SDK 0.x: REGISTRY=user,
// REPOSITORY=/repo), Registry is DockerHub and Repository user/repo, while
// the embedded Image keeps the lines as written.
type Target struct {
	Image
	Registry       string   `json:"registry"`           // the registry the engine pulls from and whose login is used
	RegistrySource string   `json:"registry_source"`    // "pak" or "default"
	Repository     string   `json:"repository"`         // the repository on that registry
	Reference      string   `json:"reference"`          // REGISTRY + REPOSITORY + "@" + DIGEST, as the proxy builds it
	Warnings       []string `json:"warnings,omitempty"` // what the pack most likely gets wrong, e.g. the SDK 1.x localhost mangling
}
