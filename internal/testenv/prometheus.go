//go:build linux

package testenv

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/prepull/prepull/internal/testenv/await"
)

// PrometheusDir is where scripts/test.sh (scripts/lib.sh unpack_prometheus)
// unpacks Debian's prometheus and prometheus-node-exporter: apt-get download
// and dpkg -x, never an install, which would create users and start
// services on this machine.
const PrometheusDir = "/var/cache/prepull-test/prometheus"

// nobody is the unprivileged user the node exporter runs as.
const nobody = 65534

// prometheusBin returns the path of a program unpacked in PrometheusDir,
// failing t loudly when it is not there.
func prometheusBin(t testing.TB, name string) string {
	t.Helper()
	Require(t)
	path := filepath.Join(PrometheusDir, "usr", "bin", name)
	if !isExecutable(path) {
		t.Fatalf("testenv: %s not found: scripts/test.sh as root unpacks Debian's prometheus and prometheus-node-exporter into %s (apt-get download, dpkg -x)", path, PrometheusDir)
	}
	return path
}

// CheckMetrics runs `promtool check metrics` on the file at path (the
// Prometheus text format, linted for names, HELP and TYPE) and fails t with
// what promtool says when it finds a problem.
func CheckMetrics(t testing.TB, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cmd := exec.Command(prometheusBin(t, "promtool"), "check", "metrics")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics %s: %v\n%s\nthe file:\n%s", path, err, out, data)
	}
}

// CheckRules runs `promtool check rules` on the rule file at path and
// fails t with what promtool says when it finds a problem.
func CheckRules(t testing.TB, path string) {
	t.Helper()
	out, err := exec.Command(prometheusBin(t, "promtool"), "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", path, err, out)
	}
}

// MetricsDir returns a new folder of the test's own that the node
// exporter's unprivileged user can read (the file it reads must be readable
// by others, as on a proxy).
func MetricsDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	return dir
}

// NodeExporter is a node exporter serving the textfile collector alone, on
// 127.0.0.1, as an unprivileged user.
type NodeExporter struct {
	URL string // http://127.0.0.1:PORT/metrics
	service
}

// StartNodeExporter runs the node exporter as nobody with
// --collector.textfile.directory=dir and no other collector, and stops it
// when t ends.
func StartNodeExporter(t testing.TB, dir string) *NodeExporter {
	t.Helper()
	bin := prometheusBin(t, "prometheus-node-exporter")
	logDir := t.TempDir()
	n := &NodeExporter{}
	var err error
	for try := 0; try < 5; try++ {
		var port int
		if port, err = freePort(); err != nil {
			break
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		n.URL = "http://" + addr + "/metrics"
		n.service = service{
			name:    "node exporter",
			logPath: filepath.Join(logDir, "node-exporter.log"),
			env:     cleanEnv(nil),
			argv: []string{bin, "--web.listen-address=" + addr, "--collector.disable-defaults",
				"--collector.textfile", "--collector.textfile.directory=" + dir},
			probe: func() error { _, err := n.get(); return err },
			grace: 5 * time.Second,
			attr:  asNobody(),
		}
		if err = n.start(await.Limit(t)); err == nil || !bytes.Contains([]byte(err.Error()), []byte("address already in use")) {
			break
		}
	}
	if err != nil {
		t.Fatalf("testenv: start the node exporter: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: last lines of %s:\n%s", n.logPath, logTail(n.logPath, 30))
		}
		if err := n.stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return n
}

// Scrape returns what the node exporter serves now.
func (n *NodeExporter) Scrape(t testing.TB) Metrics {
	t.Helper()
	body, err := n.get()
	if err != nil {
		t.Fatalf("testenv: scrape the node exporter: %v", err)
	}
	return ParseMetrics(t, body)
}

// Metrics are metric families in the Prometheus text format, by name.
type Metrics map[string]*dto.MetricFamily

// ParseMetrics parses the Prometheus text format, failing t when it does
// not parse.
func ParseMetrics(t testing.TB, text string) Metrics {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, text)
	}
	return mfs
}

// Value returns the value of the series of name whose label is v (the
// first series when label is ""), or the sample count of a histogram; -1
// when there is no such series.
func (m Metrics) Value(name, label, v string) float64 {
	mf := m[name]
	if mf == nil {
		return -1
	}
	for _, s := range mf.Metric {
		match := label == ""
		for _, l := range s.Label {
			if l.GetName() == label && l.GetValue() == v {
				match = true
			}
		}
		switch {
		case !match:
		case s.Gauge != nil:
			return s.Gauge.GetValue()
		case s.Counter != nil:
			return s.Counter.GetValue()
		case s.Histogram != nil:
			return float64(s.Histogram.GetSampleCount())
		case s.Untyped != nil:
			return s.Untyped.GetValue()
		}
	}
	return -1
}

func (n *NodeExporter) get() (string, error) {
	resp, err := http.Get(n.URL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", n.URL, resp.Status)
	}
	return string(body), nil
}

// asNobody is sysProcAttr for a process that runs as nobody.
func asNobody() *syscall.SysProcAttr {
	a := sysProcAttr()
	a.Credential = &syscall.Credential{Uid: nobody, Gid: nobody}
	return a
}
