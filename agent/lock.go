package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prepull/prepull/internal/config"
)

// LockFile is the name of the lock file inside state_dir. The agent holding
// it keeps its live status there (see Live), so that prepull status can tell
// what the agent knows now even when state.json cannot be written.
const LockFile = "agent.lock"

// liveSize is the room the lock file keeps for the live status. It is
// allocated at start, so that a full disk later cannot stop the agent from
// telling it is degraded.
const liveSize = 4096

// Live is what the agent holding the lock says about itself now.
type Live struct {
	PID   int       `json:"pid"`
	Since time.Time `json:"since"` // when it took the lock
	// Degraded says why the agent cannot work normally (the state cannot
	// be saved, watch_dir is unsafe); empty when it can.
	Degraded    []string  `json:"degraded,omitempty"`
	LastSaved   time.Time `json:"last_saved,omitzero"`
	Engine      string    `json:"engine"` // "answered", "unreachable" or "unknown" (not checked yet)
	EngineError string    `json:"engine_error,omitempty"`
	EngineAt    time.Time `json:"engine_checked,omitzero"` // when the engine was last checked
	Updated     time.Time `json:"updated"`
}

// stateLock is the exclusive lock an agent holds on its state_dir, and the
// state_dir itself, as checked and held: the state is read and written
// relative to it.
type stateLock struct {
	dir  *os.Root
	f    *os.File
	path string
}

// lockStateDir takes the exclusive lock in dir, the state_dir openSafe
// checked, failing at once with an error that wraps config.ErrInvalid and
// names the lock file and the holder's PID when another agent holds it.
// The lock keeps dir; its close closes dir.
func lockStateDir(dir *os.Root) (*stateLock, error) {
	path := filepath.Join(dir.Name(), LockFile)
	f, err := dir.OpenFile(LockFile, os.O_RDWR|os.O_CREATE|oNoFollow|syscall.O_CLOEXEC, 0o600)
	if errors.Is(err, syscall.EROFS) {
		f, err = dir.OpenFile(LockFile, os.O_RDONLY|oNoFollow|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("lock state_dir: %w", err)
	}
	if held, err := tryLock(f, true); held || err != nil {
		defer f.Close()
		if held {
			holder := "unknown"
			if l, err := readLive(f); err == nil && l.PID > 0 {
				holder = strconv.Itoa(l.PID)
			}
			return nil, fmt.Errorf("%w: another prepull agent runs with state_dir %s: lock file %s is held by pid %s",
				config.ErrInvalid, dir.Name(), path, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Keep room for the live status; a full disk now only means less to say.
	preallocate(f, liveSize)
	return &stateLock{dir: dir, f: f, path: path}, nil
}

// write replaces the live status in the lock file, in place and within the
// room allocated at start.
func (l *stateLock) write(live Live) error {
	data, err := json.Marshal(live)
	if err != nil {
		return err
	}
	if len(data) >= liveSize {
		return fmt.Errorf("live status of %d bytes does not fit in %s", len(data), l.path)
	}
	buf := bytes.Repeat([]byte{' '}, liveSize)
	copy(buf, data)
	buf[liveSize-1] = '\n'
	if _, err := l.f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("write %s: %w", l.path, err)
	}
	return nil
}

// close releases the lock and state_dir. The file stays: it tells status
// who ran last.
func (l *stateLock) close() {
	l.f.Close()
	l.dir.Close()
}

func readLive(f *os.File) (Live, error) {
	buf := make([]byte, liveSize)
	n, err := f.ReadAt(buf, 0)
	if n == 0 && err != nil {
		return Live{}, err
	}
	var l Live
	if err := json.Unmarshal(bytes.TrimSpace(buf[:n]), &l); err != nil {
		return Live{}, err
	}
	return l, nil
}

// Holder is what prepull status learns from the lock file of a state_dir.
type Holder struct {
	Held bool // an agent holds the lock now
	Live Live // what the holder (or, when not held, the last agent) wrote
	// Exists says the lock file exists: an agent ran with this state_dir.
	Exists bool
}

// ReadHolder tells whether an agent holds dir's lock now, and what it says.
func ReadHolder(dir string) (Holder, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow|syscall.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return Holder{}, nil
	}
	if err != nil {
		return Holder{}, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	h := Holder{Exists: true}
	held, err := tryLock(f, false)
	switch {
	case err != nil:
		return Holder{}, fmt.Errorf("lock %s: %w", path, err)
	case held:
		h.Held = true
	default:
		unlock(f)
	}
	h.Live, _ = readLive(f)
	return h, nil
}
