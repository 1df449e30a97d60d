package agent

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
)

// maxErrorWidth bounds the LAST ERROR column; --wide and --json have the
// whole text.
const maxErrorWidth = 120

// The agent statuses prepull status reports, in its AGENT line and in the
// agent.status field of --json.
const (
	AgentRunning  = "running"  // an agent holds the lock and works normally
	AgentDegraded = "degraded" // an agent holds the lock but cannot save its state, or watch_dir is unsafe
	AgentStopped  = "stopped"  // no agent holds the lock: what follows is what the last one saved
	AgentNeverRun = "never-run"
)

// ErrNeverRun is returned by WriteStatus when no agent has run with the
// state_dir: there is no state and no lock file.
var ErrNeverRun = errors.New("no agent has run with this state_dir")

// AgentStatus is the freshness part of prepull status: whether an agent
// holds the lock now, and what it last said.
type AgentStatus struct {
	Status   string    `json:"status"` // one of the Agent* constants
	LockFile string    `json:"lock_file"`
	PID      int       `json:"pid,omitempty"`  // of the holder, or of the last agent when stopped
	Since    time.Time `json:"since,omitzero"` // when it took the lock
	Degraded []string  `json:"degraded,omitempty"`
	// LastSaved is when the state was last saved.
	LastSaved time.Time `json:"last_saved,omitzero"`
	// Engine is what the agent found at its last check of Docker Engine:
	// "answered", "unreachable" or "unknown"; EngineChecked says when.
	Engine        string    `json:"engine"`
	EngineError   string    `json:"engine_error,omitempty"`
	EngineChecked time.Time `json:"engine_checked,omitzero"`
}

// Report is what prepull status prints: the state, and the agent's status.
type Report struct {
	*State
	Agent AgentStatus `json:"agent"`
}

// ReadReport reads what prepull status shows for stateDir, without the
// agent's help. With no state and no lock file, the report's agent status
// is AgentNeverRun.
func ReadReport(stateDir string) (*Report, error) {
	h, err := ReadHolder(stateDir)
	if err != nil {
		return nil, err
	}
	s, err := ReadState(stateDir)
	if err != nil {
		return nil, err
	}
	stateExists := true
	if _, err := os.Stat(filepath.Join(stateDir, StateFile)); errors.Is(err, fs.ErrNotExist) {
		stateExists = false
	}
	a := AgentStatus{LockFile: filepath.Join(stateDir, LockFile), PID: h.Live.PID, Since: h.Live.Since,
		LastSaved: s.Saved, Engine: "unknown"}
	if h.Live.LastSaved.After(a.LastSaved) {
		a.LastSaved = h.Live.LastSaved
	}
	switch {
	case h.Held:
		a.Status = AgentRunning
		a.Degraded = h.Live.Degraded
		if len(a.Degraded) > 0 {
			a.Status = AgentDegraded
		}
		if h.Live.Engine != "" {
			a.Engine = h.Live.Engine
		}
		a.EngineError, a.EngineChecked = h.Live.EngineError, h.Live.EngineAt
	case !h.Exists && !stateExists:
		a.Status = AgentNeverRun
	default:
		a.Status = AgentStopped
		// What a stopped agent was doing is not going on.
		for i := range s.Images {
			if s.Images[i].Status == StatusPulling {
				s.Images[i].Status = StatusWaiting
			}
		}
		for i := range s.Paks {
			if s.Paks[i].Status == StatusPulling {
				s.Paks[i].Status = StatusWaiting
			}
		}
	}
	return &Report{State: s, Agent: a}, nil
}

// StatusFormat is how WriteStatus prints: the tables, the tables with whole
// error texts (Wide), or the report as JSON.
type StatusFormat int

const (
	StatusTable StatusFormat = iota // LAST ERROR says the cause in a few words
	StatusWide                      // LAST ERROR says the whole error
	StatusJSON
)

// WriteStatus prints r for prepull status: the agent's status, then a
// table of paks and one of images, or as StatusJSON the report itself,
// digests and references included. When no agent has run with the
// state_dir it prints that and returns ErrNeverRun.
func WriteStatus(w io.Writer, r *Report, stateDir string, format StatusFormat) error {
	s := r.State
	if format == StatusJSON {
		if s.Paks == nil {
			s.Paks = []PakState{}
		}
		if s.Images == nil {
			s.Images = []ImageState{}
		}
		if err := display.JSON(w, r); err != nil {
			return err
		}
		if r.Agent.Status == AgentNeverRun {
			return fmt.Errorf("%w: %s", ErrNeverRun, stateDir)
		}
		return nil
	}
	if r.Agent.Status == AgentNeverRun {
		return fmt.Errorf("%w: %s has no %s and no %s (exit status 1)", ErrNeverRun, stateDir, StateFile, LockFile)
	}
	writeAgent(w, r.Agent)
	if len(s.Paks) == 0 && len(s.Images) == 0 && len(s.Released) == 0 && len(s.Removed) == 0 {
		_, err := fmt.Fprintln(w, "no paks yet: copy a .pak into the agent's watch_dir")
		return err
	}
	// Every cell goes through display.Text: file names, references and
	// error texts come from paks and registries.
	var paks, images display.Table
	lastError := func(e, cause string) string {
		if format == StatusWide {
			return strings.TrimSpace(e)
		}
		// A state saved before causes were recorded has the error only.
		return errorColumn(cmp.Or(cause, e))
	}
	paks.Row("PAK", "REFERENCE", "STATUS", "ATTEMPTS", "LAST ERROR", "UPDATED")
	for _, p := range s.Paks {
		paks.Row(pakColumn(p), p.Reference, p.Status, strconv.Itoa(p.Attempts), lastError(p.LastError, p.LastCause), when(p.Updated))
	}
	images.Row("IMAGE", "STATUS", "ATTEMPTS", "PULLS", "LAST ERROR", "LAST PULLED", "LAST VERIFIED")
	for _, im := range s.Images {
		images.Row(im.Reference, im.Status, strconv.Itoa(im.Attempts), strconv.Itoa(im.Pulls), lastError(im.LastError, im.LastCause), when(im.LastPulled), when(im.LastVerified))
	}
	if _, err := paks.WriteTo(w); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	if _, err := images.WriteTo(w); err != nil {
		return err
	}
	return writeKeep(w, s)
}

