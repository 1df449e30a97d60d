package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/mirror"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/retry"
)

// mirrorResult is one entry of `prepull mirror --json`. Its JSON form is stable.
type mirrorResult struct {
	File        string   `json:"file"`
	AdapterKind string   `json:"adapter_kind,omitempty"`
	Source      string   `json:"source,omitempty"`    // the reference the pak names
	Reference   string   `json:"reference,omitempty"` // the copy's reference
	Status      string   `json:"status"`              // mirrored, present or failed
	Manifests   int      `json:"manifests,omitempty"` // manifests written: 1, or 1 + an index's
	Out         string   `json:"out,omitempty"`       // the rewritten pak, with --out
	DurationMS  int64    `json:"duration_ms"`
	ExitCode    ExitCode `json:"exit_code"`
	// Cause is why it failed in a few words; Error is the whole chain.
	Cause string `json:"cause,omitempty"`
	Error string `json:"error,omitempty"`
}

func newMirrorCommand(g *globals) *cobra.Command {
	var to, out, defaultRegistry, verify, sum string
	var timeout time.Duration
	var anyPlatform bool
	cmd := &cobra.Command{
		Use:   "mirror --to REGISTRY[/PATH]|oci:DIR|oci-archive:FILE [--out DIR] PAK...",
		Short: "Copy each pak's image into another registry, digest unchanged, for dark sites",
		Long: `mirror copies the image each pak names into the registry --to names, byte
for byte: the same manifest (an index with every manifest it lists,
attestations included) and the same blobs, so the digest the pak names stays
true. The copy is REGISTRY/PATH/<the pak's repository>@<digest>. Blobs the
destination has already are not sent again, and a copy already there is
reported as present. The copy is verified by digest before it is reported.
An image with no linux/amd64 variant (a Cloud Proxy could not run it) is
refused with exit code 7, unless --any-platform.

Logins for both registries come from the same places as for a pull: the
registries list of the configuration, then Docker's config.json (auths,
credsStore, credHelpers). A registry's ca_file is trusted for TLS; plain
HTTP is used for loopback registries only. A registry that refuses the
login is named with the user and where the login came from (exit code 4).

With --out DIR, a copy of each pak is written to DIR under the same file
name, its adapter .conf naming the mirror (REGISTRY and REPOSITORY), every
other member byte-identical. Only unsigned packs built by the Integration SDK
can be rewritten: a signed pack is refused. DIR must not be a pak's own
folder (exit code 2): the copy would take the original's name.

Where no machine reaches both registries, the image crosses as a file (see
docs/mirror.md): --to oci:DIR or --to oci-archive:FILE.tar writes an OCI
image layout holding each pak's image byte for byte, the paks, and
prepull-bundle.json listing each pak's SHA-256 and image digest, and prints
that file's SHA-256 to compare out of band. --verify BUNDLE checks a bundle
without pushing. mirror BUNDLE --to REGISTRY[/PATH] [--out DIR] checks every
blob, manifest and pak first, then pushes, and writes the paks rewritten.
With --sha256 HEX, both refuse a bundle whose prepull-bundle.json has
another SHA-256 than the one the export printed.

` + exitCodesHelp(g.system()),
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if isBundleRun(args, to, verify) {
				return runBundle(cmd.Context(), g, bundleRun{to: to, out: out, verify: verify, sha256: sum, defaultRegistry: defaultRegistry, timeout: timeout, anyPlatform: anyPlatform}, args)
			}
			if sum != "" {
				return usageErrorf("--sha256 goes with a bundle: --verify BUNDLE, or BUNDLE --to REGISTRY")
			}
			if err := checkPakArgs(args, g.stdin); err != nil {
				return err
			}
			if to == "" {
				return usageErrorf("mirror needs --to REGISTRY[/PATH]")
			}
			if _, _, err := mirror.ParseTo(to); err != nil {
				return usageErrorf("%w", err)
			}
			if err := checkOut(out, args); err != nil {
				return err
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if err := setDefaultRegistry(cfg, defaultRegistry); err != nil {
				return err
			}
			if timeout > 0 {
				cfg.Timeout = timeout
			}
			log := g.logger(cfg)
			defer log.Sync()
			c := &mirror.Copier{Credentials: credentials.NewResolver(cfg, nil), Config: cfg, AnyPlatform: anyPlatform}
			return runMirror(cmd.Context(), g, c, log, mirrorRun{to: to, out: out, defaultRegistry: cfg.DefaultRegistry, timeout: cfg.Timeout, brief: g.briefFailures(cfg)}, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&to, "to", "", "registry (and path) to copy into, e.g. harbor.example.com/mirror; or a bundle, oci:DIR or oci-archive:FILE")
	fl.StringVar(&verify, "verify", "", "check a bundle (oci:DIR or oci-archive:FILE) against its digests, pushing nothing")
	fl.StringVar(&sum, "sha256", "", "with --verify or a push of a bundle: refuse it unless prepull-bundle.json has this SHA-256, the one the export printed")
	fl.StringVar(&out, "out", "", "folder to write each pak rewritten to name the mirror")
	fl.StringVar(&defaultRegistry, "default-registry", "", "registry for paks built without REGISTRY (overrides default_registry)")
	fl.DurationVar(&timeout, "timeout", 0, "give up on a pak after this long (default timeout in the configuration, 10m)")
	fl.BoolVar(&anyPlatform, "any-platform", false, "copy an image that has no linux/amd64 variant too (a Cloud Proxy cannot run it)")
	return cmd
}

// checkOut checks --out before any work: a folder, and none of the paks'
// own, where a rewritten pak would take the original's name.
func checkOut(out string, paks []string) error {
	if out == "" {
		return nil
	}
	st, err := os.Stat(out)
	if err != nil || !st.IsDir() {
		return usageErrorf("--out %s: not a folder", display.Text(out))
	}
	for _, p := range paks {
		if p == "-" {
			continue
		}
		if dir, err := os.Stat(filepath.Dir(p)); err == nil && os.SameFile(dir, st) {
			return usageErrorf("--out %s is the folder %s is in: the rewritten pak would replace it; choose another folder", display.Text(out), display.Text(p))
		}
	}
	return nil
}

// mirrorRun is what one mirror command was asked to do.
type mirrorRun struct {
	to, out, defaultRegistry string
	timeout                  time.Duration
	brief                    bool // a failure is said by its line alone (globals.briefFailures)
}

func runMirror(ctx context.Context, g *globals, c *mirror.Copier, log *zap.Logger, run mirrorRun, args []string) error {
	results := make([]mirrorResult, 0, len(args))
	worst := ExitOK
	for _, arg := range args {
		r := mirrorOne(ctx, g, c, log, run, arg)
		worst = max(worst, r.ExitCode)
		results = append(results, r)
		if !g.json {
			printMirrorLine(g, r)
		}
	}
	if g.json {
		if err := printResults(g.stdout, results); err != nil {
			return err
		}
	}
	if worst != ExitOK {
		return &exitError{code: worst}
	}
	return nil
}

// mirrorOne copies one pak's image and, with --out, writes the pak rewritten.
func mirrorOne(ctx context.Context, g *globals, c *mirror.Copier, log *zap.Logger, run mirrorRun, arg string) mirrorResult {
	start := time.Now()
	r := mirrorResult{File: arg, Status: string(mirror.Failed)}
	fail := func(err error) mirrorResult {
		r.ExitCode, r.Error, r.DurationMS = CodeFor(err), err.Error(), time.Since(start).Milliseconds()
		r.Cause = strings.TrimPrefix(pull.Cause(err), display.Text(arg)+": ")
		if !run.brief {
			log.Error("mirror failed", zap.String("pak", arg), zap.String("reference", r.Source), zap.String("copy", r.Reference), zap.Error(err))
		}
		return r
	}
	f, err := pak.OpenArg(arg, g.stdin)
	if err != nil {
		return fail(err)
	}
	f.Close()
	img := f.Image
	r.AdapterKind = img.AdapterKind
	t, err := img.Resolve(run.defaultRegistry)
	if err != nil {
		return fail(err)
	}
	r.Source = t.Reference
	dst, err := mirror.Destination(run.to, t)
	if err != nil {
		return fail(usageErrorf("%w", err))
	}
	r.Reference = dst.Reference
	if run.out != "" && arg == "-" {
		return fail(usageErrorf("--out needs a pak file, not standard input"))
	}

	cctx, cancel := context.WithTimeout(ctx, run.timeout)
	defer cancel()
	log.Info("mirroring", zap.String("pak", arg), zap.String("reference", t.Reference), zap.String("copy", dst.Reference))
	dst, err = copyRetrying(cctx, c, log, t, dst)
	if err != nil {
		return fail(err)
	}
	r.Status, r.Manifests = string(dst.Status), dst.Manifests

	if run.out != "" {
		path := filepath.Join(run.out, filepath.Base(arg))
		if err := pak.Rewrite(img, path, dst.Registry, dst.Repository); err != nil {
			r.Status = string(mirror.Failed)
			return fail(fmt.Errorf("--out: %w", err))
		}
		r.Out = path
	}
	r.DurationMS = time.Since(start).Milliseconds()
	return r
}

// printMirrorLine prints one result line: status, pak, copy, and the
// rewritten pak or why it failed (the cause; with --verbose the error).
func printMirrorLine(g *globals, r mirrorResult) {
	ref := r.Reference
	if ref == "" {
		ref = "-"
	}
	line := fmt.Sprintf("%-10s %s  %s", r.Status, display.Text(r.File), display.Text(ref))
	switch {
	case r.Error != "":
		msg := r.Cause
		if g.verbose || msg == "" {
			msg = r.Error
		}
		line += "  error: " + display.Text(msg)
	case r.Out != "":
		line += "  -> " + display.Text(r.Out)
	}
	fmt.Fprintln(g.stdout, line)
}

// copyRetrying copies as c.Copy does, again after a registry that could not
// be reached, pull.DefaultRegistryAttempts times in all with the one-shot's
// backoff, and not again when its name does not resolve: the one-shot's
// rules.
func copyRetrying(ctx context.Context, c *mirror.Copier, log *zap.Logger, t pak.Target, dst mirror.Result) (mirror.Result, error) {
	attempts := 0
	var out mirror.Result
	err := retry.Do(ctx, retry.Default, func(err error) bool {
		return errors.Is(err, engine.ErrRegistryUnreachable) && !engine.NameNotFound(err) && attempts < pull.DefaultRegistryAttempts
	}, func(attempt int, err error, delay time.Duration) {
		log.Warn("mirror failed, will retry", zap.String("reference", t.Reference), zap.Int("attempt", attempt), zap.Duration("retry_in", delay), zap.Error(err))
	}, func(ctx context.Context) error {
		attempts++
		var err error
		out, err = c.Copy(ctx, t, dst)
		return err
	})
	if err != nil && attempts >= pull.DefaultRegistryAttempts && errors.Is(err, engine.ErrRegistryUnreachable) {
		err = fmt.Errorf("%w (gave up after %d attempts)", err, attempts)
	}
	return out, err
}
