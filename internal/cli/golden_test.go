package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/golden"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/pull"
)

// TestInspectTableGolden checks inspect's table against a golden file:
// wide and combining file names keep the columns aligned, a hostile name
// is escaped in its cell.
func TestInspectTableGolden(t *testing.T) {
	t.Chdir(t.TempDir())
	names := []string{"MyAdapter_1.0.0.pak", "監視アダプタ_1.0.pak", "Cafe\u0301_2.0.pak", "gnp.\u202eexe.pak"}
	for i, name := range names {
		p := paktest.Pak{Kind: []string{"MyAdapter", "JpAdapter", "CafeAdapter", "EvilAdapter"}[i], Registry: "harbor.example.com", Digest: paktest.DigestOf(name)}
		if err := p.Save(name); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := runCLI(t, "", append([]string{"inspect", "--config", "/dev/null"}, names...)...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstderr: %s", code, errOut)
	}
	golden.Check(t, "inspect-table.golden", out)
}

// TestOneShotLinesGolden checks the one-shot's result lines against a
// golden file: a registry's error text is escaped on its own line.
func TestOneShotLinesGolden(t *testing.T) {
	var out bytes.Buffer
	p := newResultPrinter(&globals{stdout: &out})
	for _, r := range oneShotResults() {
		p.add(r)
	}
	if strings.ContainsAny(out.String(), "\x1b\a\r\u202e\u009b") {
		t.Errorf("result lines hold raw control characters:\n%q", out.String())
	}
	golden.Check(t, "oneshot-lines.golden", out.String())
}

// TestOneShotJSONGolden checks the one-shot's --json array against a
// golden file: error texts are kept as they were, JSON-escaped.
func TestOneShotJSONGolden(t *testing.T) {
	var out bytes.Buffer
	p := newResultPrinter(&globals{stdout: &out, json: true})
	for _, r := range oneShotResults() {
		p.add(r)
	}
	if out.Len() != 0 {
		t.Fatalf("--json printed before the end:\n%s", out.String())
	}
	if err := p.flush(); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "oneshot.json.golden", out.String())
}

// oneShotResults are the one-shot's results for its golden files: pulled
// with a login, present, a registry's hostile error text, a broken pak.
func oneShotResults() []pakResult {
	return []pakResult{
		{File: "MyAdapter_1.0.0.pak", AdapterKind: "MyAdapter", Reference: testRef, Status: pull.Pulled, DurationMS: 4210, Attempts: 1, CredentialSource: "config"},
		{File: "監視アダプタ_1.0.pak", AdapterKind: "JpAdapter", Reference: testRef, Status: pull.Present, Attempts: 1},
		{File: "evil\n.pak", Reference: testRef, Status: pull.Failed, DurationMS: 12000, Attempts: 3, ExitCode: ExitNotFound,
			Cause: "manifest unknown: \x1b[2J\u202e",
			Error: "manifest unknown: \x1b]0;owned\a\x1b[2J\npresent   forged.pak  " + testRef + "\u202e\u009b2J\r"},
		{File: "Broken.pak", Status: pull.Failed, ExitCode: ExitBadPak, Cause: "Broken.pak: not a ZIP archive", Error: "Broken.pak: not a ZIP archive"},
	}
}

// TestRemoteJSONGolden checks prepull remote --json against a golden file,
// with and without --keep's results.
func TestRemoteJSONGolden(t *testing.T) {
	var out bytes.Buffer
	rows := []remoteRow{
		{Host: "root@proxy-dc1", File: "MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Pulled, DurationMS: 4149,
			Keep: &remoteKeep{Status: keepTaken, PakStatus: "present", Path: "/var/lib/prepull/inbox/done/MyAdapter_1.0.0.pak", Agent: "running"}},
		{Host: "proxy-東京", File: "MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Present, DurationMS: 300,
			Keep: &remoteKeep{Status: keepNotTaken, Agent: "stopped", ExitCode: ExitFailure, Error: "no agent is running (stopped): it takes MyAdapter_1.0.0.pak when it starts"}},
		{Host: "proxy-dc3", File: "MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Failed, DurationMS: 120, ExitCode: ExitAuth,
			Error: "login: \x1b]0;owned\a unauthorized"},
		{Host: "proxy-dc4", File: "MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Failed, DurationMS: 7000, ExitCode: ExitFailure,
			Error: "timed out: no result within --timeout 2s and 5s of grace; the remote command was ended"},
	}
	if err := printRemoteRows(&globals{stdout: &out, json: true}, rows, true, false); err != nil {
		t.Fatal(err)
	}
	if err := printRemoteRows(&globals{stdout: &out, json: true}, nil, false, false); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "remote.json.golden", out.String())
}

// TestKeepGolden checks prepull keep's table and --json against golden
// files, one for each status.
func TestKeepGolden(t *testing.T) {
	results := []keepResult{
		{File: "/tmp/MyAdapter_1.0.0.pak", Name: "MyAdapter_1.0.0.pak", Path: "/var/lib/prepull/inbox/done/MyAdapter_1.0.0.pak",
			Reference: testRef, Status: keepTaken, PakStatus: "present", Agent: "running"},
		{File: "MyAdapter_1.0.0.pak", Name: "MyAdapter_1.0.0.pak", Path: "/var/lib/prepull/inbox/done/Old.pak",
			Reference: testRef, Status: keepKept, PakStatus: "present", Agent: "running"},
		{File: "-", Name: "Given_1.pak", Path: "/var/lib/prepull/inbox/Given_1.pak", Reference: testRef, Status: keepNotTaken,
			Agent: "stopped", ExitCode: ExitFailure, Error: "no agent is running (stopped): it takes Given_1.pak when it starts"},
		{File: "evil\x1b[2J.pak", Name: "evil.pak", Status: keepFailed, PakStatus: "invalid", Agent: "running", ExitCode: ExitBadPak,
			Error: "the agent refused it: not a ZIP archive\u202e"},
	}
	for _, asJSON := range []bool{false, true} {
		var out bytes.Buffer
		for _, r := range results {
			if err := printKeep(&globals{stdout: &out, json: asJSON}, r); err != nil {
				t.Fatal(err)
			}
		}
		if asJSON {
			golden.Check(t, "keep.json.golden", out.String())
			continue
		}
		if strings.ContainsAny(out.String(), "\x1b\a\r\u202e\u009b") {
			t.Errorf("keep's table holds raw control characters:\n%q", out.String())
		}
		golden.Check(t, "keep-table.golden", out.String())
	}
}
