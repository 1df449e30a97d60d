package engine

// This is the only file of prepull that imports the Docker client. Moving to
// github.com/moby/moby/client means rewriting this file alone.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// Docker is the Docker Engine, through its API: the one engine prepull
// drives. Each user declares the few methods it calls (pull.Engine,
// agent.Engine, agent.ImageRemover).
type Docker struct {
	cli *client.Client

	mu       sync.Mutex
	platform Platform // the engine's, once known
}

// NewDocker returns a Docker that talks to the Docker Engine at host (for
// example "unix:///var/run/docker.sock"), or at the host the environment names
// (DOCKER_HOST, else the default socket) when host is empty. The API version
// is negotiated with the engine on first use, so old engines (Docker 20.10,
// API 1.41) work; nothing is contacted before then.
func NewDocker(host string) (*Docker, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Docker{cli: cli}, nil
}

// Ping checks that the engine answers and returns the API version negotiated
// with it. Any failure to get an answer wraps ErrUnreachable, except a
// canceled context.
func (d *Docker) Ping(ctx context.Context) (string, error) {
	p, err := d.cli.Ping(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return "", fmt.Errorf("ping: %w", err)
		}
		return "", fmt.Errorf("ping: %w", wrap(ErrUnreachable, err))
	}
	// Negotiate only on success: a failed ping would pin the client to the
	// oldest API version.
	d.cli.NegotiateAPIVersionPing(p)
	return d.cli.ClientVersion(), nil
}

// Login checks auth against the registry through the engine. The engine
// stores nothing; neither does Login.
func (d *Docker) Login(ctx context.Context, auth Auth) error {
	if _, err := d.cli.RegistryLogin(ctx, authConfig(auth)); err != nil {
		return fmt.Errorf("login to %s: %w", auth.ServerAddress, classifyAPI(err, false, ErrNotFound))
	}
	return nil
}

// Pull pulls ref, reading the whole progress stream. progress, when not nil,
// is called for each event; Layer is set only for per-layer events (those
// that carry progress detail), so whole-image lines such as "Pulling from
// proj/x" or "Digest: sha256:..." have an empty Layer. An error in the stream
// fails the pull. When ctx ends, the stream is closed and Pull returns an
// error wrapping ctx.Err().
//
// When the client goes away, Engine 20.10 cancels a layer download that
// stalled mid-body, and a retry fetches the blobs again on new connections.
// A blob request that never got response headers is not cancellable inside
// the engine, though: later pulls of the image join it, and it ends only when
// the registry (or a load balancer) answers or closes the connection, or the
// engine restarts (seen with internal/testenv's fault proxy; see
// docs/reliability.md).
func (d *Docker) Pull(ctx context.Context, ref string, auth *Auth, progress func(Progress)) error {
	var opts image.PullOptions
	if auth != nil {
		enc, err := registry.EncodeAuthConfig(authConfig(*auth))
		if err != nil {
			return fmt.Errorf("pull %s: encode credentials: %w", ref, err)
		}
		opts.RegistryAuth = enc
	}
	body, err := d.cli.ImagePull(ctx, ref, opts)
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, classifyAPI(err, auth != nil, ErrNotFound))
	}
	defer body.Close()
	// Closing the body on cancel makes a stalled read return at once.
	stop := context.AfterFunc(ctx, func() { body.Close() })
	defer stop()

	dec := json.NewDecoder(body)
	for {
		var m pullMessage
		if err := dec.Decode(&m); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("pull %s: %w", ref, ctx.Err())
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
				// Registry errors come inside the stream; a stream cut off
				// is the engine itself going away (a restart, a crash).
				return fmt.Errorf("pull %s: %w: read progress: %w", ref, ErrUnreachable, err)
			}
			return fmt.Errorf("pull %s: read progress: %w", ref, err)
		}
		if m.Error != nil || m.ErrorText != "" {
			msg := m.ErrorText
			if m.Error != nil && m.Error.Message != "" {
				msg = m.Error.Message
			}
			return fmt.Errorf("pull %s: %w", ref, classifyText(errors.New(msg), auth != nil))
		}
		if progress != nil {
			progress(toProgress(m.JSONMessage))
		}
	}
}

