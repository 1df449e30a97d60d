// Package mirror copies the image a management pack names into another
// registry byte for byte: the same manifest (an index with every manifest it
// lists, attestations included) and the same blobs, so that the digest the
// pack names stays true. Dark sites use it to move a pack's image into a
// registry their Cloud Proxies can reach.
//
// Registry work goes through go-containerregistry; logins come from the same
// resolver as a pull.
package mirror

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
)

// Status says what a copy did.
type Status string

// The statuses of a copy.
const (
	Copied  Status = "mirrored" // the manifest was written to the destination
	Present Status = "present"  // the destination had the digest already
	Failed  Status = "failed"
)

// Result is what Copy did for one pack.
type Result struct {
	Status Status
	// Reference is the copy's reference, DEST/REPOSITORY@DIGEST.
	Reference string
	// Registry and Repository are what the rewritten .conf says: the
	// destination host, and the repository with a leading slash.
	Registry, Repository string
	// Manifests counts the manifests the copy holds: 1 for an image, 1 plus
	// its children for an index.
	Manifests int
}

// Credentials finds the login for a registry host.
type Credentials interface {
	For(ctx context.Context, host string) (credentials.Credential, error)
}

// Copier copies images between registries.
type Copier struct {
	Credentials Credentials
	// Config supplies each registry's ca_file; nil means none.
	Config *config.Config
	// Jobs is how many blobs move at once; 0 means go-containerregistry's default.
	Jobs int
	// AnyPlatform copies an image that has no variant for ProxyPlatform;
	// without it such a copy is refused with a *pull.PlatformError.
	AnyPlatform bool
}

// ProxyPlatform is the platform of a Cloud Proxy's Docker Engine, which the
// copy is for.
var ProxyPlatform = engine.Platform{OS: "linux", Architecture: "amd64"}

// Destination returns the copy's reference for target t under to
// ("REGISTRY[/PATH]"): REGISTRY/PATH/<the pack's repository>@<digest>.
func Destination(to string, t pak.Target) (Result, error) {
	host, path, err := ParseTo(to)
	if err != nil {
		return Result{}, err
	}
	src, err := reference.ParseNormalizedNamed(t.Reference)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", t.Reference, err)
	}
	repo := reference.Path(src)
	if path != "" {
		repo = path + "/" + repo
	}
	ref := host + "/" + repo + "@" + t.Digest
	if _, err := name.NewDigest(ref, name.StrictValidation); err != nil {
		return Result{}, fmt.Errorf("--to %s gives the reference %s, which is not valid: %w", display.Text(to), display.Text(ref), err)
	}
	return Result{Reference: ref, Registry: host, Repository: "/" + repo}, nil
}

// ParseTo splits a destination "REGISTRY[/PATH]" into its registry host and
// path, and checks both.
func ParseTo(to string) (host, path string, err error) {
	if strings.Contains(to, "://") {
		return "", "", fmt.Errorf("--to %s must be a registry host with an optional path, not a URL", display.Text(to))
	}
	host, path, _ = strings.Cut(strings.TrimSuffix(to, "/"), "/")
	if err := pak.ValidateRegistry(host); err != nil {
		return "", "", fmt.Errorf("--to registry %w", err)
	}
	if path != "" {
		if _, err := name.NewRepository(host+"/"+path, name.StrictValidation); err != nil || strings.ToLower(path) != path {
			return "", "", fmt.Errorf("--to path %s is not a valid repository path (lower-case letters, digits, separators)", display.Text(path))
		}
	}
	return host, path, nil
}

