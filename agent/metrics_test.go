//go:build linux

package agent

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prepull/prepull/internal/testenv"
)

// readMetrics parses the metrics file; a missing file gives no metrics.
func readMetrics(t *testing.T, path string) testenv.Metrics {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return testenv.ParseMetrics(t, string(data))
}

func TestMetricsFileFollowsThePaks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prepull.prom")
	h := newHarness(t, "metrics_file: "+path+"\n")
	old := syscall.Umask(0o077) // as the unit's UMask=0077
	defer syscall.Umask(old)
	h.start()
	h.eventually("the metrics file says the engine is up", func() bool {
		return readMetrics(t, path).Value("prepull_engine_up", "", "") == 1
	})
	mfs := readMetrics(t, path)
	for _, s := range pakStatuses {
		if v := mfs.Value("prepull_paks", "status", s); v != 0 {
			t.Errorf("prepull_paks{status=%q} = %v before any pak, want 0 written", s, v)
		}
	}
	for _, o := range pullOutcomes {
		if v := mfs.Value("prepull_pulls_total", "outcome", o); v != 0 {
			t.Errorf("prepull_pulls_total{outcome=%q} = %v, want 0 written", o, v)
		}
	}
	for _, r := range degradedReasons {
		if v := mfs.Value("prepull_degraded", "reason", r); v != 0 {
			t.Errorf("prepull_degraded{reason=%q} = %v, want 0", r, v)
		}
	}
	if v := mfs.Value("prepull_build_info", "version", "dev"); v != 1 {
		t.Errorf("prepull_build_info{version=dev} = %v, want 1", v)
	}

	h.drop("a.pak", "proj/a", "a")
	h.eventually("the metrics file counts a present pak and one pull", func() bool {
		mfs := readMetrics(t, path)
		return mfs.Value("prepull_paks", "status", StatusPresent) == 1 &&
			mfs.Value("prepull_pulls_total", "outcome", OutcomePulled) == 1 &&
			mfs.Value("prepull_pull_duration_seconds", "", "") == 1
	})
	h.writeFile("bad.pak", []byte("not a zip"))
	h.eventually("the metrics file counts an invalid pak", func() bool {
		return readMetrics(t, path).Value("prepull_paks", "status", StatusInvalid) == 1
	})
	if v := readMetrics(t, path).Value("prepull_state_saved_timestamp_seconds", "", ""); v <= 0 {
		t.Errorf("prepull_state_saved_timestamp_seconds = %v", v)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("metrics file mode %v, want 0644 despite the umask", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "prepull.prom" {
			t.Errorf("left behind in the metrics folder: %s", e.Name())
		}
	}
	text, _ := os.ReadFile(path)
	for _, bad := range []string{"proj/a", "a.pak", "sha256:"} {
		if strings.Contains(string(text), bad) {
			t.Errorf("the metrics file names %q: labels must be bounded", bad)
		}
	}
}
