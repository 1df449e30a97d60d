package pull

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
)

// LoginError is a registry's refusal of a login, or of a request made with
// it: it names the user and where the login came from, never the secret.
type LoginError struct {
	Registry string
	Username string
	Source   string // where the login came from, as Credential.Source says
	Err      error
}

func (e *LoginError) Error() string {
	return fmt.Sprintf("login to %s as %q (credentials from %s): %v", e.Registry, e.Username, e.Source, e.Err)
}

func (e *LoginError) Unwrap() error { return e.Err }

// Cause says in a few words why err failed an operation, the cause first,
// for the one line a terminal shows per failure: "credentials rejected:
// user "robot" at harbor.example.com (credentials from config)", "manifest
// unknown", "pull stalled: no progress for 30s". It leaves out the
// reference, which the line shows already; the error itself, the whole
// chain, is for --verbose, --json and the logs. Advice the chain ends with
// (how to add a login, where a CA goes) is kept: it is the one thing to do.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	if s, ok := refusalCause(err); ok {
		return s
	}
	msg := err.Error()
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return notFound(msg)
	case errors.Is(err, engine.ErrCertificate):
		// explainCertificate's "registry H presents what: fix" comes first.
		if i := strings.Index(msg, "registry "); i >= 0 && strings.Contains(msg[i:], " presents ") {
			return "certificate not trusted: " + first(msg[i:], 2)
		}
		return "certificate not trusted: " + last(tail(msg, engine.ErrCertificate.Error()), 2)
	case errors.Is(err, engine.ErrNoSpace):
		return engine.ErrNoSpace.Error()
	case errors.Is(err, ErrStalled):
		return ErrStalled.Error() + ": " + tail(msg, ErrStalled.Error())
	case errors.Is(err, ErrNotVerified):
		return ErrNotVerified.Error()
	case errors.Is(err, engine.ErrUnreachable):
		return engine.ErrUnreachable.Error() + ": " + last(tail(msg, engine.ErrUnreachable.Error()), 2)
	case errors.Is(err, pak.ErrInvalid), errors.Is(err, config.ErrInvalid), errors.Is(err, credentials.ErrUnavailable):
		return msg
	case errors.Is(err, ErrTimedOut):
		return "timed out: " + last(msg, 2)
	}
	return last(msg, 2)
}

// refusalCause is Cause for an error that says who refused what: an
// unreachable registry, a missing platform variant, a login required or
// credentials rejected. ok is false for any other error.
func refusalCause(err error) (cause string, ok bool) {
	msg := err.Error()
	var (
		login    *LoginError
		platform *PlatformError
		anon     *anonymousRefused
		unreach  *RegistryUnreachableError
	)
	switch {
	case errors.As(err, &unreach):
		return unreach.Error(), true
	case errors.As(err, &platform):
		need := platform.Need.OS + "/" + platform.Need.Architecture
		have := make([]string, len(platform.Have))
		for i, p := range platform.Have {
			have[i] = p.String()
		}
		return fmt.Sprintf("no %s variant: built for %s only (rebuild with docker buildx build --platform %s)", need, strings.Join(have, ", "), need), true
	case errors.Is(err, engine.ErrPlatform):
		return "no variant for this engine's platform: " + tail(msg, engine.ErrPlatform.Error()), true
	case errors.As(err, &anon):
		return "login required: " + between(anon.msg, "(", ")"), true
	case errors.Is(err, engine.ErrUnauthorized) && errors.As(err, &login):
		s := fmt.Sprintf("credentials rejected: user %q at %s (credentials from %s)", login.Username, login.Registry, login.Source)
		if _, note, ok := strings.Cut(msg, "; note: "); ok {
			s += "; note: " + note
		}
		return s, true
	case errors.Is(err, engine.ErrUnauthorized):
		return "credentials rejected", true
	}
	return "", false
}

// notFound names what the registry does not have, in its own words where
// it says them.
func notFound(msg string) string {
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "manifest unknown"):
		return "manifest unknown: the registry has no such digest"
	case strings.Contains(low, "name unknown"), strings.Contains(low, "repository name not known"):
		return "repository unknown: the registry has no such repository"
	case strings.Contains(low, "pull access denied"), strings.Contains(low, "requested access to the resource is denied"):
		return "not found: the registry has no such repository or digest, or hides it from this user"
	}
	return "not found: the registry has no such repository or digest"
}

// tail returns what follows the first sep in msg, or msg.
func tail(msg, sep string) string {
	if _, after, ok := strings.Cut(msg, sep); ok {
		return strings.TrimPrefix(after, ": ")
	}
	return msg
}

// first returns the first n parts of a chain of "a: b: c" messages.
func first(msg string, n int) string {
	parts := strings.SplitN(msg, ": ", n+1)
	return strings.Join(parts[:min(n, len(parts))], ": ")
}

// between returns what lies between the first open and the last close, or s.
func between(s, open, close string) string {
	i, j := strings.Index(s, open), strings.LastIndex(s, close)
	if i < 0 || j <= i {
		return s
	}
	return s[i+len(open) : j]
}

// last returns the last n parts of a chain of "a: b: c" messages: the
// system's own words (dial unix /var/run/docker.sock: connect: no such file
// or directory becomes "connect: no such file or directory").
func last(msg string, n int) string {
	parts := strings.Split(msg, ": ")
	if len(parts) <= n {
		return msg
	}
	return strings.Join(parts[len(parts)-n:], ": ")
}
