package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
)

func TestSlimName(t *testing.T) {
	for arg, want := range map[string]string{
		"/x/MyAdapter_1.0.0.pak": "MyAdapter_1.0.0" + slimSuffix,
		"Big.PAK":                "Big" + slimSuffix,
		"adapter.zip":            "adapter.zip" + slimSuffix,
		"My.conf":                "My.conf" + slimSuffix,
		"Again" + slimSuffix:     "Again" + slimSuffix,
		".pak":                   ".pak" + slimSuffix,
	} {
		if got := slimName(arg); got != want {
			t.Errorf("slimName(%q) = %q, want %q", arg, got, want)
		}
	}
}

// TestSlim slims a 1 MiB pak and a .conf into a folder: small files that
// read as the same image, left as they are when run again; a bad pak exits
// 3 with nothing written for it while the others are; usage errors.
func TestSlim(t *testing.T) {
	src, out := t.TempDir(), t.TempDir()
	p := paktest.Pak{Kind: "Slim", Registry: paktest.Registry, ContentBytes: 1 << 20}
	file := p.WriteFile(t, src)
	conf := filepath.Join(src, "Slim.conf")
	writeConfigFile(t, conf, string(p.Conf()))

	slim := func(args ...string) ([]slimResult, ExitCode) {
		t.Helper()
		stdout, stderr, code := runCLI(t, "", append([]string{"slim", "--json", "--out", out}, args...)...)
		var rs []slimResult
		if err := json.Unmarshal([]byte(stdout), &rs); err != nil {
			t.Fatalf("slim %v: exit %d, no JSON (%v):\n%s\n%s", args, code, err, stdout, stderr)
		}
		return rs, code
	}
	rs, code := slim(file, conf)
	if code != ExitOK || len(rs) != 2 || rs[0].Status != slimWritten || rs[1].Status != slimWritten ||
		rs[0].Path != filepath.Join(out, "Slim_1.0.0"+slimSuffix) || rs[1].Path != filepath.Join(out, "Slim.conf"+slimSuffix) {
		t.Fatalf("slim: exit %d, %+v", code, rs)
	}
	for _, r := range rs {
		fi, err := os.Stat(r.Path)
		if err != nil || fi.Size() > 16<<10 || fi.Mode().Perm() != 0o644 || int(fi.Size()) != r.Bytes {
			t.Errorf("%s: %v, %v", r.Path, fi, err)
		}
		f, err := pak.OpenFile(r.Path)
		if err != nil {
			t.Fatalf("%s: %v", r.Path, err)
		}
		f.Close()
		if img := f.Image; img.AdapterKind != "Slim" || img.Digest != paktest.Digest || r.Image == nil || r.Image.Digest != paktest.Digest {
			t.Errorf("%s reads %+v", r.Path, img)
		}
	}
	if rs, code := slim(file, conf); code != ExitOK || rs[0].Status != slimUnchanged || rs[1].Status != slimUnchanged {
		t.Errorf("again: exit %d, %+v", code, rs)
	}

	bad := filepath.Join(src, "Bad.pak")
	writeConfigFile(t, bad, "not a pak")
	if rs, code := slim(bad, file); code != ExitBadPak || rs[0].Status != slimFailed || rs[1].Status != slimUnchanged {
		t.Errorf("a bad pak: exit %d, %+v", code, rs)
	}
	if _, err := os.Stat(filepath.Join(out, "Bad"+slimSuffix)); err == nil {
		t.Error("something was written for the bad pak")
	}

	for _, tt := range []struct {
		args []string
		err  string
	}{
		{[]string{"slim", file}, "--out DIR is needed"},
		{[]string{"slim", "--out", filepath.Join(out, "none"), file}, "not a folder"},
		{[]string{"slim", "--out", out, "-"}, "standard input (-) has no name"},
		{[]string{"slim", "--out", out, file, filepath.Join(t.TempDir(), "..", filepath.Base(src), filepath.Base(file))}, "would both be written as"},
	} {
		_, stderr, code := runCLI(t, "", tt.args...)
		if code != ExitUsage || !strings.Contains(stderr, tt.err) {
			t.Errorf("%v: exit %d, %s; want a usage error with %q", tt.args, code, stderr, tt.err)
		}
	}
}