// Copy copies the image t names to dst (from Destination), unless dst has it
// already, and checks that dst then serves the pack's digest.
func (c *Copier) Copy(ctx context.Context, t pak.Target, dst Result) (Result, error) {
	srcRef, err := name.NewDigest(t.Reference, name.StrictValidation)
	if err != nil {
		return dst, fmt.Errorf("%s: %w", t.Reference, err)
	}
	dstRef, err := name.NewDigest(dst.Reference, name.StrictValidation)
	if err != nil {
		return dst, fmt.Errorf("%s: %w", dst.Reference, err)
	}
	opts, err := c.options(ctx, srcRef.Context().RegistryStr(), dstRef.Context().RegistryStr())
	if err != nil {
		return dst, err
	}

	// A copy that is there already is not sent again, but is refused as a
	// copy would be when a proxy could not run it (read from the copy, as a
	// pull checks an image it finds present).
	if d, err := remote.Head(dstRef, opts...); err == nil && d.Digest.String() == t.Digest {
		if err := c.checkPresent(ctx, dstRef, opts); err != nil {
			return dst, err
		}
		dst.Status, dst.Manifests = Present, 0
		return dst, nil
	} else if err != nil && !isNotFound(err) {
		return dst, c.classify(ctx, err, dstRef.Context().RegistryStr(), dst.Reference)
	}

	desc, err := remote.Get(srcRef, opts...)
	if err != nil {
		return dst, c.classify(ctx, err, srcRef.Context().RegistryStr(), t.Reference)
	}
	if got := desc.Digest.String(); got != t.Digest {
		return dst, fmt.Errorf("%s: the registry served digest %s", t.Reference, got)
	}
	if err := c.checkPlatform(ctx, desc, srcRef.Context().RegistryStr(), t.Reference); err != nil {
		return dst, err
	}
	dst.Manifests = 1
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return dst, c.classify(ctx, err, srcRef.Context().RegistryStr(), t.Reference)
		}
		if im, err := idx.IndexManifest(); err == nil {
			dst.Manifests += len(im.Manifests)
		}
		err = remote.WriteIndex(dstRef, idx, opts...)
		if err != nil {
			return dst, c.classify(ctx, err, dstRef.Context().RegistryStr(), dst.Reference)
		}
	} else {
		img, err := desc.Image()
		if err != nil {
			return dst, c.classify(ctx, err, srcRef.Context().RegistryStr(), t.Reference)
		}
		if err := remote.Write(dstRef, img, opts...); err != nil {
			return dst, c.classify(ctx, err, dstRef.Context().RegistryStr(), dst.Reference)
		}
	}

	// Verified by digest before it is reported.
	d, err := remote.Head(dstRef, opts...)
	if err != nil {
		return dst, fmt.Errorf("verify the copy: %w", c.classify(ctx, err, dstRef.Context().RegistryStr(), dst.Reference))
	}
	if d.Digest.String() != t.Digest {
		return dst, fmt.Errorf("verify the copy: %s serves digest %s, not %s", dst.Reference, d.Digest, t.Digest)
	}
	dst.Status = Copied
	return dst, nil
}

// options are the go-containerregistry options for a copy between the two
// registry hosts: the logins, each host's own CA, and plain HTTP on
// loopback only.
func (c *Copier) options(ctx context.Context, hosts ...string) ([]remote.Option, error) {
	trust, err := c.hostTrust(hosts)
	if err != nil {
		return nil, err
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(keychain{c.Credentials}),
		remote.WithTransport(loopbackOnlyHTTP{trust}),
		remote.WithUserAgent("prepull"),
	}
	if c.Jobs > 0 {
		opts = append(opts, remote.WithJobs(c.Jobs))
	}
	return opts, nil
}

// hostTrust returns the transport of a copy between hosts (as
// go-containerregistry spells them in URLs): each host with a ca_file
// trusts the system roots and that CA, no other; every other host, a blob
// download redirected to object storage included, the system roots only.
// One pool for all would let a host whose certificate another registry's
// private CA signed receive the push login.
func (c *Copier) hostTrust(hosts []string) (trustByHost, error) {
	t := trustByHost{other: http.DefaultTransport.(*http.Transport).Clone(), byHost: map[string]http.RoundTripper{}}
	if c.Config == nil {
		return t, nil
	}
	for _, h := range hosts {
		e, ok := c.Config.Lookup(h)
		if !ok || e.CAFile == "" {
			continue
		}
		pem, err := pull.ReadCA(e.Host, e.CAFile)
		if err != nil {
			return t, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM(pem)
		own := http.DefaultTransport.(*http.Transport).Clone()
		own.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		t.byHost[h] = own
	}
	return t, nil
}

// trustByHost sends each request through the transport of its URL's host,
// or other.
type trustByHost struct {
	byHost map[string]http.RoundTripper
	other  http.RoundTripper
}

func (t trustByHost) RoundTrip(r *http.Request) (*http.Response, error) {
	if own, ok := t.byHost[r.URL.Host]; ok {
		return own.RoundTrip(r)
	}
	return t.other.RoundTrip(r)
}

// loopbackOnlyHTTP refuses plain HTTP to anything but loopback, as Docker
// Engine does: go-containerregistry would otherwise fall back to HTTP for
// private-range addresses, sending logins in clear text.
type loopbackOnlyHTTP struct{ next http.RoundTripper }

func (l loopbackOnlyHTTP) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !isLoopback(r.URL.Hostname()) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: only loopback registries may be used without TLS", r.URL.Host)
	}
	return l.next.RoundTrip(r)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// keychain gives go-containerregistry the logins of prepull's resolver.
type keychain struct{ c Credentials }

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

