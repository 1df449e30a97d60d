package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
)

// This file classifies engine and registry errors by their text. It must not
// import the Docker client: docker.go's classifyAPI asks classifyText first,
// since the text tells more than the engine's HTTP status (which differs
// between engine versions and calls, and a 404 means another thing for each
// call), and falls back to the status only when the text says nothing known.
//
// The strings below are what Docker Engine 20.10 (API 1.41), 26.1 and 28.5,
// each with the classic and the containerd image store, and a distribution
// 2.8 registry really produced; the tests keep them verbatim.
// Errors returned by the POST that starts a pull or a login look like
// "Error response from daemon: <message>"; errors met after the pull started
// arrive inside the progress stream as "errorDetail" with the bare message.

// errTemporary marks an error as worth retrying without changing its message.
// docker.go adds it where the engine's HTTP status alone says so (503, 429).
var errTemporary = errors.New("temporary engine error")

// marked is err, with errors.Is also matching kind; its message is err's.
type marked struct {
	err  error
	kind error
}

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.err, m.kind} }

// markTemporary returns err marked as transient, keeping its message.
func markTemporary(err error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, kind: errTemporary}
}

// wrap returns an error that matches sentinel with errors.Is and whose message
// is the sentinel's followed by the engine's own message.
func wrap(sentinel, err error) error {
	if errors.Is(err, sentinel) {
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// Message fragments, lower-cased, that name a sentinel.
var (
	certificateText = []string{
		"x509:", // x509: certificate signed by unknown authority
		"tls: failed to verify certificate",
		"certificate signed by unknown authority",
		"certificate is not valid",
		"certificate has expired",
	}
	noSpaceText = []string{
		"no space left on device",
		"disk quota exceeded",
	}
	// platformText is an index with no image for the engine's platform:
	// "no matching manifest for linux/amd64 in the manifest list entries"
	// (the classic store, in the progress stream; 28.5's containerd store
	// adds ": no match for platform in manifest: not found"), "no match for
	// platform in manifest: not found" (26.1's containerd store). It comes
	// before the not-found texts it ends with.
	platformText = []string{
		"no matching manifest for",
		"no match for platform in manifest",
	}
	// missingLoginText is a registry asking for credentials the pull did
	// not carry: unauthorized even where "pull access denied" comes first,
	// as on the containerd image store ("pull access denied, repository does
	// not exist or may require authorization: authorization failed: no basic
	// auth credentials").
	missingLoginText = []string{
		"no basic auth credentials", // anonymous pull from an htpasswd registry
	}
	unauthorizedText = []string{
		"unauthorized",            // unauthorized: authentication required; ... failed with status: 401 Unauthorized
		"authentication required", // (same)
		"incorrect username or password",
	}
	notFoundText = []string{
		"manifest unknown", // manifest for X not found: manifest unknown: manifest unknown
		"name unknown",
		"blob unknown",
		"repository name not known",
		"not found: manifest",
	}
	// notFoundSuffix ends the containerd image store's "failed to resolve
	// reference \"R@D\": R@D: not found" (26.1, 28.5), whose words alone
	// are too common to match anywhere in a message.
	notFoundSuffix = ": not found"
	// pullAccessDenied is what the engine says both for bad credentials and for
	// a repository that does not exist, on registries that hide the difference:
	// "pull access denied for X, repository does not exist or may require
	// 'docker login': denied: requested access to the resource is denied".
	pullAccessDenied = []string{
		"pull access denied",
		"requested access to the resource is denied",
	}
)

// classifyText wraps err with the sentinel that its message names, or returns
// err unchanged when the message names none.
//
// loggedIn tells whether the pull carried credentials. The caller logs in
// first, so a "pull access denied" after a successful login means the
// credentials are good and the registry hides a repository (or digest) that
// is not there, or not visible to this user: ErrNotFound. Without credentials
// the same denial most likely means the registry wants a login:
// ErrUnauthorized. A denial that says the registry asked for credentials
// ("no basic auth credentials", as the containerd image store adds) is
// ErrUnauthorized either way.
func classifyText(err error, loggedIn bool) error {
	if err == nil {
		return nil
	}
	msg := strings.ToLower(err.Error())
	switch {
	case containsAny(msg, stoppingText):
		return wrap(ErrUnreachable, err)
	case containsAny(msg, certificateText):
		return wrap(ErrCertificate, err)
	case containsAny(msg, noSpaceText):
		return wrap(ErrNoSpace, err)
	case containsAny(msg, platformText):
		return wrap(ErrPlatform, err)
	case containsAny(msg, missingLoginText):
		return wrap(ErrUnauthorized, err)
	case containsAny(msg, pullAccessDenied):
		if loggedIn {
			return wrap(ErrNotFound, err)
		}
		return wrap(ErrUnauthorized, err)
	case containsAny(msg, unauthorizedText):
		return wrap(ErrUnauthorized, err)
	case containsAny(msg, notFoundText), strings.HasSuffix(msg, notFoundSuffix):
		return wrap(ErrNotFound, err)
	case containsAny(msg, registryUnreachableText):
		return &marked{err: err, kind: ErrRegistryUnreachable}
	}
	return err
}

// registryUnreachableText is the engine failing to connect to a registry,
// as the daemon reports it (the client's own failure to reach the engine
// is told apart before: ErrUnreachable): "dial tcp 127.0.0.1:5000: connect:
// connection refused", "dial tcp: lookup r.example on 10.0.0.2:53: no such
// host", "net/http: TLS handshake timeout".
var registryUnreachableText = []string{
	"connection refused",
	"connection reset",
	"no such host",
	"temporary failure in name resolution",
	"server misbehaving",
	"no route to host",
	"network is unreachable",
	"tls handshake timeout",
	"dial tcp",
}

// stoppingText is what a pull stream says when the engine stops under it:
// its link to containerd closes. The engine is going away, so the pull waits
// for it like any pull that cannot reach it (found by TestAgentModel).
var stoppingText = []string{"the client connection is closing"}

// Message fragments, lower-cased, of errors worth retrying.
var transientText = []string{
	"connection refused", // dial tcp 127.0.0.1:5000: connect: connection refused (registry down)
	"connection reset",
	"broken pipe",
	"unexpected eof", // download failed after attempts=6: unexpected EOF
	"i/o timeout",
	"timeout exceeded",
	"tls handshake timeout",
	"timed out",
	"no route to host",
	"network is unreachable",
	"temporary failure in name resolution",
	"server misbehaving",
	"no such host",    // as the registry's name may not resolve yet at boot
	"toomanyrequests", // toomanyrequests: You have reached your pull rate limit.
	"too many requests",
	"service unavailable",
	"bad gateway",
	"gateway timeout",
	"internal server error",
}

// transientStatus matches a 429 or 5xx HTTP status quoted in a message, as in
// "received unexpected HTTP status: 503 Service Unavailable" or "login
// attempt to http://r/v2/ failed with status: 502 Bad Gateway".
var transientStatus = regexp.MustCompile(`status:? (429|5[0-9][0-9])\b`)

// Transient reports whether err is worth retrying: the engine or the registry
// was briefly unreachable, a connection broke (refused, reset, EOF), a request
// timed out, or the registry answered 429 or 5xx. A registry that is down
// shows as "connection refused" and is transient. Rejected credentials,
// missing repositories or digests, untrusted certificates, a full disk and a
// canceled context are not.
//
// A context.DeadlineExceeded is transient: it is how a stalled pull ends when
// the caller bounds each attempt; the caller's retry loop must still stop on
// its own context.
func Transient(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrNotFound),
		errors.Is(err, ErrNotPresent), errors.Is(err, ErrCertificate),
		errors.Is(err, ErrNoSpace), errors.Is(err, ErrPlatform):
		return false
	case errors.Is(err, ErrUnreachable), errors.Is(err, ErrRegistryUnreachable), errors.Is(err, errTemporary),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	msg := strings.ToLower(err.Error())
	if containsAny(msg, transientText) || transientStatus.MatchString(msg) {
		return true
	}
	// A bare "EOF" (or one ending a message, ": EOF") is a connection that
	// closed under us; "eof" inside a word is not.
	return msg == "eof" || strings.HasSuffix(msg, ": eof")
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// Where a registry connection failed, as the daemon's message says it.
var (
	dialAddr   = regexp.MustCompile(`dial tcp (\[[^\]]+\]:\d+|[^\s:]+:\d+): (.+)$`)
	lookupHost = regexp.MustCompile(`lookup (\S+?)(?: on (\S+))?: (.+)$`)
	readAddr   = regexp.MustCompile(`(?:read|write) tcp \S+->(\S+): (.+)$`)
	urlHost    = regexp.MustCompile(`"https?://([^/"]+)/`)
)

// RegistryAddress returns, from err (an ErrRegistryUnreachable), the address
// the engine tried and the system's error it met: "127.0.0.1:5000" and
// "connect: connection refused", "r.example" and "lookup on 127.0.0.53:53:
// no such host" (the resolver asked, when the message names it). What the
// message does not say is "".
func RegistryAddress(err error) (addr, syserr string) {
	msg := err.Error()
	if m := lookupHost.FindStringSubmatch(msg); m != nil {
		if m[2] != "" {
			return m[1], "lookup on " + m[2] + ": " + m[3]
		}
		return m[1], "lookup: " + m[3]
	}
	for _, re := range []*regexp.Regexp{dialAddr, readAddr} {
		if m := re.FindStringSubmatch(msg); m != nil {
			return m[1], m[2]
		}
	}
	if m := urlHost.FindStringSubmatch(msg); m != nil {
		addr = m[1]
	}
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		syserr = msg[i+2:]
	}
	return addr, syserr
}

// Tried says what who (the Docker Engine, prepull) tried, in the words
// RegistryAddress returns: "looked up r.example on 127.0.0.53:53: no such
// host" for a name it looked up, "tried 127.0.0.1:5000: connect: connection
// refused" for an address it dialed. What is "" is left out.
func Tried(who, addr, syserr string) string {
	if rest, ok := strings.CutPrefix(syserr, "lookup"); ok && addr != "" && (strings.HasPrefix(rest, " on ") || strings.HasPrefix(rest, ": ")) {
		return who + " looked up " + addr + rest
	}
	s := who + " tried"
	if addr != "" {
		s += " " + addr
	}
	if syserr != "" {
		s += ": " + syserr
	}
	return s
}

// NameNotFound reports whether err says that a registry's name does not
// resolve: the resolver answered that no such host exists ("lookup r.example
// on 127.0.0.53:53: no such host"), an answer the next attempt a few seconds
// later gets again. A resolver that gave no answer (a timeout, "server
// misbehaving", "temporary failure in name resolution") is not this.
func NameNotFound(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsNotFound
	}
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "no such host")
}

// MarkRegistryText returns err matching ErrRegistryUnreachable when its
// message says a registry connection failed, and err unchanged otherwise:
// for registry errors met outside the engine (prepull mirror's own).
func MarkRegistryText(err error) error {
	if err == nil || errors.Is(err, ErrRegistryUnreachable) || !containsAny(strings.ToLower(err.Error()), registryUnreachableText) {
		return err
	}
	return &marked{err: err, kind: ErrRegistryUnreachable}
}
