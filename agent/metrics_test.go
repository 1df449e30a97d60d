package agent

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// readMetrics parses the metrics file; a missing file gives nil.
func readMetrics(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return mfs
}

// value returns the value of the series of name whose labels include
// label=v (or the only series when label is ""); -1 when there is none.
func value(mfs map[string]*dto.MetricFamily, name, label, v string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
	for _, m := range mf.Metric {
		match := label == ""
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == v {
				match = true
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestMetricsFileFollowsThePaks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prepull.prom")
	h := newHarness(t, "metrics_file: "+path+"\n")
	old := syscall.Umask(0o077) // as the unit's UMask=0077
	defer syscall.Umask(old)
	h.start()
	h.eventually("the metrics file says the engine is up", func() bool {
		return value(readMetrics(t, path), "prepull_engine_up", "", "") == 1
	})
	mfs := readMetrics(t, path)
	for _, s := range pakStatuses {
		if v := value(mfs, "prepull_paks", "status", s); v != 0 {
			t.Errorf("prepull_paks{status=%q} = %v before any pak, want 0 written", s, v)
		}
	}
	for _, o := range pullOutcomes {
		if v := value(mfs, "prepull_pulls_total", "outcome", o); v != 0 {
			t.Errorf("prepull_pulls_total{outcome=%q} = %v, want 0 written", o, v)
		}
	}
	for _, r := range degradedReasons {
		if v := value(mfs, "prepull_degraded", "reason", r); v != 0 {
			t.Errorf("prepull_degraded{reason=%q} = %v, want 0", r, v)
		}
	}
	if v := value(mfs, "prepull_build_info", "version", "dev"); v != 1 {
		t.Errorf("prepull_build_info{version=dev} = %v, want 1", v)
	}

	h.drop("a.pak", "proj/a", "a")
	h.eventually("the metrics file counts a present pak and one pull", func() bool {
		mfs := readMetrics(t, path)
		return value(mfs, "prepull_paks", "status", StatusPresent) == 1 &&
			value(mfs, "prepull_pulls_total", "outcome", OutcomePulled) == 1 &&
			value(mfs, "prepull_pull_duration_seconds", "", "") == 1
	})
	h.writeFile("bad.pak", []byte("not a zip"))
	h.eventually("the metrics file counts an invalid pak", func() bool {
		return value(readMetrics(t, path), "prepull_paks", "status", StatusInvalid) == 1
	})
	if v := value(readMetrics(t, path), "prepull_state_saved_timestamp_seconds", "", ""); v <= 0 {
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
