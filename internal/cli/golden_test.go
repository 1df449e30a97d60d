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
	p.add(pakResult{File: "MyAdapter_1.0.0.pak", Reference: testRef, Status: pull.Pulled, DurationMS: 4210})
	p.add(pakResult{File: "監視アダプタ_1.0.pak", Reference: testRef, Status: pull.Present})
	p.add(pakResult{File: "evil\n.pak", Reference: testRef, Status: pull.Failed, ExitCode: ExitNotFound,
		Error: "manifest unknown: \x1b]0;owned\a\x1b[2J\npresent   forged.pak  " + testRef + "\u202e\u009b2J\r"})
	p.add(pakResult{File: "Broken.pak", Status: pull.Failed, ExitCode: ExitBadPak, Error: "Broken.pak: not a ZIP archive"})
	if strings.ContainsAny(out.String(), "\x1b\a\r\u202e\u009b") {
		t.Errorf("result lines hold raw control characters:\n%q", out.String())
	}
	golden.Check(t, "oneshot-lines.golden", out.String())
}
