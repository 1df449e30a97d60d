package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/golden"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/remote"
)

const testDigest = "sha256:6c3f0a5b1f1e8f2a4a6b1e5c3d2f7e9a0b4c6d8e1f3a5b7c9d0e2f4a6b8c0d1e"

// testImage is a pak that names its registry; testRef is its reference.
var (
	testImage = pak.Image{File: "MyAdapter_1.0.0.pak", AdapterKind: "MyAdapter", Registry: "harbor.example.com", Repository: "vcfops/my", Digest: testDigest}
	testRef   = "harbor.example.com/vcfops/my@" + testDigest
)

// TestRowForRejectsInvalidResults feeds rowFor what a broken or hostile
// proxy could print: every such result becomes a failed row that says why,
// with the pak's own reference, never the proxy's words as a status, a
// reference or a row of their own.
func TestRowForRejectsInvalidResults(t *testing.T) {
	noRegistry := testImage
	noRegistry.Registry = ""
	result := func(file, ref, status string, code int) []byte {
		b, err := json.Marshal([]map[string]any{{"file": file, "reference": ref, "status": status, "exit_code": code}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		img    pak.Image
		out    remote.Output
		status pull.Status
		ref    string
		text   string
	}{
		{"valid", testImage, remote.Output{Stdout: result("-", testRef, "pulled", 0)}, pull.Pulled, testRef, ""},
		{"valid with the proxy's default registry", noRegistry, remote.Output{Stdout: result("-", "proxy-reg:5000/vcfops/my@"+testDigest, "present", 0)},
			pull.Present, "proxy-reg:5000/vcfops/my@" + testDigest, ""},
		{"failed without a reference", noRegistry, remote.Output{Stdout: result("-", "", "failed", 3), ExitStatus: 3}, pull.Failed, "", ""},
		{"newline in the reference forges a row", testImage,
			remote.Output{Stdout: result("-", testRef+"\nroot@other  Other.pak  "+testRef+"  pulled  1s  -", "pulled", 0)},
			pull.Failed, testRef, "is not the pak's " + testRef},
		{"another image", testImage, remote.Output{Stdout: result("-", "harbor.example.com/evil/x@"+testDigest, "pulled", 0)}, pull.Failed, testRef, "is not the pak's"},
		{"another registry", testImage, remote.Output{Stdout: result("-", "evil.example.com/vcfops/my@"+testDigest, "pulled", 0)}, pull.Failed, testRef, "is not the pak's"},
		{"a tag", noRegistry, remote.Output{Stdout: result("-", "reg/vcfops/my:latest", "pulled", 0)}, pull.Failed, "", "is not the pak's vcfops/my@"},
		{"bad registry", noRegistry, remote.Output{Stdout: result("-", "\x1b[2J/vcfops/my@"+testDigest, "pulled", 0)}, pull.Failed, "", `reference "\x1b[2J/vcfops`},
		{"unknown status", testImage, remote.Output{Stdout: result("-", testRef, "\x1b]0;owned\apulled", 0)}, pull.Failed, testRef, `status "\x1b]0;owned\apulled" is not one of pulled, present, would-pull, failed or interrupted`},
		{"success with an exit code", testImage, remote.Output{Stdout: result("-", testRef, "pulled", 4), ExitStatus: 4}, pull.Failed, testRef, "status pulled with exit_code 4"},
		{"failure without an exit code", testImage, remote.Output{Stdout: result("-", testRef, "failed", 0)}, pull.Failed, testRef, "status failed with exit_code 0"},
		{"insane exit code", testImage, remote.Output{Stdout: result("-", testRef, "failed", 300), ExitStatus: 44}, pull.Failed, testRef, "exit_code 300"},
		{"exit code not the command's", testImage, remote.Output{Stdout: result("-", testRef, "failed", 5), ExitStatus: 1}, pull.Failed, testRef, "exit_code 5, but the remote command exited with status 1"},
		{"another file", testImage, remote.Output{Stdout: result("Other.pak", testRef, "pulled", 0)}, pull.Failed, testRef, "a result for file Other.pak"},
		{"not JSON", testImage, remote.Output{Stdout: []byte("pulled\n")}, pull.Failed, testRef, "the proxy's result is invalid: not a JSON array"},
		{"no result", testImage, remote.Output{Stdout: []byte("[]")}, pull.Failed, testRef, "0 results for the one pak sent"},
		{"two results", testImage, remote.Output{Stdout: []byte(`[{"file":"-","reference":"` + testRef + `","status":"pulled","exit_code":0},{"file":"-","reference":"` + testRef + `","status":"pulled","exit_code":0}]`)},
			pull.Failed, testRef, "2 results for the one pak sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := (&remoteFlags{}).rowFor(tt.out, tt.img)
			if r.Status != tt.status || r.Reference != tt.ref || !strings.Contains(r.Error, tt.text) || (tt.text == "") != (r.Error == "") {
				t.Fatalf("rowFor = %+v\nwant status %s, reference %q, error with %q", r, tt.status, tt.ref, tt.text)
			}
			if r.Status == pull.Failed && r.ExitCode == ExitOK {
				t.Fatalf("failed row with exit code 0: %+v", r)
			}
		})
	}
}

func TestRowForSudoAndTimeout(t *testing.T) {
	tests := []struct {
		name string
		f    remoteFlags
		out  remote.Output
		text string
	}{
		{"no sudo on the proxy", remoteFlags{sudo: true}, remote.Output{ExitStatus: 127, LastStderr: "sh: 1: sudo: not found"},
			"sudo is not installed on the proxy"},
		{"bash says it differently", remoteFlags{sudo: true}, remote.Output{ExitStatus: 127, LastStderr: "bash: line 1: sudo: command not found"},
			"sudo is not installed on the proxy"},
		{"prepull missing under sudo", remoteFlags{sudo: true}, remote.Output{ExitStatus: 1, LastStderr: "sudo: prepull: command not found"},
			"exited with status 1 and printed no result: sudo: prepull: command not found"},
		{"sudo wants a password", remoteFlags{sudo: true}, remote.Output{ExitStatus: 1, LastStderr: "sudo: a password is required"},
			"sudo asks for a password"},
		{"prepull missing", remoteFlags{}, remote.Output{ExitStatus: 127, LastStderr: "sh: 1: prepull: not found"},
			"is prepull installed on the proxy?"},
		{"timed out", remoteFlags{timeout: 2 * time.Second}, remote.Output{Err: fmt.Errorf("%w: no result within 7s; the remote command was ended", remote.ErrTimedOut)},
			"timed out: no result within --timeout 2s and 5s of grace; the remote command was ended"},
		{"canceled", remoteFlags{}, remote.Output{Err: errors.New("canceled: context canceled")}, "canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.f.rowFor(tt.out, testImage)
			if r.Status != pull.Failed || r.ExitCode != ExitFailure || !strings.Contains(r.Error, tt.text) {
				t.Fatalf("rowFor = %+v, want failed, exit 1, error with %q", r, tt.text)
			}
		})
	}
}