// pullMessage is one message of a pull's progress stream. ErrorText reads
// the one-line "error" that older engines send without "errorDetail" (the
// field jsonmessage keeps only as a deprecated one).
type pullMessage struct {
	jsonmessage.JSONMessage
	ErrorText string `json:"error,omitempty"`
}

// RepoDigests returns the repo digests of the local image that ref names.
func (d *Docker) RepoDigests(ctx context.Context, ref string) ([]string, error) {
	img, err := d.inspect(ctx, ref)
	if err != nil {
		return nil, err
	}
	return img.RepoDigests, nil
}

// ImagePlatform returns the platform of the local image that ref names.
func (d *Docker) ImagePlatform(ctx context.Context, ref string) (Platform, error) {
	img, err := d.inspect(ctx, ref)
	if err != nil {
		return Platform{}, err
	}
	return Platform{OS: img.Os, Architecture: img.Architecture, Variant: img.Variant}, nil
}

// inspect inspects the local image that ref names.
func (d *Docker) inspect(ctx context.Context, ref string) (image.InspectResponse, error) {
	img, err := d.cli.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return img, fmt.Errorf("inspect %s: %w", ref, wrap(ErrNotPresent, err))
		}
		return img, fmt.Errorf("inspect %s: %w", ref, classifyAPI(err, false, ErrNotPresent))
	}
	return img, nil
}

// Name gives the local image that ref names the tag name, unless name
// names an image already. The engine's own tag call would move a name from
// another image: the name is looked up first, and one that names another
// image is left alone.
func (d *Docker) Name(ctx context.Context, ref, name string) (bool, error) {
	img, err := d.inspect(ctx, ref)
	if err != nil {
		return false, err
	}
	cur, err := d.cli.ImageInspect(ctx, name)
	switch {
	case err == nil && cur.ID == img.ID:
		return false, nil
	case err == nil:
		return false, fmt.Errorf("name %s: %w (image %s)", name, ErrNameTaken, shortID(cur.ID))
	case !cerrdefs.IsNotFound(err):
		return false, fmt.Errorf("inspect %s: %w", name, classifyAPI(err, false, ErrNotPresent))
	}
	if err := d.cli.ImageTag(ctx, ref, name); err != nil {
		return false, fmt.Errorf("tag %s as %s: %w", ref, name, classifyAPI(err, false, ErrNotPresent))
	}
	return true, nil
}

// shortID is the first 12 hex digits of an image ID, as docker images shows it.
func shortID(id string) string {
	_, hex, _ := strings.Cut(id, ":")
	if hex == "" {
		hex = id
	}
	return hex[:min(len(hex), 12)]
}

// Platform returns the engine's operating system and architecture, from
// its version (GOOS and GOARCH of dockerd, the names images use), asked once.
func (d *Docker) Platform(ctx context.Context) (Platform, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.platform.OS != "" {
		return d.platform, nil
	}
	v, err := d.cli.ServerVersion(ctx)
	if err != nil {
		return Platform{}, fmt.Errorf("engine version: %w", classifyAPI(err, false, ErrUnreachable))
	}
	if v.Os == "" || v.Arch == "" {
		return Platform{}, fmt.Errorf("engine version: the engine names no operating system or architecture (%q, %q)", v.Os, v.Arch)
	}
	d.platform = Platform{OS: v.Os, Architecture: v.Arch}
	return d.platform, nil
}

// Distribution asks the engine's distribution inspect (GET
// /distribution/{name}/json) about ref, passing auth the way a pull does.
// The engine fetches the manifest or index, and for an image manifest its
// config, to name the platforms; it stores nothing.
func (d *Docker) Distribution(ctx context.Context, ref string, auth *Auth) (Distribution, error) {
	var enc string
	if auth != nil {
		var err error
		if enc, err = registry.EncodeAuthConfig(authConfig(*auth)); err != nil {
			return Distribution{}, fmt.Errorf("inspect %s in the registry: encode credentials: %w", ref, err)
		}
	}
	di, err := d.cli.DistributionInspect(ctx, ref, enc)
	if err != nil {
		return Distribution{}, fmt.Errorf("inspect %s in the registry: %w", ref, classifyAPI(err, auth != nil, ErrNotFound))
	}
	out := Distribution{MediaType: di.Descriptor.MediaType, Digest: di.Descriptor.Digest.String()}
	for _, p := range di.Platforms {
		out.Platforms = append(out.Platforms, Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant})
	}
	return out, nil
}

