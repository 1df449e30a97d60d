package pull

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/engine"
)

// ErrPlatform is wrapped when the image has no variant for the engine's
// platform: the proxy would pull it, or find it, and fail to start it. It is
// engine.ErrPlatform, so that an engine's own refusal means the same.
var ErrPlatform = engine.ErrPlatform

// PlatformError says which platforms an image has and which one the engine
// needs. It matches ErrPlatform with errors.Is.
type PlatformError struct {
	Reference string
	Have      []engine.Platform // the image's platforms, attestations left out
	Need      engine.Platform   // the engine's
}

func (e *PlatformError) Error() string {
	have := make([]string, len(e.Have))
	for i, p := range e.Have {
		have[i] = display.Text(p.String())
	}
	need := display.Text(e.Need.OS + "/" + e.Need.Architecture)
	msg := fmt.Sprintf("%v: %s is built for %s only, and this proxy's Docker Engine runs %s images", ErrPlatform, e.Reference, strings.Join(have, ", "), need)
	if len(e.Have) == 1 && normArch(e.Have[0].Architecture) == "arm64" {
		msg += "; an image built on an Apple Silicon Mac is linux/arm64 (docker build makes images for the machine it runs on)"
	}
	return msg + fmt.Sprintf(": rebuild it for %s (docker buildx build --platform %s), push it, and build the pak again with the new digest", need, need)
}

// Is makes errors.Is(err, ErrPlatform) true.
func (e *PlatformError) Is(target error) bool { return target == ErrPlatform }

// checkRemote asks the registry, through the engine and with auth, for the
// platforms ref offers, before anything is pulled, and returns a
// *PlatformError when none fits the engine. Its errors are the registry's
// answer too: ErrNotFound for a digest it does not have, ErrUnauthorized for
// a login it refuses. An answer that names no platform (an engine that
// cannot tell) passes: the check after the pull decides then. So does an
// error prepull does not know, except in a dry run, which has no pull to
// say what is wrong.
func (p *Puller) checkRemote(ctx context.Context, log *zap.Logger, o Options, ref string, auth *engine.Auth) error {
	need, err := p.enginePlatform(ctx, log, o)
	if err != nil {
		return err
	}
	var di engine.Distribution
	err = p.retry(ctx, log, o, "registry inspect", func(ctx context.Context) error {
		var err error
		di, err = p.Engine.Distribution(ctx, ref, auth)
		o.reportEngine(err)
		return err
	})
	if err != nil {
		if o.DryRun || ctx.Err() != nil || known(err) {
			return err
		}
		log.Warn("cannot check the image's platform before the pull; it is checked after", zap.Error(err))
		return nil
	}
	if len(imagePlatforms(di.Platforms)) == 0 {
		log.Warn("the engine names no platform for the image; its platform is checked after the pull", zap.String("media_type", di.MediaType))
		return nil
	}
	if err := CheckPlatforms(ref, di.Platforms, need); err != nil {
		return err
	}
	log.Debug("the image has a variant for the engine's platform", zap.Stringer("platform", need), zap.String("media_type", di.MediaType))
	return nil
}

// CheckPlatforms returns a *PlatformError when none of the platforms an
// image or index offers (attestation entries left out) runs on need; nil
// when one does, or when none is named.
func CheckPlatforms(ref string, offered []engine.Platform, need engine.Platform) error {
	have := imagePlatforms(offered)
	if len(have) == 0 || slices.ContainsFunc(have, func(p engine.Platform) bool { return fits(p, need) }) {
		return nil
	}
	return &PlatformError{Reference: ref, Have: have, Need: need}
}

// checkLocal checks that the local image ref names is for the engine's
// platform.
func (p *Puller) checkLocal(ctx context.Context, log *zap.Logger, o Options, ref string) error {
	need, err := p.enginePlatform(ctx, log, o)
	if err != nil {
		return err
	}
	var got engine.Platform
	err = p.retry(ctx, log, o, "image inspect", func(ctx context.Context) error {
		var err error
		got, err = p.Engine.ImagePlatform(ctx, ref)
		o.reportEngine(err)
		return err
	})
	if err != nil {
		return err
	}
	if !fits(got, need) {
		return &PlatformError{Reference: ref, Have: []engine.Platform{got}, Need: need}
	}
	return nil
}

// enginePlatform returns the engine's platform, waiting for an engine that
// is briefly away.
func (p *Puller) enginePlatform(ctx context.Context, log *zap.Logger, o Options) (engine.Platform, error) {
	var need engine.Platform
	err := p.retry(ctx, log, o, "engine version", func(ctx context.Context) error {
		var err error
		need, err = p.Engine.Platform(ctx)
		o.reportEngine(err)
		return err
	})
	return need, err
}

// known reports whether err is an engine error prepull knows the meaning of.
func known(err error) bool {
	for _, kind := range []error{engine.ErrUnreachable, engine.ErrUnauthorized, engine.ErrNotFound, engine.ErrCertificate, engine.ErrNoSpace} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

// imagePlatforms leaves out of an index's platforms the entries that are no
// image: buildx's attestation manifests, unknown/unknown, and entries that
// name no platform.
func imagePlatforms(ps []engine.Platform) []engine.Platform {
	var out []engine.Platform
	for _, p := range ps {
		if p.OS == "" || p.Architecture == "" || p.OS == "unknown" || p.Architecture == "unknown" {
			continue
		}
		out = append(out, p)
	}
	return out
}

// fits reports whether an image of platform have runs on an engine of
// platform need. The variant is not compared: an engine does not report
// its own, and the engine picks among an index's variants by itself.
func fits(have, need engine.Platform) bool {
	return strings.EqualFold(have.OS, need.OS) && normArch(have.Architecture) == normArch(need.Architecture)
}

// normArch names an architecture as Go and the OCI specification do, for
// the names uname and some build tools use instead.
func normArch(arch string) string {
	switch a := strings.ToLower(arch); a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	default:
		return a
	}
}
