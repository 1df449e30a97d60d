package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/mirror"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
)

// bundleRun is what a mirror command with a bundle (oci:DIR or
// oci-archive:FILE) was asked to do: write one from paks (--to BUNDLE),
// check one (--verify BUNDLE), or push one into a registry (BUNDLE --to
// REGISTRY).
type bundleRun struct {
	to, out, verify, defaultRegistry string
	// sha256 is the bundle manifest's SHA-256 the export printed, hex, or
	// empty: --sha256.
	sha256      string
	timeout     time.Duration
	anyPlatform bool // --any-platform
}

// bundleJSON is `prepull mirror --json` for an export or a --verify. Its
// JSON form is stable.
type bundleJSON struct {
	Bundle string `json:"bundle"`
	// ManifestSHA256 is prepull-bundle.json's, to compare out of band.
	ManifestSHA256 string         `json:"manifest_sha256"`
	Paks           []mirrorResult `json:"paks"`
	// Error says why a --verify refused the bundle, and Member which file
	// of it (a path inside the bundle) is wrong, when one is.
	Error  string `json:"error,omitempty"`
	Member string `json:"member,omitempty"`
}

// isBundleRun tells whether a mirror command works with a bundle.
func isBundleRun(args []string, to, verify string) bool {
	if verify != "" {
		return true
	}
	if _, ok := mirror.ParseBundle(to); ok {
		return true
	}
	if len(args) == 1 {
		_, ok := mirror.ParseBundle(args[0])
		return ok
	}
	return false
}

// runBundle checks the arguments of a bundle run and does it.
func runBundle(ctx context.Context, g *globals, run bundleRun, args []string) error {
	mode, ref, err := bundleMode(g, run, args)
	if err != nil {
		return err
	}
	if run.sha256 != "" {
		if mode == "export" {
			return usageErrorf("--sha256 goes with --verify or a push of a bundle: an export prints it")
		}
		sum, ok := parseSHA256(run.sha256)
		if !ok {
			return usageErrorf("--sha256 %s: want the 64 hexadecimal digits the export printed", display.Text(run.sha256))
		}
		run.sha256 = sum
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	if err := setDefaultRegistry(cfg, run.defaultRegistry); err != nil {
		return err
	}
	run.defaultRegistry = cfg.DefaultRegistry
	if run.timeout <= 0 && mode == "import" {
		run.timeout = cfg.Timeout // per pak; an export is bounded only by --timeout
	}
	log := g.logger(cfg)
	defer log.Sync()
	c := &mirror.Copier{Credentials: credentials.NewResolver(cfg, nil), Config: cfg, AnyPlatform: run.anyPlatform}
	switch mode {
	case "verify":
		return runVerify(g, log, ref, run.sha256)
	case "export":
		return runExport(ctx, g, c, log, run, ref, args)
	}
	return runImport(ctx, g, c, log, run, ref)
}

// bundleMode tells what a bundle run does (verify, export or import) and
// with which bundle, or why its arguments do not go together.
func bundleMode(g *globals, run bundleRun, args []string) (string, mirror.BundleRef, error) {
	b, toBundle := mirror.ParseBundle(run.to)
	switch {
	case run.verify != "":
		ref, ok := mirror.ParseBundle(run.verify)
		if !ok {
			return "", ref, usageErrorf("--verify %s: want oci:DIR or oci-archive:FILE", display.Text(run.verify))
		}
		if len(args) > 0 || run.to != "" || run.out != "" {
			return "", ref, usageErrorf("--verify BUNDLE takes no PAK, --to or --out")
		}
		return "verify", ref, nil
	case toBundle:
		return "export", b, exportArgs(g, run, args)
	}
	ref, _ := mirror.ParseBundle(args[0])
	return "import", ref, importArgs(run, args)
}

// exportArgs checks the arguments of a run that writes paks into the
// bundle run.to.
func exportArgs(g *globals, run bundleRun, args []string) error {
	if len(args) == 0 {
		return usageErrorf("mirror --to %s needs the paks to put into it", display.Text(run.to))
	}
	if run.out != "" {
		return usageErrorf("--out goes with a push into a registry (mirror BUNDLE --to REGISTRY --out DIR), not with --to %s", display.Text(run.to))
	}
	for _, a := range args {
		if a == "-" {
			return usageErrorf("a bundle holds pak files: give a path, not standard input")
		}
		if _, ok := mirror.ParseBundle(a); ok {
			return usageErrorf("%s: a bundle goes into a registry (mirror BUNDLE --to REGISTRY), not into another bundle", display.Text(a))
		}
	}
	return checkPakArgs(args, g.stdin)
}

// importArgs checks the arguments of a run that pushes the bundle args[0]
// into a registry.
func importArgs(run bundleRun, args []string) error {
	if run.to == "" {
		return usageErrorf("mirror %s needs --to REGISTRY[/PATH]", display.Text(args[0]))
	}
	if _, _, err := mirror.ParseTo(run.to); err != nil {
		return usageErrorf("%w", err)
	}
	if run.out != "" {
		if st, err := os.Stat(run.out); err != nil || !st.IsDir() {
			return usageErrorf("--out %s: not a folder", display.Text(run.out))
		}
	}
	return nil
}

// runExport writes the paks and their images into the bundle.
func runExport(ctx context.Context, g *globals, c *mirror.Copier, log *zap.Logger, run bundleRun, ref mirror.BundleRef, args []string) error {
	var paks []mirror.ExportPak
	results := make([]mirrorResult, 0, len(args))
	for _, arg := range args {
		f, err := pak.OpenFile(arg)
		if err != nil {
			return err
		}
		f.Close()
		t, err := f.Image.Resolve(run.defaultRegistry)
		if err != nil {
			return err
		}
		paks = append(paks, mirror.ExportPak{Path: arg, Image: f.Image, Target: t})
		results = append(results, mirrorResult{File: arg, AdapterKind: f.Image.AdapterKind, Source: t.Reference, Reference: t.Reference, Status: "exported"})
	}
	if run.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, run.timeout)
		defer cancel()
	}
	start := time.Now()
	log.Info("reading the images' manifests", zap.String("bundle", ref.String()), zap.Int("paks", len(paks)))
	e, err := c.PlanExport(ctx, paks)
	if err != nil {
		return err
	}
	sayf(g, "%s to write into %s\n", summaryText(e.Summary()), display.Text(ref.String()))
	var cnt mirror.Counter
	stop := g.legProgress(log, "export", &cnt)
	sum, err := c.Write(ctx, e, ref, &cnt)
	stop()
	if err != nil {
		return fmt.Errorf("%s: %w", display.Text(ref.String()), err)
	}
	for i := range results {
		results[i].DurationMS = time.Since(start).Milliseconds()
	}
	log.Info("bundle written", zap.String("bundle", ref.String()), zap.String("sha256", sum))
	return printBundle(g, ref, sum, results, "every image written byte for byte; compare this SHA-256 of "+mirror.BundleManifestFile+" on the receiving side")
}

