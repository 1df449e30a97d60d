//go:build linux

package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/testenv"
)

// TestAlertRulesInDocsPassPromtool checks the alert rules that
// docs/metrics.md shows with promtool check rules, so that an
// administrator who copies them gets rules Prometheus loads.
func TestAlertRulesInDocsPassPromtool(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, alerts, ok := strings.Cut(string(doc), "\n## Alerts\n")
	if !ok {
		t.Fatal("docs/metrics.md has no \"## Alerts\" section")
	}
	_, rules, ok := strings.Cut(alerts, "```yaml\n")
	rules, _, closed := strings.Cut(rules, "```")
	if !ok || !closed {
		t.Fatal("the Alerts section of docs/metrics.md has no ```yaml block")
	}
	for _, name := range []string{"PrepullPakFailed", "PrepullDegraded", "PrepullMetricsStale"} {
		if !strings.Contains(rules, "alert: "+name) {
			t.Errorf("the alert rules lack %s", name)
		}
	}
	path := filepath.Join(t.TempDir(), "prepull.rules.yml")
	if err := os.WriteFile(path, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.CheckRules(t, path)
}
