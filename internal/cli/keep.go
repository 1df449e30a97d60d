package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/prepull/prepull/agent"
	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/display"
)

// keepPoll is how often prepull keep reads the agent's state while it waits.
const keepPoll = 200 * time.Millisecond

// keepExtraWait is how long past the agent's settle time prepull keep waits
// for the agent by default.
const keepExtraWait = 10 * time.Second

// The statuses of prepull keep.
const (
	keepTaken    = "taken"     // the agent took the file written into watch_dir
	keepKept     = "kept"      // the agent keeps the image already, through the pak in path: nothing written
	keepNotTaken = "not-taken" // written, but the agent did not take it in time (or none runs): it takes it when it runs
	keepFailed   = "failed"    // nothing was written, or the agent refused the file
)

// keepResult is what prepull keep reports. Its JSON form is stable.
type keepResult struct {
	File      string   `json:"file"`                 // the PAK argument
	Name      string   `json:"name,omitempty"`       // the file name in watch_dir
	Path      string   `json:"path,omitempty"`       // the agent's file: where it was written and is now, or the pak that keeps the image already
	Reference string   `json:"reference,omitempty"`  // the image the agent keeps
	Status    string   `json:"status"`               // taken, kept, not-taken or failed
	PakStatus string   `json:"pak_status,omitempty"` // the agent's status of that file: waiting, pulling, present, failed, invalid
	Agent     string   `json:"agent,omitempty"`      // the agent's status: running, degraded, stopped, never-run
	ExitCode  ExitCode `json:"exit_code"`
	Error     string   `json:"error,omitempty"`
}

type keepFlags struct {
	name string
	wait time.Duration
}