// runVerify checks a bundle whole and says so.
func runVerify(g *globals, log *zap.Logger, ref mirror.BundleRef, want string) error {
	var cnt mirror.Counter
	stop := g.legProgress(log, "verify", &cnt)
	b, err := mirror.OpenBundle(ref, want, &cnt)
	stop()
	if err != nil && g.json {
		j := bundleJSON{Bundle: ref.String(), Paks: []mirrorResult{}, Error: err.Error()}
		var be *mirror.BundleError
		if errors.As(err, &be) {
			j.Member = be.Member
		}
		if perr := display.JSON(g.stdout, j); perr != nil {
			return perr
		}
	}
	if err != nil {
		return err
	}
	defer b.Close()
	results := make([]mirrorResult, 0, len(b.Manifest.Paks))
	for _, p := range b.Manifest.Paks {
		results = append(results, mirrorResult{File: p.File, AdapterKind: p.AdapterKind, Source: p.Reference, Reference: p.Reference, Status: "verified"})
	}
	return printBundle(g, ref, b.SHA256, results, "every pak, manifest and blob matches; compare this SHA-256 with the one the export printed")
}

// printBundle prints an export's or a verify's result: a line per pak,
// then the bundle's, or with --json one object.
func printBundle(g *globals, ref mirror.BundleRef, sum string, results []mirrorResult, note string) error {
	if g.json {
		return display.JSON(g.stdout, bundleJSON{Bundle: ref.String(), ManifestSHA256: sum, Paks: results})
	}
	for _, r := range results {
		fmt.Fprintf(g.stdout, "%-10s %s  %s\n", r.Status, display.Text(r.File), display.Text(r.Reference))
	}
	fmt.Fprintf(g.stdout, "%-10s %s  sha256:%s  (%s)\n", "bundle", display.Text(ref.String()), sum, note)
	return nil
}

// runImport checks the whole bundle, then pushes each pak's image and,
// with --out, writes each pak rewritten to name its copy.
func runImport(ctx context.Context, g *globals, c *mirror.Copier, log *zap.Logger, run bundleRun, ref mirror.BundleRef) error {
	var cnt mirror.Counter
	stop := g.legProgress(log, "verify", &cnt)
	b, err := mirror.OpenBundle(ref, run.sha256, &cnt)
	stop()
	if err != nil {
		return err
	}
	defer b.Close()
	log.Info("bundle verified", zap.String("bundle", ref.String()), zap.String("sha256", b.SHA256))
	sayf(g, "%s verified (%s sha256:%s); %s to push to %s\n", display.Text(ref.String()), mirror.BundleManifestFile, b.SHA256,
		summaryText(b.Summary()), display.Text(run.to))

	var push mirror.Counter
	s := b.Summary()
	push.TotalBlobs.Store(int64(s.Blobs))
	push.TotalBytes.Store(s.Bytes)
	stop = g.legProgress(log, "push", &push)
	results := make([]mirrorResult, 0, len(b.Manifest.Paks))
	worst := ExitOK
	for _, p := range b.Manifest.Paks {
		r := importOne(ctx, c, log, run, b, p, &push)
		worst = max(worst, r.ExitCode)
		results = append(results, r)
	}
	stop()
	if g.json {
		if err := printResults(g.stdout, results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			printMirrorLine(g, r)
		}
	}
	if worst != ExitOK {
		return &exitError{code: worst}
	}
	return nil
}

