package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
)

var sentinels = []error{ErrRegistryUnreachable, ErrUnreachable, ErrUnauthorized, ErrNotFound, ErrNotPresent, ErrCertificate, ErrNoSpace, ErrPlatform}

// kindOf returns the one sentinel that err matches, nil for none, and fails t
// if it matches more than one.
func kindOf(t *testing.T, err error) error {
	t.Helper()
	var kind error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			if kind != nil {
				t.Fatalf("%q matches both %q and %q", err, kind, s)
			}
			kind = s
		}
	}
	return kind
}

// TestClassifyText runs the text classification over the messages Docker
// Engine 20.10.24 (API 1.41) really returned against a distribution 2.8.2
// registry with htpasswd, marked "seen", and over messages from Docker's
// source or other registries, marked "known". "POST" messages came back from
// the request that starts a pull or a login (the client prefixes "Error
// response from daemon: "); "stream" messages came inside the progress stream.
func TestClassifyText(t *testing.T) {
	tests := []struct {
		name      string
		msg       string
		loggedIn  bool
		want      error
		transient bool
	}{
		// Credentials.
		{"seen: login, wrong password or unknown user", `Error response from daemon: login attempt to http://127.0.0.1:5871/v2/ failed with status: 401 Unauthorized`, false, ErrUnauthorized, false},
		{"seen: pull POST, wrong password", `Error response from daemon: unauthorized: authentication required`, true, ErrUnauthorized, false},
		{"seen: pull stream, wrong password", `error pulling image configuration: download failed after attempts=1: unauthorized: authentication required`, true, ErrUnauthorized, false},
		{"seen: pull POST, anonymous from an htpasswd registry", `Error response from daemon: Get "http://127.0.0.1:5871/v2/proj/x/manifests/sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e": no basic auth credentials`, false, ErrUnauthorized, false},
		{"seen: pull stream, anonymous from an htpasswd registry", `error pulling image configuration: download failed after attempts=1: no basic auth credentials`, false, ErrUnauthorized, false},
		{"known: Docker Hub login", `Error response from daemon: Get "https://registry-1.docker.io/v2/": unauthorized: incorrect username or password`, false, ErrUnauthorized, false},

		// Missing repository or digest.
		{"seen: unknown digest", `Error response from daemon: manifest for 127.0.0.1:5871/proj/x@sha256:0000000000000000000000000000000000000000000000000000000000000000 not found: manifest unknown: manifest unknown`, true, ErrNotFound, false},
		{"seen: unknown repository", `Error response from daemon: manifest for 127.0.0.1:5871/nope/nope@sha256:0000000000000000000000000000000000000000000000000000000000000000 not found: manifest unknown: manifest unknown`, true, ErrNotFound, false},
		{"known: bare manifest unknown", `manifest unknown`, true, ErrNotFound, false},
		{"known: name unknown", `Error response from daemon: name unknown: repository name not known to registry`, true, ErrNotFound, false},
		// "pull access denied" is the same text for a bad login and a missing
		// repository: after a good login it means not found.
		{"known: pull access denied after a login", `Error response from daemon: pull access denied for r.example/proj/x, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`, true, ErrNotFound, false},
		{"known: pull access denied, anonymous", `Error response from daemon: pull access denied for r.example/proj/x, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`, false, ErrUnauthorized, false},
		{"known: denied alone after a login", `denied: requested access to the resource is denied`, true, ErrNotFound, false},

		// The registry is down, overloaded or cut the connection.
		{"seen: login, registry stopped", `Error response from daemon: Get "http://127.0.0.1:5871/v2/": dial tcp 127.0.0.1:5871: connect: connection refused`, false, ErrRegistryUnreachable, true},
		{"seen: pull POST, registry stopped", `Error response from daemon: Get "http://127.0.0.1:5871/v2/": dial tcp 127.0.0.1:5871: connect: connection refused`, true, ErrRegistryUnreachable, true},
		{"seen: login, 503", `Error response from daemon: login attempt to http://127.0.0.1:5872/v2/ failed with status: 503 Service Unavailable`, false, nil, true},
		{"seen: pull POST, 503", `Error response from daemon: received unexpected HTTP status: 503 Service Unavailable`, true, nil, true},
		{"seen: pull stream, 503 on blobs", `error pulling image configuration: download failed after attempts=6: received unexpected HTTP status: 503 Service Unavailable`, true, nil, true},
		{"seen: login, 502 from a proxy", `Error response from daemon: login attempt to http://127.0.0.1:5872/v2/ failed with status: 502 Bad Gateway`, false, nil, true},
		{"seen: pull stream, 502 from a proxy", `error pulling image configuration: download failed after attempts=6: received unexpected HTTP status: 502 Bad Gateway`, true, nil, true},
		{"seen: login, 429", `Error response from daemon: login attempt to http://127.0.0.1:5872/v2/ failed with status: 429 Too Many Requests`, false, nil, true},
		{"seen: pull POST, 429", `Error response from daemon: toomanyrequests: You have reached your pull rate limit.`, true, nil, true},
		{"seen: pull stream, 429 on blobs", `error pulling image configuration: download failed after attempts=1: toomanyrequests: too many requests: slow down`, true, nil, true},
		{"seen: pull stream, connection cut mid-blob", `error pulling image configuration: download failed after attempts=6: unexpected EOF`, true, nil, true},
		{"known: EOF", `EOF`, true, nil, true},
		{"known: EOF at the end", `Error response from daemon: Get "https://r.example/v2/": EOF`, true, nil, true},
		{"known: reset", `read tcp 127.0.0.1:40000->127.0.0.1:5000: read: connection reset by peer`, true, ErrRegistryUnreachable, true},
		{"known: dial timeout", `Error response from daemon: Get "https://r.example/v2/": dial tcp 192.0.2.1:443: i/o timeout`, true, ErrRegistryUnreachable, true},
		{"known: TLS handshake timeout", `Error response from daemon: Get "https://r.example/v2/": net/http: TLS handshake timeout`, true, ErrRegistryUnreachable, true},
		{"known: DNS hiccup", `Error response from daemon: Get "https://r.example/v2/": dial tcp: lookup r.example: Temporary failure in name resolution`, true, ErrRegistryUnreachable, true},

		// Permanent failures with no sentinel.
		{"seen: no such host (bounded: pull.RegistryAttempts)", `Error response from daemon: Get "https://nosuchhost.invalid:5000/v2/": dial tcp: lookup nosuchhost.invalid on 127.0.0.53:53: no such host`, true, ErrRegistryUnreachable, true},
		{"known: https to a plain HTTP registry", `Error response from daemon: Get "https://r.example:5000/v2/": http: server gave HTTP response to HTTPS client`, true, nil, false},
		{"known: eof inside a word", `Error response from daemon: invalid reference format: thereof`, true, nil, false},

		// Newer engines and the containerd image store (see testenv.Engines):
		// 26.1 and 28.5 classic: the same texts as 20.10, for every case below. Texts seen by TestDockerPullByDigest/VERSION/STORE.
		{"seen 26.1, 28.5 containerd: login, wrong password", `Error response from daemon: login attempt to http://127.0.0.1:5871/v2/ failed with status: 401 Unauthorized`, false, ErrUnauthorized, false},
		{"seen 26.1, 28.5 containerd: pull POST, anonymous from an htpasswd registry", `Error response from daemon: failed to resolve reference "127.0.0.1:5871/proj/x@sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials`, false, ErrUnauthorized, false},
		{"seen 26.1, 28.5 containerd: the same, with a login the engine did not use", `Error response from daemon: failed to resolve reference "127.0.0.1:5871/proj/x@sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials`, true, ErrUnauthorized, false},
		{"seen 26.1 containerd: pull POST, wrong password", `Error response from daemon: failed to resolve reference "127.0.0.1:5871/proj/x@sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e": unexpected status from HEAD request to http://127.0.0.1:5871/v2/proj/x/manifests/sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e: 401 Unauthorized`, true, ErrUnauthorized, false},
		{"seen 28.5 containerd: pull POST, wrong password", `Error response from daemon: unknown: failed to resolve reference "127.0.0.1:5871/proj/x@sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e": unexpected status from HEAD request to http://127.0.0.1:5871/v2/proj/x/manifests/sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e: 401 Unauthorized`, true, ErrUnauthorized, false},
		{"seen 26.1, 28.5 containerd: unknown digest", `Error response from daemon: failed to resolve reference "127.0.0.1:5871/proj/x@sha256:0000000000000000000000000000000000000000000000000000000000000000": 127.0.0.1:5871/proj/x@sha256:0000000000000000000000000000000000000000000000000000000000000000: not found`, true, ErrNotFound, false},
		{"seen 26.1, 28.5 containerd: unknown repository", `Error response from daemon: failed to resolve reference "127.0.0.1:5871/nope/nope@sha256:0000000000000000000000000000000000000000000000000000000000000000": 127.0.0.1:5871/nope/nope@sha256:0000000000000000000000000000000000000000000000000000000000000000: not found`, true, ErrNotFound, false},
		{"seen all: token login, wrong password", `Error response from daemon: Get "http://127.0.0.1:5872/v2/": unauthorized`, false, ErrUnauthorized, false},
		{"seen 20.10, 26.1, 28.5 classic: token registry, pull POST, anonymous or wrong password", `Error response from daemon: Get "http://127.0.0.1:5872/v2/proj/tok/manifests/sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e": unauthorized`, true, ErrUnauthorized, false},
		{"seen 26.1 containerd: token registry, pull POST, anonymous", `Error response from daemon: failed to resolve reference "127.0.0.1:5872/proj/tok@sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e": failed to authorize: failed to fetch anonymous token: unexpected status from GET request to http://127.0.0.1:5873/token?scope=repository%3Aproj%2Ftok%3Apull&service=testenv-registry: 401 Unauthorized`, false, ErrUnauthorized, false},
		{"seen 26.1 containerd: token registry, pull POST, wrong password", `Error response from daemon: failed to resolve reference "127.0.0.1:5872/proj/tok@sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e": failed to authorize: failed to fetch oauth token: unexpected status from GET request to http://127.0.0.1:5873/token?scope=repository%3Aproj%2Ftok%3Apull&service=testenv-registry: 401 Unauthorized`, true, ErrUnauthorized, false},
		{"seen 28.5 containerd: token registry, pull POST, anonymous or wrong password", `Error response from daemon: error from registry: unauthorized`, true, ErrUnauthorized, false},
		{"seen 20.10, 26.1, 28.5 classic: pull stream, index without linux/amd64", `no matching manifest for linux/amd64 in the manifest list entries`, true, ErrPlatform, false},
		{"seen 26.1 containerd: pull POST, index without linux/amd64", `Error response from daemon: no match for platform in manifest: not found`, true, ErrPlatform, false},
		{"seen 28.5 containerd: pull POST, index without linux/amd64", `Error response from daemon: no matching manifest for linux/amd64 in the manifest list entries: no match for platform in manifest: not found`, true, ErrPlatform, false},
		{"seen 26.1, 28.5 containerd: registry stopped", `Error response from daemon: failed to resolve reference "127.0.0.1:5871/proj/x@sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e": failed to do request: Head "https://127.0.0.1:5871/v2/proj/x/manifests/sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e": dial tcp 127.0.0.1:5871: connect: connection refused`, true, ErrRegistryUnreachable, true},

		{"seen 20.10: pull stream, the engine stopped during the pull", `error creating lease: grpc: the client connection is closing: context canceled`, true, ErrUnreachable, true},

		// Certificates and disk.
		{"known: unknown authority", `Error response from daemon: Get "https://r.example:5000/v2/": x509: certificate signed by unknown authority`, true, ErrCertificate, false},
		{"known: Go 1.20+ wording", `Error response from daemon: Get "https://r.example:5000/v2/": tls: failed to verify certificate: x509: certificate is valid for a.example, not r.example`, true, ErrCertificate, false},
		{"known: no space", `failed to register layer: write /var/lib/docker/vfs/dir/0123/blob: no space left on device`, true, ErrNoSpace, false},
		{"seen: pull stream, disk full while downloading", `write /var/lib/docker/tmp/GetImageBlob2188886028: no space left on device`, true, ErrNoSpace, false},
		{"seen: pull stream, disk full while extracting", `failed to register layer: ApplyLayer exit status 1 stdout:  stderr: write /layer1: no space left on device`, true, ErrNoSpace, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := errors.New(tt.msg)
			got := classifyText(orig, tt.loggedIn)
			if kind := kindOf(t, got); kind != tt.want {
				t.Errorf("classifyText(%q) is %v, want %v", tt.msg, kind, tt.want)
			}
			if !strings.Contains(got.Error(), tt.msg) {
				t.Errorf("classifyText lost the engine's message: %q", got)
			}
			if !errors.Is(got, orig) {
				t.Errorf("classifyText(%q) does not wrap the original error", tt.msg)
			}
			if tr := Transient(got); tr != tt.transient {
				t.Errorf("Transient(%q) = %v, want %v", got, tr, tt.transient)
			}
		})
	}
}

