package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/golden"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/remote"
)

// TestKeepThen checks when prepull remote --keep runs prepull keep: after a
// pull that succeeded, with the pak's name, quoted, never after a failure.
func TestKeepThen(t *testing.T) {
	f := &remoteFlags{remoteCommand: `prepull --config "$C"`}
	then := f.keepThen(map[string]pak.Image{"/x/My Adapter_1.0.0.pak": testImage})
	ok, _ := json.Marshal([]map[string]any{{"file": "-", "reference": testRef, "status": "present", "exit_code": 0}})
	bad, _ := json.Marshal([]map[string]any{{"file": "-", "reference": testRef, "status": "failed", "exit_code": 4}})
	if got := then(remote.Output{File: "/x/My Adapter_1.0.0.pak", Stdout: ok}); got != `prepull --config "$C" keep --json --until-present --name 'My Adapter_1.0.0.pak' -` {
		t.Errorf("after a successful pull: %q", got)
	}
	if got := then(remote.Output{File: "/x/My Adapter_1.0.0.pak", Stdout: bad, ExitStatus: 4}); got != "" {
		t.Errorf("after a failed pull: %q, want nothing", got)
	}
	f.timeout = 90 * time.Second
	if got := then(remote.Output{File: "/x/My Adapter_1.0.0.pak", Stdout: ok}); got != `prepull --config "$C" keep --json --until-present --name 'My Adapter_1.0.0.pak' --wait 1m30s -` {
		t.Errorf("with --timeout: %q", got)
	}
}

// TestKeepForRejectsInvalidResults feeds keepFor what a proxy's prepull
// keep could print, broken or hostile, or an older prepull without keep.
func TestKeepForRejectsInvalidResults(t *testing.T) {
	result := func(file, name, status string, code int) []byte {
		b, _ := json.Marshal([]map[string]any{{"file": file, "name": name, "path": "/var/lib/prepull/inbox/done/" + name, "status": status, "pak_status": "present", "agent": "running", "exit_code": code}})
		return b
	}
	tests := []struct {
		name   string
		out    remote.Output
		status string
		code   ExitCode
		text   string
	}{
		{"taken", remote.Output{Stdout: result("-", "A.pak", "taken", 0)}, keepTaken, ExitOK, ""},
		{"kept already", remote.Output{Stdout: result("-", "A.pak", "kept", 0)}, keepKept, ExitOK, ""},
		{"not taken", remote.Output{Stdout: result("-", "A.pak", "not-taken", 1), ExitStatus: 1}, keepNotTaken, ExitFailure, ""},
		{"another name", remote.Output{Stdout: result("-", "B.pak", "taken", 0)}, keepFailed, ExitFailure, "not for standard input as A.pak"},
		{"unknown status", remote.Output{Stdout: result("-", "A.pak", "\x1b[2Jtaken", 0)}, keepFailed, ExitFailure, `status "\x1b[2Jtaken" is not one of`},
		{"taken with an exit code", remote.Output{Stdout: result("-", "A.pak", "taken", 1), ExitStatus: 1}, keepFailed, ExitFailure, "status taken with exit_code 1"},
		{"exit code not the command's", remote.Output{Stdout: result("-", "A.pak", "failed", 3), ExitStatus: 1}, keepFailed, ExitFailure, "exit_code 3, but the remote command exited with status 1"},
		{"not JSON", remote.Output{Stdout: []byte("taken\n")}, keepFailed, ExitFailure, "not a JSON array"},
		{"older prepull", remote.Output{ExitStatus: 2, LastStderr: "prepull: keep: no such file"}, keepFailed, ExitFailure,
			"prepull keep exited with status 2 and printed no result (a prepull without the keep command, older than this one?): prepull: keep: no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.out.File = "/x/A.pak"
			k := (&remoteFlags{}).keepFor(&tt.out)
			if k.Status != tt.status || k.ExitCode != tt.code || !strings.Contains(k.Error, tt.text) || (tt.text == "") != (k.Error == "") {
				t.Fatalf("keepFor = %+v, want %s, exit %d, error with %q", k, tt.status, tt.code, tt.text)
			}
		})
	}
	if k := (&remoteFlags{}).keepFor(nil); k != nil {
		t.Errorf("keepFor(nil) = %+v, want nil: no keep after a failed pull", k)
	}
}

// TestRemoteKeepTableGolden checks the closing table of prepull remote
// --keep against a golden file.
func TestRemoteKeepTableGolden(t *testing.T) {
	var out bytes.Buffer
	g := &globals{stdout: &out}
	rows := []remoteRow{
		{Host: "root@proxy-dc1", File: "MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Pulled, DurationMS: 4149,
			Keep: &remoteKeep{Status: keepTaken, PakStatus: "present", Path: "/var/lib/prepull/inbox/done/MyAdapter_1.0.0.pak", Agent: "running"}},
		{Host: "proxy-dc2", File: "MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Present, DurationMS: 300,
			Keep: &remoteKeep{Status: keepKept, PakStatus: "present", Path: "/var/lib/prepull/inbox/done/Old.pak", Agent: "running"}},
		{Host: "proxy-dc3", File: "MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Present, DurationMS: 12300, ExitCode: ExitOK,
			Keep: &remoteKeep{Status: keepNotTaken, Agent: "stopped", ExitCode: ExitFailure, Error: "no agent is running (stopped): it takes MyAdapter_1.0.0.pak when it starts"}},
		{Host: "proxy-dc4", File: "MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Failed, DurationMS: 120, ExitCode: ExitAuth,
			Error: "login: unauthorized"},
	}
	if err := printRemoteRows(g, rows, true, false); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "remote-keep-table.golden", out.String())
}
