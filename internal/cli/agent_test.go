//go:build linux

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/agent"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv/await"
)

func TestAgentAndStatusInProcess(t *testing.T) {
	dir, watch, _, cfg := keepDirs(t)
	cfg = isolatedConfig(t, dir, mustRead(t, cfg)+"settle: 10ms\nrescan_interval: 50ms\n")
	p := paktest.Pak{Kind: "Agented", Registry: paktest.Registry}
	p.WriteFile(t, watch)

	// No agent has run: status says so, exit 1.
	if _, stderr, code := runWith(context.Background(), t, &globals{}, "status", "--config", cfg); code != ExitFailure {
		t.Fatalf("status before any agent: exit %d\n%s", code, stderr)
	}

	eng := newFakeEngine()
	g := &globals{newEngine: func(string) (dockerEngine, error) { return eng, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan ExitCode, 1)
	go func() {
		_, _, code := runWith(ctx, t, g, "agent", "--config", cfg, "--quiet")
		done <- code
	}()

	// Polled up to the test's own deadline (await.Limit), not a clock the
	// test guesses: the agent saves the state when the image is present.
	var report struct {
		Agent struct{ Status string } `json:"agent"`
		Paks  []struct {
			File   string `json:"file"`
			Status string `json:"status"`
		} `json:"paks"`
	}
	var out, stderr string
	var code ExitCode
	present := func() bool {
		out, stderr, code = runWith(context.Background(), t, &globals{}, "status", "--config", cfg, "--json")
		if code != ExitOK {
			return false
		}
		if err := json.Unmarshal([]byte(out), &report); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		return len(report.Paks) == 1 && report.Paks[0].Status == agent.StatusPresent
	}
	if !await.Until(t, 20*time.Millisecond, present) {
		t.Fatalf("the agent did not make the image present: exit %d\n%s\n%s", code, out, stderr)
	}
	if report.Agent.Status != agent.AgentRunning {
		t.Errorf("status says the agent is %q, want running", report.Agent.Status)
	}
	out, _, code = runWith(context.Background(), t, &globals{}, "status", "--config", cfg)
	if code != ExitOK || !strings.Contains(out, "running") || !strings.Contains(out, "present") {
		t.Errorf("status table, exit %d:\n%s", code, out)
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("the agent exited %d on cancel, want 0", code)
	}
	if eng.pullCount() != 1 || !eng.closed {
		t.Errorf("%d pulls, engine closed %v; want 1 pull and the engine closed", eng.pullCount(), eng.closed)
	}

	// An engine that cannot be opened: exit 6 before anything runs.
	g = &globals{newEngine: func(string) (dockerEngine, error) { return nil, errors.New("bad host") }}
	if _, stderr, code := runWith(context.Background(), t, g, "agent", "--config", cfg); code != ExitEngine {
		t.Errorf("agent with no engine: exit %d, want %d\n%s", code, ExitEngine, stderr)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
