package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
)

// slimSuffix ends the name of a slimmed pak: never the .pak it came from.
const slimSuffix = pak.SlimSuffix

// The statuses of prepull slim.
const (
	slimWritten   = "written"   // the file was written (or replaced: it held other bytes)
	slimUnchanged = "unchanged" // the file held these bytes already: left as it was
	slimFailed    = "failed"
)

// slimResult is one row of prepull slim. Its JSON form is stable.
type slimResult struct {
	File     string     `json:"file"`           // the PAK argument
	Path     string     `json:"path,omitempty"` // the slimmed file written
	Image    *pak.Image `json:"image,omitempty"`
	Bytes    int        `json:"bytes,omitempty"` // the slimmed file's size
	SHA256   string     `json:"sha256,omitempty"`
	Status   string     `json:"status"` // written, unchanged or failed
	ExitCode ExitCode   `json:"exit_code"`
	Error    string     `json:"error,omitempty"`
}

func newSlimCommand(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "slim PAK... --out DIR",
		Short: "Write what a proxy needs of each pak (its .conf and manifest) into DIR",
		Long: `prepull slim writes, for each PAK, what a Cloud Proxy needs of it into DIR:
its adapter .conf and manifest.txt, byte for byte, as a small adapter.zip
(a few KiB, however big the pak), exactly what prepull remote sends. A .conf
is written as it is. The file is named after the PAK, with the suffix
` + slimSuffix + ` in place of .pak (MyAdapter_1.0.0.pak becomes
MyAdapter_1.0.0` + slimSuffix + `): prepull, prepull keep and the agent read it as the pak.

A file of that name holding the same bytes is left as it is (unchanged);
one with other bytes is replaced atomically. Every pak is checked as
prepull inspect checks it, and a pak that names no pullable image exits 3
with nothing written for it. Configuration management (the Ansible role in
ansible/) slims paks on the controller and copies only this to each proxy.

` + exitCodesHelp(g.system()),
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSlim(g, out, args)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "folder to write the slimmed files into (must exist)")
	return cmd
}

func runSlim(g *globals, out string, args []string) error {
	if err := checkPakArgs(args, g.stdin); err != nil {
		return err
	}
	if out == "" {
		return usageErrorf("--out DIR is needed: the folder to write the slimmed files into")
	}
	if st, err := os.Stat(out); err != nil || !st.IsDir() {
		return usageErrorf("--out %s: not a folder", display.Text(out))
	}
	for _, a := range args {
		if a == "-" {
			return usageErrorf("prepull slim names its files after the paks: standard input (-) has no name")
		}
	}
	names := map[string]string{}
	for _, a := range args {
		n := slimName(a)
		if prev, ok := names[n]; ok {
			return usageErrorf("%s and %s would both be written as %s", display.Text(prev), display.Text(a), display.Text(n))
		}
		names[n] = a
	}
	results := make([]slimResult, 0, len(args))
	worst := ExitOK
	for _, a := range args {
		r := slimOne(a, filepath.Join(out, slimName(a)))
		if r.ExitCode != ExitOK {
			printError(g.stderr, errors.New(r.Error))
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
		tab.Row("PAK", "PATH", "STATUS", "BYTES")
		for _, r := range results {
			tab.Row(r.File, r.Path, r.Status, fmt.Sprint(r.Bytes))
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

// slimName is the name of arg's slimmed file: its base name with .pak (any
// case) replaced by slimSuffix, or slimSuffix added.
func slimName(arg string) string {
	return slimmed(filepath.Base(arg))
}

// slimmed is name with .pak (any case) replaced by slimSuffix, or
// slimSuffix added.
func slimmed(name string) string {
	if strings.HasSuffix(strings.ToLower(name), ".pak") && len(name) > len(".pak") {
		name = name[:len(name)-len(".pak")]
	}
	return strings.TrimSuffix(name, slimSuffix) + slimSuffix
}

// slimOne writes what a proxy needs of arg as path.
func slimOne(arg, path string) slimResult {
	r := slimResult{File: arg, Status: slimFailed}
	img, data, err := readSlim(arg, nil)
	if err != nil {
		r.ExitCode, r.Error = CodeFor(err), err.Error()
		return r
	}
	r.Image, r.Path, r.Bytes, r.SHA256 = &img, path, len(data), sha256Text(data)
	if same, _ := sameFile(arg, path); same {
		r.ExitCode, r.Error = ExitUsage, fmt.Sprintf("%s: would be written over itself", display.Text(arg))
		return r
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		r.Status = slimUnchanged
		return r
	}
	if err := writeReplacing(path, data, 0o644); err != nil {
		r.ExitCode, r.Error = ExitFailure, err.Error()
		return r
	}
	r.Status = slimWritten
	return r
}

// sameFile tells whether a and b are one file.
func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// writeReplacing writes data as path with mode, atomically: into a hidden
// temporary file beside it, synced, then renamed over path.
func writeReplacing(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", display.Text(path), err)
	}
	return nil
}