func newKeepCommand(g *globals) *cobra.Command {
	f := &keepFlags{}
	cmd := &cobra.Command{
		Use:   "keep [flags] PAK|-",
		Short: "Hand a pak to this proxy's agent, atomically, and wait until the agent takes it",
		Long: `prepull keep writes what the agent needs of PAK (a .pak, an adapter.zip or a
.conf, or - for standard input) into the agent's watch_dir, and waits until
the agent has taken it, so that the agent keeps its image present from then
on. prepull remote --keep runs it on each proxy.

What is written is the adapter .conf and the pak's manifest.txt as a small
adapter.zip named NAME (the PAK's file name, or --name; it must end in .pak),
under a hidden temporary name first, synced, then linked to NAME, so the
agent never sees a partial file and nothing in watch_dir is replaced. The file
is this process's own (mode 0600). When the agent's state already lists a pak
in watch_dir or done/ that names the same image, nothing is written.

The agent's watch_dir, state_dir and settle come from the configuration
(--config): run it with the agent's configuration, as the agent's user.

Statuses: taken (the agent lists the file; pak_status says what it made of
it), kept (the agent keeps that image already, through the pak in path),
not-taken (written, but no agent runs or it did not take the file within
--wait: it takes it when it runs; exit 1), failed.

` + exitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeep(cmd.Context(), g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "file name in watch_dir, ending in .pak (default the PAK's file name; needed for -)")
	fl.DurationVar(&f.wait, "wait", 0, "how long to wait for the agent to take the file (default the agent's settle time and 10s)")
	return cmd
}

func runKeep(ctx context.Context, g *globals, f *keepFlags, arg string) error {
	if err := checkPakArgs([]string{arg}, g.stdin); err != nil {
		return err
	}
	name, err := keepName(arg, f.name)
	if err != nil {
		return err
	}
	if f.wait < 0 {
		return usageErrorf("--wait must not be negative")
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	wait := f.wait
	if wait == 0 {
		wait = cfg.Settle + keepExtraWait
	}
	r := keepPak(ctx, g, cfg, arg, name, wait)
	if err := printKeep(g, r); err != nil {
		return err
	}
	if r.ExitCode != ExitOK {
		return &exitError{code: r.ExitCode}
	}
	return nil
}

// printKeep prints r: a table, or a JSON array of one with --json.
func printKeep(g *globals, r keepResult) error {
	if g.json {
		return printResults(g.stdout, []keepResult{r})
	}
	var tab display.Table
	tab.Row("PAK", "PATH", "STATUS", "AGENT", "ERROR")
	tab.Row(r.File, r.Path, strings.TrimSuffix(r.Status+" "+r.PakStatus, " "), r.Agent, r.Error)
	_, err := tab.WriteTo(g.stdout)
	return err
}

// keepName returns the file name for arg in watch_dir: name when given,
// else the file's own name with .pak added when it has none.
func keepName(arg, name string) (string, error) {
	if name == "" {
		if arg == "-" {
			return "", usageErrorf("--name is needed for standard input (-): the file name in watch_dir, e.g. --name MyAdapter_1.0.0.pak")
		}
		name = filepath.Base(arg)
		if !strings.HasSuffix(strings.ToLower(name), ".pak") {
			name += ".pak"
		}
	}
	switch {
	case name != filepath.Base(name) || name == "." || name == "..":
		return "", usageErrorf("--name %s: a file name, not a path", display.Text(name))
	case strings.HasPrefix(name, "."):
		return "", usageErrorf("--name %s: the agent ignores dot-files", display.Text(name))
	case !strings.HasSuffix(strings.ToLower(name), ".pak") || len(name) <= len(".pak"):
		return "", usageErrorf("--name %s: the agent takes only NAME.pak files", display.Text(name))
	case display.Text(name) != name:
		return "", usageErrorf("--name %s: control or invisible characters", display.Text(name))
	}
	return name, nil
}

// keepPak reads arg, writes what the agent needs of it into watch_dir as
// name unless the agent keeps its image already, and waits at most wait
// for the agent to take it.
func keepPak(ctx context.Context, g *globals, cfg *config.Config, arg, name string, wait time.Duration) keepResult {
	r := keepResult{File: arg, Name: name, Status: keepFailed}
	fail := func(err error) keepResult {
		r.ExitCode, r.Error = CodeFor(err), err.Error()
		if r.ExitCode == ExitOK {
			r.ExitCode = ExitFailure
		}
		return r
	}
	img, data, err := readSlim(arg, g.stdin)
	if err != nil {
		return fail(err)
	}
	t, err := img.Resolve(cfg.DefaultRegistry) // as the agent settles it
	if err != nil {
		return fail(err)
	}
	// The agent keeps absolute paths.
	watchDir, err := filepath.Abs(cfg.WatchDir)
	if err != nil {
		return fail(fmt.Errorf("watch_dir: %w", err))
	}
	r.Reference = t.Reference
	report, err := agent.ReadReport(cfg.StateDir)
	if err != nil {
		return fail(fmt.Errorf("the agent's state: %w", err))
	}
	r.Agent = report.Agent.Status
	if p, ok := keptBy(report.State, watchDir, t.Reference); ok {
		r.Status, r.Path, r.PakStatus = keepKept, p.File, p.Status
		return r
	}
	sum := sha256.Sum256(data)
	sha := "sha256:" + hex.EncodeToString(sum[:])
	path, err := dropFile(watchDir, name, data, sha)
	if err != nil {
		return fail(err)
	}
	r.Path = path
	r.Status = keepNotTaken
	for attempt := 0; ; attempt++ {
		if p, ok := takenAs(report.State, watchDir, sha); ok {
			r.Status, r.Path, r.PakStatus = keepTaken, p.File, p.Status
			switch p.Status {
			case agent.StatusInvalid:
				r.Status, r.ExitCode, r.Error = keepFailed, ExitBadPak, "the agent refused it: "+p.LastError
				return r
			case agent.StatusPresent, agent.StatusFailed:
				return r
			}
		}
		switch r.Agent {
		case agent.AgentStopped, agent.AgentNeverRun:
			if r.Status == keepNotTaken {
				r.ExitCode, r.Error = ExitFailure, fmt.Sprintf("no agent is running (%s): it takes %s when it starts", r.Agent, name)
			}
			return r
		}
		if time.Duration(attempt)*keepPoll >= wait {
			if r.Status == keepNotTaken {
				r.ExitCode, r.Error = ExitFailure, fmt.Sprintf("the agent did not take %s within %v; it stays in watch_dir for the agent", name, wait)
				if d := report.Agent.Degraded; len(d) > 0 {
					r.Error += " (the agent is degraded: " + strings.Join(d, "; ") + ")"
				}
			}
			return r
		}
		select {
		case <-ctx.Done():
			if r.Status == keepNotTaken {
				r.ExitCode, r.Error = ExitInterrupted, fmt.Sprintf("interrupted before the agent took %s; it stays in watch_dir for the agent", name)
				if i, ok := interrupted(ctx); ok {
					r.ExitCode = i.code()
				}
			}
			return r
		case <-time.After(keepPoll):
		}
		if report, err = agent.ReadReport(cfg.StateDir); err != nil {
			return fail(fmt.Errorf("the agent's state: %w", err))
		}
		r.Agent = report.Agent.Status
	}
}

// keptBy returns a pak of the agent's state, still in watch_dir or done/,
// that names reference.
func keptBy(s *agent.State, watchDir, reference string) (agent.PakState, bool) {
	for _, p := range s.Paks {
		dir := filepath.Dir(p.File)
		if p.Reference != reference || p.Status == agent.StatusInvalid || (dir != watchDir && dir != filepath.Join(watchDir, agent.DoneDir)) {
			continue
		}
		if fi, err := os.Lstat(p.File); err == nil && fi.Mode().IsRegular() {
			return p, true
		}
	}
	return agent.PakState{}, false
}

// takenAs returns the pak of the agent's state with these bytes, in
// watch_dir or below it.
func takenAs(s *agent.State, watchDir, sha string) (agent.PakState, bool) {
	for _, p := range s.Paks {
		if p.SHA256 == sha && strings.HasPrefix(p.File, watchDir+string(filepath.Separator)) {
			return p, true
		}
	}
	return agent.PakState{}, false
}

// dropFile writes data into watchDir as name, atomically and never
// replacing a file: under a hidden temporary name (the agent ignores
// dot-files), synced, then linked to name, and the folder synced. A file of
// that name with the same bytes is left as it is; one with other bytes is an
// error. It returns the file's path.
func dropFile(watchDir, name string, data []byte, sha string) (string, error) {
	fi, err := os.Stat(watchDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("watch_dir %s does not exist: is the agent installed here, and is this its configuration (--config)? %w", display.Text(watchDir), config.ErrInvalid)
	case err != nil:
		return "", fmt.Errorf("watch_dir: %w", err)
	case !fi.IsDir():
		return "", fmt.Errorf("watch_dir %s is not a directory: %w", display.Text(watchDir), config.ErrInvalid)
	}
	path := filepath.Join(watchDir, name)
	tmp, err := os.CreateTemp(watchDir, "."+name+".keep-*")
	if err != nil {
		return "", fmt.Errorf("write into watch_dir: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", display.Text(tmp.Name()), err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		old, rerr := os.ReadFile(path)
		if sum := sha256.Sum256(old); rerr != nil || "sha256:"+hex.EncodeToString(sum[:]) != sha {
			return "", fmt.Errorf("watch_dir already holds another %s: not replaced (remove it, or give another --name)", display.Text(path))
		}
		return path, nil
	} else if err != nil {
		return "", fmt.Errorf("write %s: %w", display.Text(path), err)
	}
	d, err := os.Open(watchDir)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		return "", fmt.Errorf("sync watch_dir: %w", err)
	}
	return path, nil
}
