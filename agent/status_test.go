package agent

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/golden"
)

// TestWriteStatusGolden checks prepull status's tables against a golden
// file: hostile file names, references and error texts (terminal escapes,
// OSC titles, bidi overrides, C1 controls, newlines forging a row) are
// escaped, and wide file names keep the columns aligned.
func TestWriteStatusGolden(t *testing.T) {
	s := &State{Version: 1,
		Paks: []PakState{
			{File: "/in/done/MyAdapter_1.0.0.pak", Reference: "reg:5000/vcfops/my@sha256:bb", Status: StatusPresent, Attempts: 1},
			{File: "/in/監視アダプタ_1.0.pak", Reference: "reg:5000/vcfops/jp@sha256:cc", Status: StatusWaiting, Attempts: 2,
				LastError: "Head \"https://reg:5000/v2/\": \x1b]0;owned\a\x1b[2J\nfailed/x.pak  reg/x@sha256:dd  present"},
			{File: "/in/failed/gnp.\u202eexe.pak", Status: StatusInvalid, LastError: "x\u009b2J\rdone " + strings.Repeat("é", 60)},
		},
		Images: []ImageState{
			{Reference: "reg:5000/vcfops/my@sha256:bb", Status: StatusPresent, Attempts: 1, Pulls: 1},
			{Reference: "reg:5000/vcfops/jp@sha256:cc", Status: StatusWaiting, Attempts: 2, LastError: "unauthorized: \x1b]52;c;ZWNobyBldmls\a"},
		},
	}
	var out bytes.Buffer
	r := &Report{State: s, Agent: AgentStatus{Status: AgentDegraded, PID: 42, LockFile: "/st/agent.lock", Engine: "unreachable",
		Degraded: []string{"cannot save state: no space left on device"}, EngineError: "ping: \x1b[2Jdocker engine unreachable"}}
	if err := WriteStatus(&out, r, "/st", false); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b\a\r\u202e\u009b") {
		t.Errorf("the status table holds a raw control character:\n%q", out.String())
	}
	golden.Check(t, "status.golden", out.String())
}
