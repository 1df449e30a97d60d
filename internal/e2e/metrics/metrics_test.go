//go:build linux

package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// TestMetricsFileScrapedByNodeExporter runs the agent with metrics_file in
// a folder that a node exporter, running as nobody, serves with its
// textfile collector: every file the agent writes passes promtool check
// metrics, and the scraped values follow the paks dropped.
func TestMetricsFileScrapedByNodeExporter(t *testing.T) {
	f := e2e.NewFixture(t, "proj/metrics")
	dir := testenv.MetricsDir(t)
	file := filepath.Join(dir, "prepull.prom")
	ne := testenv.StartNodeExporter(t, dir)
	config, inbox, state := f.AgentConfig("metrics_file: " + file + "\nverify_interval: 2s\n")

	// The unit's UMask=0077: the file must still be readable by the node
	// exporter's user. The umask is the process's; the agent inherits it.
	old := syscall.Umask(0o077)
	a := f.StartAgent(config, inbox, state)
	syscall.Umask(old)

	scrape := func() testenv.Metrics { return ne.Scrape(t) }
	a.Eventually("the node exporter serves the agent's metrics", func() bool {
		return scrape().Value("prepull_engine_up", "", "") == 1
	})
	testenv.CheckMetrics(t, file)
	mfs := scrape()
	if v := mfs.Value("node_textfile_scrape_error", "", ""); v != 0 {
		t.Errorf("node_textfile_scrape_error = %v, want 0", v)
	}
	if v := mfs.Value("node_textfile_mtime_seconds", "file", file); v <= 0 {
		// node exporter 1.5 labels the file by its base name, later ones by its path.
		if v = mfs.Value("node_textfile_mtime_seconds", "file", "prepull.prom"); v <= 0 {
			t.Errorf("no node_textfile_mtime_seconds for the metrics file")
		}
	}
	for _, s := range []string{"waiting", "pulling", "present", "failed", "invalid"} {
		if v := mfs.Value("prepull_paks", "status", s); v != 0 {
			t.Errorf("before any pak, prepull_paks{status=%q} = %v, want 0 (every status written)", s, v)
		}
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("metrics file: %v, mode %v, want 0644", err, st.Mode().Perm())
	}

	a.Drop(f.Pak, "good.pak")
	a.Eventually("the scrape shows one present pak, pulled once", func() bool {
		mfs := scrape()
		return mfs.Value("prepull_paks", "status", "present") == 1 &&
			mfs.Value("prepull_images", "status", "present") == 1 &&
			mfs.Value("prepull_pulls_total", "outcome", "pulled") == 1 &&
			mfs.Value("prepull_pull_duration_seconds", "", "") == 1
	})
	testenv.CheckMetrics(t, file)

	bad := filepath.Join(f.Dir, "bad.pak")
	if err := os.WriteFile(bad, paktest.Pak{Registry: f.Reg.Addr, Repository: "/proj/x", Digest: "sha256:not-a-digest"}.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Drop(bad, "bad.pak")
	a.Eventually("the scrape shows the invalid pak", func() bool {
		return scrape().Value("prepull_paks", "status", "invalid") == 1
	})
	testenv.CheckMetrics(t, file)

	// Nothing changes now: the file is still written every verify_interval,
	// so that its age tells a live agent from a dead one.
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	a.Eventually("the idle agent writes the file again", func() bool {
		now, err := os.Stat(file)
		return err == nil && now.ModTime().After(st.ModTime())
	})
	testenv.CheckMetrics(t, file)
	if v := scrape().Value("prepull_pulls_total", "outcome", "present"); v < 1 {
		t.Errorf("prepull_pulls_total{outcome=present} = %v after a verify, want at least 1", v)
	}

	if code, _ := a.Terminate(); code != 0 {
		t.Errorf("the agent exited %d", code)
	}
	testenv.CheckMetrics(t, file)
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, unbounded := range []string{f.Repo, "good.pak", "sha256:"} {
		if strings.Contains(string(text), unbounded) {
			t.Errorf("the metrics file names %q: labels must be bounded\n%s", unbounded, text)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "prepull.prom" {
			t.Errorf("left in the metrics folder: %s", e.Name())
		}
	}
}
