package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prepull/prepull/internal/pak"
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
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PAK\tREFERENCE\tSTATUS\tATTEMPTS\tLAST ERROR\tUPDATED")
	for _, p := range s.Paks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", pakColumn(p), orDash(p.Reference), p.Status, p.Attempts, errorColumn(p.LastError), when(p.Updated))
	}
	fmt.Fprintln(tw, "")
	fmt.Fprintln(tw, "IMAGE\tSTATUS\tATTEMPTS\tPULLS\tLAST ERROR\tLAST PULLED\tLAST VERIFIED")
	for _, im := range s.Images {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", im.Reference, im.Status, im.Attempts, strconv.Itoa(im.Pulls), errorColumn(im.LastError), when(im.LastPulled), when(im.LastVerified))
	}
	return tw.Flush()
}

// pakColumn names a pak by its file name and the folder it is in now.
func pakColumn(p PakState) string {
	name := filepath.Base(p.File)
	switch filepath.Base(filepath.Dir(p.File)) {
	case DoneDir, FailedDir:
		name = filepath.Base(filepath.Dir(p.File)) + "/" + name
	}
	// A dropped file's name may hold newlines or escapes: never print it raw.
	return pak.Display(name)
}

func errorColumn(e string) string {
	e = strings.Join(strings.Fields(e), " ")
	if len(e) > maxErrorWidth {
		e = e[:maxErrorWidth-3] + "..."
	}
	return orDash(e)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