// Close releases the client's connections.
func (d *Docker) Close() error {
	return d.cli.Close()
}

func authConfig(a Auth) registry.AuthConfig {
	return registry.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		ServerAddress: a.ServerAddress,
		IdentityToken: a.IdentityToken,
	}
}

// classifyAPI classifies an error returned by an API call (not one read from
// a progress stream). The message is classified first, because Engine 20.10
// answers 404 to "pull access denied", which means bad credentials as often
// as a missing repository, and 500 to most registry failures (see
// errors.go). The HTTP status decides what the text does not; notFound is
// the sentinel that a 404 means for this call.
func classifyAPI(err error, loggedIn bool, notFound error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case client.IsErrConnectionFailed(err):
		return wrap(ErrUnreachable, err)
	}
	if c := classifyText(err, loggedIn); c != err {
		return c
	}
	switch {
	case cerrdefs.IsUnauthorized(err):
		return wrap(ErrUnauthorized, err)
	case cerrdefs.IsNotFound(err):
		return wrap(notFound, err)
	case cerrdefs.IsUnavailable(err), cerrdefs.IsResourceExhausted(err):
		return markTemporary(err)
	}
	return err
}

// toProgress converts one stream message. Per-layer messages always carry
// progressDetail (empty for "Pulling fs layer" or "Pull complete"); whole-image
// messages never do, even "Pulling from" whose id is the reference.
func toProgress(m jsonmessage.JSONMessage) Progress {
	p := Progress{Status: m.Status}
	if m.Progress != nil {
		p.Layer = m.ID
		p.Current = m.Progress.Current
		p.Total = m.Progress.Total
	}
	return p
}

// ImageUse inspects the local image that ref names and lists the
// containers, running or stopped, made from it or from an image built on it
// (the ancestor filter, by image ID). An image that is not there gives an
// error wrapping ErrNotPresent; any other failure means the answer is not
// known.
func (d *Docker) ImageUse(ctx context.Context, ref string) (ImageUse, error) {
	img, err := d.inspect(ctx, ref)
	if err != nil {
		return ImageUse{}, err
	}
	use := ImageUse{ID: img.ID}
	use.References = append(append(use.References, img.RepoTags...), img.RepoDigests...)
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("ancestor", img.ID))})
	if err != nil {
		return ImageUse{}, fmt.Errorf("list the containers of %s: %w", ref, classifyAPI(err, false, ErrNotPresent))
	}
	for _, c := range list {
		use.Containers = append(use.Containers, c.ID)
	}
	return use, nil
}

// RemoveReference removes the reference ref (a name@digest, or prepull's
// local name:tag) from the engine, never forcing and never pruning parent
// images: when the image has other tags or digest references the engine
// only untags ref, and it
// refuses (ErrInUse) to remove an image a container uses. It reports
// whether the image itself was deleted. It is the agent's, for keep_images,
// and nothing else's.
func (d *Docker) RemoveReference(ctx context.Context, ref string) (deleted bool, err error) {
	items, err := d.cli.ImageRemove(ctx, ref, image.RemoveOptions{Force: false, PruneChildren: false})
	if err != nil {
		if cerrdefs.IsConflict(err) {
			return false, fmt.Errorf("remove %s: %w", ref, wrap(ErrInUse, err))
		}
		if cerrdefs.IsNotFound(err) {
			return false, fmt.Errorf("remove %s: %w", ref, wrap(ErrNotPresent, err))
		}
		return false, fmt.Errorf("remove %s: %w", ref, classifyAPI(err, false, ErrNotPresent))
	}
	for _, it := range items {
		if it.Deleted != "" {
			deleted = true
		}
	}
	return deleted, nil
}
