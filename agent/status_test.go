package agent

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/golden"
)

// TestWriteStatusGolden checks prepull status's tables against a golden
// file: hostile file names, references and error texts (terminal escapes,
// OSC titles, bidi overrides, C1 controls, newlines forging a row) are
// escaped, and wide file names keep the columns aligned.
func TestWriteStatusGolden(t *testing.T) {
	var out bytes.Buffer
	if err := WriteStatus(&out, statusFixture(), "/st", false); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b\a\r\u202e\u009b") {
		t.Errorf("the status table holds a raw control character:\n%q", out.String())
	}
	golden.Check(t, "status.golden", out.String())
}

// TestWriteStatusJSONGolden checks prepull status --json against a golden
// file: the report itself, times included, error texts as they were.
func TestWriteStatusJSONGolden(t *testing.T) {
	r := statusFixture()
	at := time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC)
	r.Saved, r.Agent.Since, r.Agent.LastSaved, r.Agent.EngineChecked = at, at.Add(-time.Hour), at, at.Add(-time.Minute)
	for i := range r.Paks {
		r.Paks[i].FirstSeen, r.Paks[i].Updated = at.Add(-time.Hour), at
	}
	r.Images[0].LastPulled, r.Images[0].LastVerified = at.Add(-time.Hour), at
	for i := range r.Images {
		r.Images[i].Updated = at
	}
	r.Released[0].KeptSince, r.Released[0].Released, r.Released[0].Updated = at.Add(-2*time.Hour), at.Add(-time.Hour), at
	r.Removed[0].At = at
	var out bytes.Buffer
	if err := WriteStatus(&out, r, "/st", true); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "status.json.golden", out.String())
}

// statusFixture is a degraded agent's report with hostile names and texts,
// its times zero.
func statusFixture() *Report {
	s := &State{Version: 1,
		Paks: []PakState{
			{File: "/in/done/MyAdapter_1.0.0.pak", Name: "MyAdapter_1.0.0.pak", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Reference: "reg:5000/vcfops/my@sha256:bb", Status: StatusPresent, Attempts: 1},
			{File: "/in/監視アダプタ_1.0.pak", Reference: "reg:5000/vcfops/jp@sha256:cc", Status: StatusWaiting, Attempts: 2,
				LastError: "Head \"https://reg:5000/v2/\": \x1b]0;owned\a\x1b[2J\nfailed/x.pak  reg/x@sha256:dd  present"},
			{File: "/in/failed/gnp.\u202eexe.pak", Status: StatusInvalid, LastError: "x\u009b2J\rdone " + strings.Repeat("é", 60)},
		},
		Images: []ImageState{
			{Reference: "reg:5000/vcfops/my@sha256:bb", Status: StatusPresent, Attempts: 1, Pulls: 1},
			{Reference: "reg:5000/vcfops/jp@sha256:cc", Status: StatusWaiting, Attempts: 2, LastError: "unauthorized: \x1b]52;c;ZWNobyBldmls\a"},
		},
		Released: []ImageState{
			{Reference: "reg:5000/vcfops/my@sha256:aa", Digest: "sha256:aa", Status: StatusPresent, Origin: OriginPulled, LastError: "image is in use by a container: container 0123456789ab"},
		},
		Removed: []Removal{
			{Reference: "reg:5000/vcfops/my@sha256:99", Digest: "sha256:99", Outcome: RemovedImage, Reason: "1 newer digest of the repository kept (keep_images: 1)"},
		},
	}
	return &Report{State: s, Agent: AgentStatus{Status: AgentDegraded, PID: 42, LockFile: "/st/agent.lock", Engine: "unreachable",
		Degraded: []string{"cannot save state: no space left on device"}, EngineError: "ping: \x1b[2Jdocker engine unreachable"}}
}
