package cli

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/engine"
)

const progressRef = "127.0.0.1:5000/proj/x@sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e"

// pullProgress is a pull's progress as Engine 20.10.24 reported it, trimmed.
var pullProgress = []engine.Progress{
	{Status: "Pulling from proj/x"},
	{Layer: "ff3d5558984b", Status: "Pulling fs layer"},
	{Layer: "ff3d5558984b", Status: "Downloading", Current: 36445, Total: 3001301},
	{Layer: "ff3d5558984b", Status: "Extracting", Current: 3001301, Total: 3001301},
	{Layer: "ff3d5558984b", Status: "Pull complete"},
	{Status: "Digest: sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e"},
	{Status: "Status: Downloaded newer image for " + progressRef},
}

func TestTerminalProgress(t *testing.T) {
	var out bytes.Buffer
	sink, done := terminalProgress(&out, time.Hour, 0)
	for _, p := range pullProgress {
		sink(p)
	}
	done()
	done()                                    // a second call does nothing
	sink(engine.Progress{Status: "too late"}) // nor does a sink after done

	text := out.String()
	for _, want := range []string{
		"Pulling from proj/x\n",
		"ff3d5558984b: Pulling fs layer",
		"ff3d5558984b: Downloading", "36.45kB/3.001MB",
		"ff3d5558984b: Pull complete",
		"\x1b[", // Docker's cursor movement: one line per layer, updated in place
		"Digest: sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e\n",
		"Status: Downloaded newer image for " + progressRef + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, text)
		}
	}
	if strings.Contains(text, "too late") {
		t.Errorf("the sink wrote after done:\n%q", text)
	}
}

func TestTerminalProgressConcurrent(t *testing.T) {
	var out bytes.Buffer
	sink, done := terminalProgress(&out, time.Hour, 0)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				sink(engine.Progress{Layer: fmt.Sprintf("layer%d", i), Status: "Downloading", Current: int64(j), Total: 50})
			}
		}()
	}
	wg.Wait()
	done()
	if out.Len() == 0 {
		t.Error("no output")
	}
}

// TestTerminalProgressEscapes feeds the terminal renderer what a hostile
// registry could put in the engine's progress stream: Docker's own cursor
// moves stay, the registry's escapes are shown as text.
func TestTerminalProgressEscapes(t *testing.T) {
	var out bytes.Buffer
	sink, done := terminalProgress(&out, time.Hour, 0)
	sink(engine.Progress{Status: "Pulling from \x1b]0;owned\a\u202eproj"})
	sink(engine.Progress{Layer: "ff3d\x1b[2J", Status: "Downloading \x1b]52;c;ZWNobw==\a", Current: 1, Total: 2})
	done()
	text := out.String()
	for _, bad := range []string{"\x1b]", "\a", "\u202e", "\x1b[2J"} {
		if strings.Contains(text, bad) {
			t.Errorf("terminal output holds %q raw:\n%q", bad, text)
		}
	}
	for _, want := range []string{`"Pulling from \x1b]0;owned\a\u202eproj"`, `"ff3d\x1b[2J"`, `"Downloading \x1b]52;c;ZWNobw==\a"`} {
		if !strings.Contains(text, want) {
			t.Errorf("terminal output lacks %s:\n%q", want, text)
		}
	}
}