// ResolveContext is what go-containerregistry calls, with the copy's ctx:
// a helper still running when it ends is ended with it.
func (k keychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	if k.c == nil {
		return authn.Anonymous, nil
	}
	cred, err := k.c.For(ctx, r.RegistryStr())
	if err != nil {
		return nil, err
	}
	if cred.Anonymous() {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: cred.Username, Password: cred.Password, IdentityToken: cred.IdentityToken}), nil
}

// checkPlatform refuses, unless AnyPlatform, an image ref that has no
// variant for ProxyPlatform: a proxy could not run the copy.
func (c *Copier) checkPlatform(ctx context.Context, desc *remote.Descriptor, host, ref string) error {
	if c.AnyPlatform {
		return nil
	}
	offered, err := platforms(desc)
	if err != nil {
		return c.classify(ctx, err, host, ref)
	}
	return pull.CheckPlatforms(ref, offered, ProxyPlatform)
}

// checkPresent is checkPlatform for the copy already at ref.
func (c *Copier) checkPresent(ctx context.Context, ref name.Digest, opts []remote.Option) error {
	if c.AnyPlatform {
		return nil
	}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return c.classify(ctx, err, ref.Context().RegistryStr(), ref.String())
	}
	return c.checkPlatform(ctx, desc, ref.Context().RegistryStr(), ref.String())
}

// platforms returns what desc offers: an index's entries' platforms, or an
// image's own.
func platforms(desc *remote.Descriptor) ([]engine.Platform, error) {
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		var out []engine.Platform
		for _, m := range im.Manifests {
			if m.Platform != nil {
				out = append(out, engine.Platform{OS: m.Platform.OS, Architecture: m.Platform.Architecture, Variant: m.Platform.Variant})
			}
		}
		return out, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	return []engine.Platform{{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}}, nil
}

// classify is the function classify, a refusal naming the user and where
// the login came from, as a pull's does.
func (c *Copier) classify(ctx context.Context, err error, host, ref string) error {
	err = classify(err, host, ref)
	if errors.Is(err, engine.ErrUnauthorized) {
		return c.refused(ctx, err, host)
	}
	return err
}

// classify wraps a registry error so that the exit codes mean what they mean
// for a pull: a refused login, a missing repository or digest.
func classify(err error, host, ref string) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: %w: %s", ref, engine.ErrUnauthorized, oneLine(te.Error()))
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w: %s", ref, engine.ErrNotFound, oneLine(te.Error()))
		}
	}
	if unreachable(err) {
		return &UnreachableError{Registry: host, Err: err}
	}
	return fmt.Errorf("%s: %w", host, err)
}

// unreachable tells whether err is a failure to connect to a registry: a
// name that does not resolve, a connection refused, reset or timed out,
// no route, a TLS handshake that timed out.
func unreachable(err error) bool {
	var (
		op  *net.OpError
		dns *net.DNSError
	)
	if errors.As(err, &dns) || errors.As(err, &op) {
		return true
	}
	return errors.Is(engine.MarkRegistryText(err), engine.ErrRegistryUnreachable)
}

// UnreachableError says that prepull could not connect to a registry while
// mirroring: its host, the address tried and the system's error. Mirror
// connects from this machine itself (not through a Docker Engine), so the
// proxy settings of its own environment apply.
type UnreachableError struct {
	Registry string
	Err      error
}

func (e *UnreachableError) Error() string {
	addr, cause := engine.RegistryAddress(e.Err)
	var dns *net.DNSError
	if errors.As(e.Err, &dns) {
		addr, cause = dns.Name, "lookup: "+dns.Err
		if dns.Server != "" {
			cause = "lookup on " + dns.Server + ": " + dns.Err
		}
	}
	msg := "registry " + e.Registry + " unreachable"
	if addr != "" || cause != "" {
		msg += ": " + engine.Tried("prepull", addr, cause)
	}
	if engine.NameNotFound(e.Err) {
		msg += " (the name does not resolve)"
	}
	return msg + "; mirror connects from this machine itself, so HTTPS_PROXY, HTTP_PROXY and NO_PROXY of its environment apply"
}

func (e *UnreachableError) Unwrap() []error { return []error{e.Err, engine.ErrRegistryUnreachable} }

// refused wraps err, host's refusal of a request, with the login it was
// made with: the user and where the login came from, or that there was none.
func (c *Copier) refused(ctx context.Context, err error, host string) error {
	var cred credentials.Credential
	if c.Credentials != nil {
		var cerr error
		if cred, cerr = c.Credentials.For(ctx, host); cerr != nil {
			return err
		}
	}
	if cred.Anonymous() {
		return pull.NoLogin(err, host, "add it to registries in the configuration, or docker login "+host)
	}
	return &pull.LoginError{Registry: host, Username: cred.Username, Source: cred.Source, Err: err}
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// oneLine keeps a registry's message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