// TestRemoteTableGolden checks prepull remote's closing table against a
// golden file: what a hostile proxy said (escapes, titles, clipboard writes,
// bidi overrides, a newline that would forge a row) is escaped in its own
// cell, and wide host and file names keep the columns aligned.
func TestRemoteTableGolden(t *testing.T) {
	var out bytes.Buffer
	g := &globals{stdout: &out}
	rows := []remoteRow{
		{Host: "root@proxy-dc1", File: "MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Pulled, DurationMS: 4149},
		{Host: "proxy-東京", File: "監視アダプタ_1.0.pak", Reference: testRef, Status: pull.Present, DurationMS: 300},
		{Host: "proxy-dc2", File: "Cafe\u0301_2.0.pak", Reference: testRef, Status: pull.Failed, DurationMS: 7000, ExitCode: ExitFailure,
			Error: "timed out: no result within --timeout 2s and 5s of grace; the remote command was ended"},
		{Host: "proxy-dc3", File: "MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Failed, DurationMS: 120, ExitCode: ExitAuth,
			Error: "login: \x1b]0;owned\a\x1b[2J\x1b]52;c;ZWNobyBldmls\a\nproxy-dc4  MyAdapter_1.0.0.pak  " + testRef + "  pulled  1s  -"},
		{Host: "proxy-dc4", File: "gnp.\u202eexe.pak", Status: pull.Failed, ExitCode: ExitFailure, Error: "x\u009b2J\rdone"},
	}
	if err := printRemoteRows(g, rows, false, false); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b\a\r\t\u202e\u009b") {
		t.Errorf("the table holds a raw control character:\n%q", out.String())
	}
	golden.Check(t, "remote-table.golden", out.String())
}

// TestFleetGolden checks, against golden files, what prepull remote ends
// with for a fleet: the table by default (short digests, causes, versions
// with the ones that differ flagged, cut to 120 columns), with --wide, and
// the summary line that counts hosts SSH could not reach apart from codes.
func TestFleetGolden(t *testing.T) {
	here := shortVersion()
	rows := []remoteRow{
		{Host: "proxy-01", File: "/home/admin/paks/MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Pulled, DurationMS: 4149, Version: here},
		{Host: "proxy-02", File: "/home/admin/paks/MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Failed, DurationMS: 300, ExitCode: ExitAuth, Version: here,
			Cause: `credentials rejected: user "robot" at harbor.example.com (credentials from config)`,
			Error: `login to harbor.example.com as "robot" (credentials from config): login to harbor.example.com: registry rejected the credentials: Error response from daemon: Get "https://harbor.example.com/v2/": unauthorized: 401 Unauthorized`},
		{Host: "proxy-03", File: "/home/admin/paks/MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Failed, DurationMS: 5000, ExitCode: ExitFailure, sshFailed: true,
			Error: "dial tcp 192.0.2.3:22: connect: connection refused"},
		{Host: "proxy-04", File: "/home/admin/paks/MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Present, DurationMS: 200, VersionDiffers: true,
			Lacks: []string{"pak names in its logs (--name)"}},
		{Host: "proxy-05", File: "/home/admin/paks/MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Failed, DurationMS: 900, ExitCode: 9,
			Version: "v9.0.0 (commit 0123456789ab, go1.30)", VersionDiffers: true,
			Cause: "exit 9 (newer prepull on the proxy): quota exceeded", Error: "exit 9 (newer prepull on the proxy): quota exceeded"},
	}
	var out strings.Builder
	for _, wide := range []bool{false, true} {
		var b bytes.Buffer
		if err := printRemoteRows(&globals{stdout: &b}, rows, false, wide); err != nil {
			t.Fatal(err)
		}
		if !wide {
			for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
				if w := display.Width(l); w > remoteTableWidth {
					t.Errorf("a line of %d columns, over %d:\n%s", w, remoteTableWidth, l)
				}
			}
		}
		out.WriteString(strings.ReplaceAll(b.String(), versionColumn(here), "HERE"))
	}
	out.WriteString(fleetSummary(rows) + "\n")
	golden.Check(t, "fleet.golden", out.String())

	if got := fleetSummary(rows[:1]); got != "1/1 hosts ok" {
		t.Errorf("all ok: %q", got)
	}
}
