package cli

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/remote"
)

// remoteKeep is what prepull remote --keep says of one pak on one host:
// whether the proxy's agent took it (prepull keep's result there). Its JSON
// form is stable.
type remoteKeep struct {
	Status    string   `json:"status"`               // taken, kept, not-taken or failed (see prepull keep)
	Path      string   `json:"path,omitempty"`       // the agent's file on the proxy
	PakStatus string   `json:"pak_status,omitempty"` // the agent's status of it
	Agent     string   `json:"agent,omitempty"`      // the agent's status
	ExitCode  ExitCode `json:"exit_code"`
	Error     string   `json:"error,omitempty"`
}

// remoteKeepName is the name prepull remote --keep asks for a pak argument:
// NAME.pak, which every proxy's keep accepts; a proxy with this release
// writes it as NAME.prepull (keepName), an older one as NAME.pak.
func remoteKeepName(arg string) string {
	name := filepath.Base(arg)
	if !strings.HasSuffix(strings.ToLower(name), ".pak") {
		name += ".pak"
	}
	return name
}

// keepThen returns what prepull remote --keep runs after each pull on a
// host: prepull keep, with the same standard input, once the pull
// succeeded; nothing after a failed one.
func (f *remoteFlags) keepThen(images map[string]pak.Image) func(remote.Output) string {
	return func(o remote.Output) string {
		r := f.rowFor(o, images[o.File])
		if r.ExitCode != ExitOK || (r.Status != pull.Pulled && r.Status != pull.Present) {
			return ""
		}
		// The image is present on the proxy: the agent's verdict comes
		// as soon as it has checked, and says whether it keeps it.
		args := []string{"keep", "--json", "--until-present", "--name", remoteKeepName(o.File)}
		if f.timeout > 0 {
			// The run is ended after --timeout and the grace: the wait
			// for the agent must end first.
			args = append(args, "--wait", f.timeout.String())
		}
		return f.commands.line(f.remoteCommand, append(args, "-"), nil)
	}
}

// keepFor turns the run of prepull keep on a proxy into what the row
// says: its own JSON result when it printed a valid one, otherwise why
// there is none. Nil when it was not run (the pull failed).
func (f *remoteFlags) keepFor(o *remote.Output) *remoteKeep {
	if o == nil {
		return nil
	}
	k := &remoteKeep{Status: keepFailed, ExitCode: ExitFailure}
	if o.Err != nil {
		k.Error = o.Err.Error()
		return k
	}
	if len(bytes.TrimSpace(o.Stdout)) > 0 {
		res, err := decodeRemote(o.Stdout, func(results []keepResult) error {
			return checkKeepResult(results, o.ExitStatus, remoteKeepName(o.File))
		})
		if err != nil {
			k.Error = "the proxy's keep result is invalid: " + err.Error()
			return k
		}
		k.Status, k.Path, k.PakStatus, k.Agent, k.ExitCode, k.Error = res.Status, res.Path, res.PakStatus, res.Agent, res.ExitCode, res.Error
		return k
	}
	k.Error = fmt.Sprintf("prepull keep exited with status %d and printed no result", o.ExitStatus)
	if o.ExitStatus == int(ExitUsage) {
		k.Error += " (a prepull without the keep command, older than this one?)"
	}
	if o.LastStderr != "" {
		k.Error += ": " + o.LastStderr
	}
	return k
}

// checkKeepResult checks a proxy's prepull keep result before anything of
// it is used: one result, for standard input under the name asked for, with
// a known status and an exit code that agrees with it and with the
// command's exit status.
func checkKeepResult(results []keepResult, exitStatus int, name string) error {
	if len(results) != 1 {
		return fmt.Errorf("%d results for the one pak sent", len(results))
	}
	res := results[0]
	if res.File != "-" || res.Name != name && res.Name != slimmed(name) {
		return fmt.Errorf("a result for %s as %s, not for standard input as %s", display.Text(res.File), display.Text(res.Name), name)
	}
	switch res.Status {
	case keepTaken, keepKept:
		if res.ExitCode != ExitOK {
			return fmt.Errorf("status %s with exit_code %d", res.Status, res.ExitCode)
		}
	case keepNotTaken, keepFailed:
		if res.ExitCode < ExitFailure || (res.ExitCode > exitMax && res.ExitCode != ExitInterrupted && res.ExitCode != ExitTerminated) {
			return fmt.Errorf("status %s with exit_code %d", res.Status, res.ExitCode)
		}
	default:
		return fmt.Errorf("status %s is not one of %s, %s, %s or %s", display.Text(res.Status), keepTaken, keepKept, keepNotTaken, keepFailed)
	}
	if exitStatus != int(res.ExitCode) {
		return fmt.Errorf("exit_code %d, but the remote command exited with status %d", res.ExitCode, exitStatus)
	}
	if res.Path != "" && (!filepath.IsAbs(res.Path) || !strings.HasSuffix(strings.ToLower(res.Path), ".pak") && !strings.HasSuffix(strings.ToLower(res.Path), pak.SlimSuffix)) {
		return fmt.Errorf("path %s is not a .pak file's", display.Text(res.Path))
	}
	return nil
}

// keptColumn is the KEPT cell of prepull remote --keep's table.
func keptColumn(k *remoteKeep) string {
	if k == nil {
		return "-"
	}
	if k.PakStatus != "" {
		return k.Status + " (" + k.PakStatus + ")"
	}
	return k.Status
}
