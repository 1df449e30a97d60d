package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/golden"
	"github.com/prepull/prepull/internal/pak"
)

// TestWriteStatusGolden checks prepull status's tables against golden
// files: hostile file names, references and error texts (terminal escapes,
// OSC titles, bidi overrides, C1 controls, newlines forging a row) are
// escaped, and wide file names keep the columns aligned. LAST ERROR has the
// cause, or with --wide the whole error text.
func TestWriteStatusGolden(t *testing.T) {
	now, zone := statusNow, statusZone
	t.Cleanup(func() { statusNow, statusZone = now, zone })
	statusNow, statusZone = func() time.Time { return fixtureTime.Add(time.Minute) }, time.UTC
	for format, file := range map[StatusFormat]string{StatusTable: "status.golden", StatusWide: "status-wide.golden"} {
		var out bytes.Buffer
		if err := WriteStatus(&out, withTimes(statusFixture()), "/st", format); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(out.String(), "\x1b\a\r\u202e\u009b") {
			t.Errorf("%s: the status table holds a raw control character:\n%q", file, out.String())
		}
		golden.Check(t, file, out.String())
	}
}

// TestWriteStatusJSONGolden checks prepull status --json against a golden
// file: the report itself, times included, error texts as they were.
func TestWriteStatusJSONGolden(t *testing.T) {
	r := withTimes(statusFixture())
	var out bytes.Buffer
	if err := WriteStatus(&out, r, "/st", StatusJSON); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "status.json.golden", out.String())
}

// statusFixture is a degraded agent's report with hostile names and texts,
// its times zero.
// fixtureTime is when statusFixture's state was saved.
var fixtureTime = time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC)

// withTimes gives r's agent, paks and images times around fixtureTime.
func withTimes(r *Report) *Report {
	at := fixtureTime
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
	return r
}

func statusFixture() *Report {
	s := &State{Version: 1,
		Paks: []PakState{
			{File: "/in/done/MyAdapter_1.0.0.pak", Name: "MyAdapter_1.0.0.pak", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Reference: "reg:5000/vcfops/my@sha256:bb", Status: StatusPresent, Attempts: 1},
			{File: "/in/監視アダプタ_1.0.pak", Reference: "reg:5000/vcfops/jp@sha256:cc", Status: StatusWaiting, Attempts: 2,
				LastError: "Head \"https://reg:5000/v2/\": \x1b]0;owned\a\x1b[2J\nfailed/x.pak  reg/x@sha256:dd  present"},
			{File: "/in/failed/gnp.\u202eexe.pak", Status: StatusInvalid, LastError: "x\u009b2J\rdone " + strings.Repeat("é", 60)},
			{File: "/in/failed/Mac_1.0.pak", Reference: "reg:5000/vcfops/mac@sha256:ee", Status: StatusInvalid, ErrorKind: ErrorPlatform,
				LastError: "the image cannot run on this proxy: reg:5000/vcfops/mac@sha256:ee is built for linux/arm64 only, and this proxy's Docker Engine runs linux/amd64 images: rebuild it for linux/amd64 (docker buildx build --platform linux/amd64), push it, and build the pak again with the new digest",
				LastCause: "no linux/amd64 variant: built for linux/arm64 only (rebuild with docker buildx build --platform linux/amd64)"},
			{File: "/in/done/Kept_2.0.prepull", Name: "Kept_2.0.prepull", Reference: "reg:5000/vcfops/my@sha256:bb", Status: StatusPresent, Attempts: 1},
		},
		Images: []ImageState{
			{Reference: "reg:5000/vcfops/my@sha256:bb", Status: StatusPresent, Attempts: 1, Pulls: 1},
			{Reference: "reg:5000/vcfops/jp@sha256:cc", Status: StatusWaiting, Attempts: 2, LastError: "unauthorized: \x1b]52;c;ZWNobyBldmls\a"},
			{Reference: "reg:5000/vcfops/rb@sha256:ff", Status: StatusFailed, Attempts: 1, ErrorKind: ErrorCredentials,
				LastError: `login to reg:5000 as "robot" (credentials from config): login to reg:5000: registry rejected the credentials: Error response from daemon: Get "https://reg:5000/v2/": unauthorized: 401 Unauthorized`,
				LastCause: `credentials rejected: user "robot" at reg:5000 (credentials from config)`},
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

// TestErrorFileAdvice checks that a pak's .error file gives the one piece of
// advice that fits its failure: rebuild the image, set default_registry, or
// fix the pak.
func TestErrorFileAdvice(t *testing.T) {
	tests := []struct {
		name      string
		p         PakState
		want, not []string
	}{
		{"platform", PakState{ErrorKind: ErrorPlatform, LastError: "the image cannot run on this proxy: r/x@sha256:ee is built for linux/arm64 only: rebuild it for linux/amd64"},
			[]string{"rebuild it for linux/amd64", "its image cannot run on this proxy."}, []string{"Fix the pak", "default_registry", "pullable"}},
		{"no registry", PakState{LastError: "/in/x.pak: x.conf: " + pak.ErrNoRegistry.Error()},
			[]string{"Set default_registry", "does not name a pullable image."}, []string{"Fix the pak", "rebuild"}},
		{"bad digest", PakState{LastError: "/in/x.pak: x.conf: DIGEST is missing"},
			[]string{"Fix the pak, then copy it into the inbox again.", "does not name a pullable image."}, []string{"default_registry", "rebuild"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x.pak")
			tt.p.SHA256 = "sha256:ab"
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			if err := writeErrorFile(root, "x.pak", &tt.p, time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path + errorSuffix)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.want {
				if !strings.Contains(string(b), s) {
					t.Errorf("the .error file does not say %q:\n%s", s, b)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(string(b), s) {
					t.Errorf("the .error file says %q:\n%s", s, b)
				}
			}
		})
	}
}