func TestClassifyTextNil(t *testing.T) {
	if err := classifyText(nil, true); err != nil {
		t.Errorf("classifyText(nil) = %v", err)
	}
}

func TestTransient(t *testing.T) {
	engineDown := errors.New("Cannot connect to the Docker daemon at unix:///tmp/eng/nosock. Is the docker daemon running?")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"engine unreachable", wrap(ErrUnreachable, engineDown), true},
		{"engine stopped mid-pull", fmt.Errorf("pull r/x@sha256:0: read progress: %w", io.ErrUnexpectedEOF), true},
		{"io.EOF", fmt.Errorf("ping: %w", io.EOF), true},
		{"ECONNREFUSED", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"ECONNRESET", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"deadline", fmt.Errorf("pull r/x@sha256:0: %w", context.DeadlineExceeded), true},
		{"unreachable by deadline", wrap(ErrUnreachable, context.DeadlineExceeded), true},
		{"canceled", fmt.Errorf("pull r/x@sha256:0: %w", context.Canceled), false},
		{"canceled while unreachable", wrap(ErrUnreachable, context.Canceled), false},
		{"marked temporary", markTemporary(errors.New("Error response from daemon: busy")), true},
		{"unauthorized", wrap(ErrUnauthorized, errors.New("x")), false},
		{"not found", wrap(ErrNotFound, errors.New("x")), false},
		{"not present", wrap(ErrNotPresent, errors.New("x")), false},
		{"certificate", wrap(ErrCertificate, errors.New("x")), false},
		{"no space", wrap(ErrNoSpace, errors.New("x")), false},
		{"not found despite a 503 in the text", wrap(ErrNotFound, errors.New("status: 503")), false},
		{"unknown", errors.New("Error response from daemon: invalid reference format"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Transient(tt.err); got != tt.want {
				t.Errorf("Transient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestWrapKeepsMessages(t *testing.T) {
	err := errors.New("Error response from daemon: unauthorized: authentication required")
	got := wrap(ErrUnauthorized, err)
	if want := ErrUnauthorized.Error() + ": " + err.Error(); got.Error() != want {
		t.Errorf("wrap = %q, want %q", got, want)
	}
	if again := wrap(ErrUnauthorized, got); again != got {
		t.Errorf("wrap wrapped twice: %q", again)
	}
	if m := markTemporary(err); m.Error() != err.Error() {
		t.Errorf("markTemporary changed the message to %q", m)
	}
}

func TestRegistryAddress(t *testing.T) {
	tests := []struct{ msg, addr, syserr string }{
		{`Error response from daemon: Get "http://127.0.0.1:5871/v2/": dial tcp 127.0.0.1:5871: connect: connection refused`, "127.0.0.1:5871", "connect: connection refused"},
		{`Error response from daemon: Get "https://nosuchhost.invalid:5000/v2/": dial tcp: lookup nosuchhost.invalid on 127.0.0.53:53: no such host`, "nosuchhost.invalid", "lookup on 127.0.0.53:53: no such host"},
		{`Get "https://r.example/v2/": dial tcp: lookup r.example: no such host`, "r.example", "lookup: no such host"},
		{`Error response from daemon: Get "https://r.example/v2/": dial tcp [2001:db8::1]:443: connect: no route to host`, "[2001:db8::1]:443", "connect: no route to host"},
		{`read tcp 127.0.0.1:40000->127.0.0.1:5000: read: connection reset by peer`, "127.0.0.1:5000", "read: connection reset by peer"},
		{`Error response from daemon: Get "https://r.example/v2/": net/http: TLS handshake timeout`, "r.example", "TLS handshake timeout"},
	}
	for _, tt := range tests {
		addr, syserr := RegistryAddress(errors.New(tt.msg))
		if addr != tt.addr || syserr != tt.syserr {
			t.Errorf("RegistryAddress(%q) = %q, %q; want %q, %q", tt.msg, addr, syserr, tt.addr, tt.syserr)
		}
	}
}

// TestTried checks that a name looked up reads as looked up, with the
// resolver when the message names it, and an address dialed as tried.
func TestTried(t *testing.T) {
	tests := []struct{ addr, syserr, want string }{
		{"r.example", "lookup on 127.0.0.53:53: no such host", "Docker Engine looked up r.example on 127.0.0.53:53: no such host"},
		{"r.example", "lookup: server misbehaving", "Docker Engine looked up r.example: server misbehaving"},
		{"127.0.0.1:5000", "connect: connection refused", "Docker Engine tried 127.0.0.1:5000: connect: connection refused"},
		{"r.example", "TLS handshake timeout", "Docker Engine tried r.example: TLS handshake timeout"},
		{"", "lookup: no such host", "Docker Engine tried: lookup: no such host"},
		{"r.example", "", "Docker Engine tried r.example"},
	}
	for _, tt := range tests {
		if got := Tried("Docker Engine", tt.addr, tt.syserr); got != tt.want {
			t.Errorf("Tried(%q, %q) = %q, want %q", tt.addr, tt.syserr, got, tt.want)
		}
	}
}

func TestNameNotFound(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{errors.New(`Error response from daemon: Get "https://nosuchhost.invalid:5000/v2/": dial tcp: lookup nosuchhost.invalid on 127.0.0.53:53: no such host`), true},
		{&net.DNSError{Name: "r.example", Err: "no such host", IsNotFound: true}, true},
		{&net.DNSError{Name: "r.example", Err: "server misbehaving", IsTemporary: true}, false},
		{errors.New(`dial tcp: lookup r.example on 10.0.0.2:53: read udp 10.0.0.9:4000->10.0.0.2:53: i/o timeout`), false},
		{errors.New(`dial tcp: lookup r.example: Temporary failure in name resolution`), false},
		{errors.New(`dial tcp 127.0.0.1:5000: connect: connection refused`), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := NameNotFound(tt.err); got != tt.want {
			t.Errorf("NameNotFound(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