// importOne pushes one pak's image from the bundle and, with --out, writes
// the pak rewritten.
func importOne(ctx context.Context, c *mirror.Copier, log *zap.Logger, run bundleRun, b *mirror.Bundle, p mirror.BundlePak, cnt *mirror.Counter) mirrorResult {
	start := time.Now()
	r := mirrorResult{File: p.File, AdapterKind: p.AdapterKind, Source: p.Reference, Status: string(mirror.Failed)}
	fail := func(err error) mirrorResult {
		r.Status = string(mirror.Failed)
		r.ExitCode, r.Error, r.DurationMS = CodeFor(err), err.Error(), time.Since(start).Milliseconds()
		log.Error("mirror failed", zap.String("pak", p.File), zap.String("reference", p.Reference), zap.String("copy", r.Reference), zap.Error(err))
		return r
	}
	dst, err := mirror.Destination(run.to, p.Target())
	if err != nil {
		return fail(usageErrorf("%w", err))
	}
	r.Reference = dst.Reference
	cctx, cancel := context.WithTimeout(ctx, run.timeout)
	defer cancel()
	log.Info("mirroring", zap.String("pak", p.File), zap.String("reference", p.Reference), zap.String("copy", dst.Reference))
	dst, err = c.Push(cctx, b, p, dst, cnt)
	if err != nil {
		return fail(err)
	}
	r.Status, r.Manifests = string(dst.Status), dst.Manifests
	if run.out != "" {
		f, err := pak.OpenFile(filepath.Join(b.Dir, filepath.FromSlash(p.File)))
		if err != nil {
			return fail(err)
		}
		f.Close()
		out := filepath.Join(run.out, path.Base(p.File))
		if err := pak.Rewrite(f.Image, out, dst.Registry, dst.Repository); err != nil {
			return fail(fmt.Errorf("--out: %w", err))
		}
		r.Out = out
	}
	r.DurationMS = time.Since(start).Milliseconds()
	return r
}

// parseSHA256 returns s, hex digits with an optional sha256: prefix, as
// lower-case hex, and whether it is a SHA-256.
func parseSHA256(s string) (string, bool) {
	s = strings.ToLower(strings.TrimPrefix(s, "sha256:"))
	if len(s) != 64 || strings.Trim(s, "0123456789abcdef") != "" {
		return "", false
	}
	return s, true
}

// summaryText says what a leg moves: "2 paks, 1 image, 3 manifests, 5
// blobs, 12.3 MiB".
func summaryText(s mirror.Summary) string {
	return fmt.Sprintf("%s, %s, %s, %s, %s", plural(s.Paks, "pak"), plural(s.Images, "image"),
		plural(s.Manifests, "manifest"), plural(s.Blobs, "blob"), pull.Mebibytes(s.Bytes))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// sayf writes a diagnostic line to stderr, unless --quiet.
func sayf(g *globals, format string, args ...any) {
	if !g.quiet {
		fmt.Fprintf(g.stderr, format, args...)
	}
}

// legProgressEvery is how often a bundle leg's progress line is redrawn
// on a terminal; off one, it is logged every progressEvery, as a pull's.
const legProgressEvery = 200 * time.Millisecond

// legProgress shows cnt while a leg runs: on a terminal as a line on
// stderr redrawn in place, otherwise as an info log line now and then, and
// not at all with --quiet. The returned stop ends it, on a terminal with
// the final count.
func (g *globals) legProgress(log *zap.Logger, leg string, cnt *mirror.Counter) (stop func()) {
	if g.quiet {
		return func() {}
	}
	text := func() string {
		return fmt.Sprintf("%d/%d blobs, %s / %s", cnt.Blobs.Load(), cnt.TotalBlobs.Load(),
			pull.Mebibytes(cnt.Bytes.Load()), pull.Mebibytes(cnt.TotalBytes.Load()))
	}
	every, show := progressEvery, func(string) { log.Info(leg+" progress", zap.String("progress", text())) }
	if g.terminal {
		every, show = legProgressEvery, func(end string) { fmt.Fprintf(g.stderr, "\r%s: %s\x1b[K%s", leg, text(), end) }
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				show("")
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			if g.terminal {
				show("\n")
			}
		})
	}
}
