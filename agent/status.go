package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prepull/prepull/internal/display"
)

// maxErrorWidth bounds the LAST ERROR column; --json has the whole text.
const maxErrorWidth = 100

// WriteStatus prints the state for prepull status: a table of paks and one
// of images, or with asJSON the state itself, digests and references
// included. It needs no running agent.
func WriteStatus(w io.Writer, s *State, asJSON bool) error {
	if asJSON {
		if s.Paks == nil {
			s.Paks = []PakState{}
		}
		if s.Images == nil {
			s.Images = []ImageState{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	if len(s.Paks) == 0 && len(s.Images) == 0 {
		_, err := fmt.Fprintln(w, "no paks yet: copy a .pak into the agent's watch_dir")
		return err
	}
	// Every cell goes through display.Text: file names, references and
	// error texts come from paks and registries.
	var paks, images display.Table
	paks.Row("PAK", "REFERENCE", "STATUS", "ATTEMPTS", "LAST ERROR", "UPDATED")
	for _, p := range s.Paks {
		paks.Row(pakColumn(p), p.Reference, p.Status, strconv.Itoa(p.Attempts), errorColumn(p.LastError), when(p.Updated))
	}
	images.Row("IMAGE", "STATUS", "ATTEMPTS", "PULLS", "LAST ERROR", "LAST PULLED", "LAST VERIFIED")
	for _, im := range s.Images {
		images.Row(im.Reference, im.Status, strconv.Itoa(im.Attempts), strconv.Itoa(im.Pulls), errorColumn(im.LastError), when(im.LastPulled), when(im.LastVerified))
	}
	if _, err := paks.WriteTo(w); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	_, err := images.WriteTo(w)
	return err
}

// pakColumn names a pak by its file name and the folder it is in now.
func pakColumn(p PakState) string {
	name := filepath.Base(p.File)
	switch filepath.Base(filepath.Dir(p.File)) {
	case DoneDir, FailedDir:
		name = filepath.Base(filepath.Dir(p.File)) + "/" + name
	}
	return name
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

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