// writeKeep prints, when there are any, the released images keep_images
// may remove, and those it removed.
func writeKeep(w io.Writer, s *State) error {
	if len(s.Released) > 0 {
		var t display.Table
		t.Row("RELEASED IMAGE", "ORIGIN", "KEPT SINCE", "RELEASED", "WHY STILL HERE")
		for _, r := range s.Released {
			why := r.LastError
			if r.Removing {
				why = "being removed"
			}
			t.Row(r.Reference, r.Origin, when(r.KeptSince), when(r.Released), errorColumn(why))
		}
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
		if _, err := t.WriteTo(w); err != nil {
			return err
		}
	}
	if len(s.Removed) > 0 {
		var t display.Table
		t.Row("REMOVED IMAGE", "OUTCOME", "AT", "REASON")
		for _, r := range s.Removed {
			t.Row(r.Reference, r.Outcome, when(r.At), r.Reason)
		}
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
		if _, err := t.WriteTo(w); err != nil {
			return err
		}
	}
	return nil
}

// writeAgent prints the lines that say how fresh the rest is. Error texts
// come from the system and the engine: they are escaped.
func writeAgent(w io.Writer, a AgentStatus) {
	lock := display.Text(a.LockFile)
	switch a.Status {
	case AgentStopped:
		fmt.Fprintf(w, "agent:    stopped: no agent holds %s (the last one was pid %d); below is what it saved\n", lock, a.PID)
	default:
		fmt.Fprintf(w, "agent:    %s, pid %d, holding %s since %s\n", a.Status, a.PID, lock, ago(a.Since))
	}
	for _, d := range a.Degraded {
		fmt.Fprintf(w, "degraded: %s\n", display.Text(errorColumn(d)))
	}
	fmt.Fprintf(w, "saved:    %s\n", ago(a.LastSaved))
	switch {
	case a.Status == AgentStopped:
	case a.Engine == "unreachable":
		fmt.Fprintf(w, "engine:   unreachable at the last check, %s: %s (image statuses are as last seen)\n", ago(a.EngineChecked), display.Text(errorColumn(a.EngineError)))
	case a.Engine == "answered":
		fmt.Fprintf(w, "engine:   answered at the last check, %s\n", ago(a.EngineChecked))
	default:
		fmt.Fprintln(w, "engine:   not checked yet")
	}
	fmt.Fprintln(w)
}

// pakColumn names a pak by its file name and the folder it is in now, and
// a conf of conf_dirs by its path. A file prepull keep handed over
// (NAME.prepull) is named by the pak the admin gave it, then the file:
// "MyAdapter.pak (kept as done/MyAdapter.prepull)".
func pakColumn(p PakState) string {
	name := filepath.Base(p.File)
	if eligibleConf(name) {
		return p.File
	}
	file := name
	switch filepath.Base(filepath.Dir(p.File)) {
	case DoneDir, FailedDir:
		file = filepath.Base(filepath.Dir(p.File)) + "/" + name
	}
	if base, ok := strings.CutSuffix(name, pak.SlimSuffix); ok && base != "" {
		return base + ".pak (kept as " + file + ")"
	}
	return file
}

// errorColumn shortens an error text for the table, at a character
// boundary; the table escapes it.
func errorColumn(e string) string {
	e = strings.TrimSpace(e)
	if len(e) > maxErrorWidth {
		cut := maxErrorWidth - 3
		for cut > 0 && !utf8.RuneStart(e[cut]) {
			cut--
		}
		e = e[:cut] + "..."
	}
	return e
}

// statusNow and statusZone are the clock and the time zone of status's
// times: the machine's, fixed by the golden tests.
var (
	statusNow  = time.Now
	statusZone = time.Local
)

// ago is when, followed by how long ago that was: the reader judges
// freshness at a glance.
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return when(t) + " (" + statusNow().Sub(t).Round(time.Second).String() + " ago)"
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(statusZone).Format("2006-01-02 15:04:05")
}
