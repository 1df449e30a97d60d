package agent

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// StateFile is the name of the agent's state file inside state_dir.
const StateFile = "state.json"

// stateVersion is the version of the state file's format.
const stateVersion = 1

// The statuses of paks and images. An image is waiting (for its turn or
// for its next try after a transient failure), pulling (being checked or
// pulled), present, or failed (for a reason that retrying soon will not fix,
// such as rejected credentials; it is still tried again, slowly). A pak has
// its image's status, or invalid when it names no pullable image.
const (
	StatusWaiting = "waiting"
	StatusPulling = "pulling"
	StatusPresent = "present"
	StatusFailed  = "failed"
	StatusInvalid = "invalid"
)

// State is what the agent keeps in state_dir/state.json: every pak it has
// taken and every image it is responsible for.
type State struct {
	Version int          `json:"version"`
	Saved   time.Time    `json:"saved,omitzero"` // when the agent wrote it
	Paks    []PakState   `json:"paks"`
	Images  []ImageState `json:"images"`
	// Released are images this agent pulled that no pak or conf names any
	// more and that are still in the engine as far as it knows: with
	// keep_images, the ones it may remove. Without keep_images it keeps
	// no such list.
	Released []ImageState `json:"released,omitempty"`
	// Removed is what keep_images removed, the newest last, at most
	// removedHistory entries.
	Removed []Removal `json:"removed,omitempty"`
}

// The origins of an image in the engine (ImageState.Origin).
const (
	// OriginPulled: the copy in the engine is one this agent pulled.
	OriginPulled = "pulled"
	// OriginFound: the image was present already when the agent first
	// checked it; keep_images never removes it.
	OriginFound = "found"
)

// The outcomes of a removal (Removal.Outcome).
const (
	// RemovedImage: the engine deleted the image.
	RemovedImage = "removed"
	// RemovedUntagged: the engine only untagged the digest reference; the
	// image stays for its other tags or digests.
	RemovedUntagged = "untagged"
	// RemovedGone: the image was no longer in the engine when the agent
	// came to remove it (removed by hand, or by this agent just before a
	// crash).
	RemovedGone = "gone"
)

// Removal is one image keep_images let go of.
type Removal struct {
	Reference string    `json:"reference"`
	Digest    string    `json:"digest"`
	Outcome   string    `json:"outcome"` // one of the Removed* constants
	Reason    string    `json:"reason"`  // why it was removed, e.g. "1 newer digest of the repository kept"
	At        time.Time `json:"at"`
}

// PakState is one pak: a file, identified by its path. The same bytes under
// two names are two paks.
type PakState struct {
	File      string    `json:"file"` // where the file is now (inbox, done/ or failed/)
	Name      string    `json:"name"` // the file's name now
	SHA256    string    `json:"sha256"`
	Reference string    `json:"reference,omitempty"`
	Digest    string    `json:"digest,omitempty"`
	Status    string    `json:"status"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	LastCause string    `json:"last_cause,omitempty"` // last_error's cause in a few words, as the one-shot says it
	ErrorKind string    `json:"error_kind,omitempty"` // what kind of failure last_error is (the Error* constants)
	FirstSeen time.Time `json:"first_seen"`
	Updated   time.Time `json:"updated"`

	id fileID // the file as it was read, when this agent read it
}

// ImageState is one image reference, pulled once however many paks name it.
type ImageState struct {
	Reference string `json:"reference"` // the registry to log in to is its host, never stored apart
	Digest    string `json:"digest"`
	// AdapterKind is that of the pak or conf that first named the image:
	// what its local name shows (pull.LocalName).
	AdapterKind  string    `json:"adapter_kind,omitempty"`
	Status       string    `json:"status"`
	Attempts     int       `json:"attempts"` // tries since the image was last found missing
	Pulls        int       `json:"pulls"`    // pulls that completed, over the image's life
	LastError    string    `json:"last_error,omitempty"`
	LastCause    string    `json:"last_cause,omitempty"` // last_error's cause in a few words, as the one-shot says it
	ErrorKind    string    `json:"error_kind,omitempty"` // what kind of failure last_error is (the Error* constants)
	LastPulled   time.Time `json:"last_pulled,omitzero"`
	LastVerified time.Time `json:"last_verified,omitzero"`
	Updated      time.Time `json:"updated"`
	// Origin says whether the copy in the engine is one this agent pulled
	// (OriginPulled) or one it found present (OriginFound); empty until the
	// image was first present.
	Origin string `json:"origin,omitempty"`
	// KeptSince is when a pak or conf last began to name the image: what
	// "newer" means for keep_images.
	KeptSince time.Time `json:"kept_since,omitzero"`
	// Released is when no pak or conf named it any more (Released list only).
	Released time.Time `json:"released,omitzero"`
	// Removing says the agent decided to remove the image and saved that
	// before asking the engine (Released list only).
	Removing bool `json:"removing,omitempty"`
}

// ReadState reads the state file in dir. A missing file is an empty state.
func ReadState(dir string) (*State, error) {
	root, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	defer root.Close()
	return readState(root)
}

// readState reads the state file in the folder root, the state_dir the
// agent checked and holds. A missing file is an empty state.
func readState(root *os.Root) (*State, error) {
	path := filepath.Join(root.Name(), StateFile)
	data, err := root.ReadFile(StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("read state %s: version %d, this prepull reads version %d", path, s.Version, stateVersion)
	}
	return &s, nil
}

// tempPrefix starts the names of the temporary files writeState makes.
const tempPrefix = ".state.json.tmp-"

// writeState replaces the state file in the folder root (state_dir, as
// checked and held) atomically: it writes a temporary file in the same
// folder, syncs it, renames it over the old one and syncs the folder, so
// that a crash at any moment leaves either the old state or the new one,
// complete.
func writeState(root *os.Root, s *State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	tmp := tempPrefix + rand.Text()
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, StateFile)
	}
	if err != nil {
		root.Remove(tmp)
		return fmt.Errorf("write state: %w", err)
	}
	return syncRoot(root)
}

// removeStaleTemps removes temporary state files that a crash left behind.
func removeStaleTemps(root *os.Root) {
	entries, _ := fs.ReadDir(root.FS(), ".")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) && e.Type().IsRegular() {
			root.Remove(e.Name())
		}
	}
}

// syncRoot makes a rename inside the folder root durable.
func syncRoot(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("sync %s: %w", root.Name(), err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", root.Name(), err)
	}
	return nil
}

// sortState puts paks in the order they were first seen and images in
// reference order, so that the file and prepull status read the same way
// each time.
func sortState(s *State) {
	slices.SortFunc(s.Paks, func(a, b PakState) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		return strings.Compare(a.File, b.File)
	})
	slices.SortFunc(s.Images, func(a, b ImageState) int { return strings.Compare(a.Reference, b.Reference) })
	slices.SortFunc(s.Released, func(a, b ImageState) int { return strings.Compare(a.Reference, b.Reference) })
}
