package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := ReadState(dir)
	if err != nil || len(s.Paks) != 0 || s.Version != stateVersion {
		t.Fatalf("ReadState of an empty folder: %+v, %v", s, err)
	}
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	want := &State{Version: stateVersion,
		Paks:   []PakState{{SHA256: "sha256:aa", File: "/in/done/a.pak", Name: "a.pak", Reference: "r/x@sha256:bb", Digest: "sha256:bb", Status: StatusPresent, Attempts: 1, FirstSeen: now, Updated: now}},
		Images: []ImageState{{Reference: "r/x@sha256:bb", Digest: "sha256:bb", Status: StatusPresent, Attempts: 1, Pulls: 1, LastPulled: now, Updated: now}},
	}
	if err := writeState(openRoot(t, dir), want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if !bytes.Equal(a, b) {
		t.Errorf("read back\n%s\nwant\n%s", a, b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the folder holds %d files, want only %s", len(entries), StateFile)
	}
	if fi, _ := os.Stat(filepath.Join(dir, StateFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestReadStateRefusesWhatItCannotRead(t *testing.T) {
	for _, content := range []string{`{"version": 2, "paks": []}`, `{"version": 1, "paks": [`} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadState(dir); err == nil {
			t.Errorf("ReadState(%s) succeeded", content)
		}
	}
}

func TestWriteStatus(t *testing.T) {
	now := time.Now()
	s := &State{Version: 1,
		Paks: []PakState{
			{Name: "a.pak", File: "/in/done/a.pak", Reference: "r/x@sha256:bb", Status: StatusPresent, Attempts: 1, Updated: now},
			{Name: "b.pak", File: "/in/failed/b.pak", Status: StatusInvalid, LastError: "b.pak: adapter.zip: DIGEST is missing\n", Updated: now},
			{Name: "x\nforged row.pak", File: "/in/x\nforged row.pak", Status: StatusWaiting, Updated: now},
		},
		Images: []ImageState{{Reference: "r/x@sha256:bb", Digest: "sha256:bb", Status: StatusPresent, Attempts: 1, Pulls: 1, LastPulled: now}},
	}
	r := &Report{State: s, Agent: AgentStatus{Status: AgentRunning, PID: 42, LockFile: "/st/agent.lock", Engine: "unreachable", EngineError: "ping: docker engine unreachable", EngineChecked: now}}
	var out bytes.Buffer
	if err := WriteStatus(&out, r, "/st", StatusTable); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PAK", "REFERENCE", "LAST ERROR", "done/a.pak", "failed/b.pak", "DIGEST is missing", "r/x@sha256:bb", "present", "invalid",
		"running, pid 42, holding /st/agent.lock", "engine:   unreachable at the last check"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status table lacks %q:\n%s", want, out.String())
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "forged row") {
			t.Errorf("a file name with a newline forged a row:\n%s", out.String())
		}
	}
	out.Reset()
	if err := WriteStatus(&out, r, "/st", StatusJSON); err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || len(back.Paks) != 3 || back.Images[0].Digest != "sha256:bb" {
		t.Errorf("status --json: %v\n%s", err, out.String())
	}
	out.Reset()
	empty := &Report{State: &State{Version: 1}, Agent: AgentStatus{Status: AgentRunning}}
	if err := WriteStatus(&out, empty, "/st", StatusJSON); err != nil || !strings.Contains(out.String(), `"paks": []`) {
		t.Errorf("empty status --json: %v\n%s", err, out.String())
	}
	out.Reset()
	never := &Report{State: &State{Version: 1}, Agent: AgentStatus{Status: AgentNeverRun}}
	if err := WriteStatus(&out, never, "/st", StatusTable); !errors.Is(err, ErrNeverRun) || out.Len() != 0 {
		t.Errorf("status with no state: %v, printed %q; want ErrNeverRun and nothing on stdout", err, out.String())
	}
}

func TestRegistryOfComesFromTheReference(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"harbor.example.com:8443/proj/a@sha256:" + strings.Repeat("a", 64), "harbor.example.com:8443"},
		{"localhost:5000/a@sha256:" + strings.Repeat("b", 64), "localhost:5000"},
		{"index.docker.io/library/a@sha256:" + strings.Repeat("c", 64), "index.docker.io"},
		{"not a reference", ""},
	}
	for _, tt := range tests {
		if got := registryOf(tt.ref); got != tt.want {
			t.Errorf("registryOf(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
}

// openRoot opens dir as the agent holds state_dir, closed when t ends.
func openRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
