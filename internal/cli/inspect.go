package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
)

// inspectResult is one entry of `prepull inspect --json`. Its JSON form is stable.
type inspectResult struct {
	File string `json:"file"`
	*pak.Target
	ExitCode ExitCode `json:"exit_code"`
	Error    string   `json:"error,omitempty"`
}

func newInspectCommand(g *globals) *cobra.Command {
	var defaultRegistry string
	cmd := &cobra.Command{
		Use:   "inspect [--json] PAK...",
		Short: "Show which image each pak references (no network, no Docker)",
		Long: `inspect reads each pak and prints the image it references: adapter kind,
registry (and whether it came from the pak or from default_registry),
repository, digest and the full reference. It needs neither the network nor
Docker Engine. Exit code 3 when a pak does not name a pullable image.
A pak that most likely names the wrong image (Integration SDK 1.x turns a
registry given as localhost:PORT/... into registry.hub.docker.com/localhost)
is read as written, with a warning on stderr and in --json's "warnings".
An SDK 0.x Docker Hub pak (REGISTRY=user) shows registry docker.io and the
reference user/repo@DIGEST, as the proxy pulls it.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPakArgs(args, g.stdin); err != nil {
				return err
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if err := setDefaultRegistry(cfg, defaultRegistry); err != nil {
				return err
			}
			return runInspect(g, cfg.DefaultRegistry, args)
		},
	}
	cmd.Flags().StringVar(&defaultRegistry, "default-registry", "", "registry for paks built without REGISTRY (overrides default_registry)")
	return cmd
}

func runInspect(g *globals, defaultRegistry string, args []string) error {
	results := make([]inspectResult, 0, len(args))
	worst := ExitOK
	for _, arg := range args {
		r := inspectResult{File: arg}
		t, err := readTarget(arg, g.stdin, defaultRegistry)
		if err != nil {
			r.ExitCode, r.Error = CodeFor(err), err.Error()
			if !g.terminal || g.verbose || g.json {
				printError(g.stderr, err) // on a terminal the row says it
			}
		} else {
			r.Target = &t
			for _, w := range t.Warnings {
				fmt.Fprintf(g.stderr, "prepull: warning: %s: %s\n", display.Text(arg), w)
			}
		}
		worst = max(worst, r.ExitCode)
		results = append(results, r)
	}
	if g.json {
		if err := printResults(g.stdout, results); err != nil {
			return err
		}
	} else {
		var tab display.Table
		tab.Row("FILE", "ADAPTER KIND", "REFERENCE", "REGISTRY FROM")
		for _, r := range results {
			if r.Target != nil {
				tab.Row(r.File, r.AdapterKind, r.Reference, r.RegistrySource)
				continue
			}
			// A pak that failed keeps its row, with the reason in short:
			// the error without the file name the row already shows.
			reason := strings.TrimPrefix(r.Error, display.Text(r.File)+": ")
			tab.Row(r.File, "-", "failed: "+reason, "-")
		}
		if _, err := tab.WriteTo(g.stdout); err != nil {
			return err
		}
	}
	if worst != ExitOK {
		return &exitError{code: worst}
	}
	return nil
}
