package cli

import (
	"fmt"
	"strings"
)

// ExitCode is a process exit status with a documented meaning.
type ExitCode int

// The exit codes prepull documents; exitCodes says what each means.
const (
	ExitOK       ExitCode = 0
	ExitFailure  ExitCode = 1
	ExitUsage    ExitCode = 2
	ExitBadPak   ExitCode = 3
	ExitAuth     ExitCode = 4
	ExitNotFound ExitCode = 5
	ExitEngine   ExitCode = 6
	ExitPlatform ExitCode = 7
	ExitRegistry ExitCode = 8

	// A run ended by a signal exits as shells report it: 128 plus the
	// signal's number.
	ExitInterrupted ExitCode = 130 // SIGINT, Ctrl-C
	ExitTerminated  ExitCode = 143 // SIGTERM
)

// exitCodeRow says what one exit code means.
type exitCodeRow struct {
	code ExitCode
	// means is the README's cell; detail is what --help and
	// docs/exit-codes.md add in parentheses, or "". onWindows, if not "",
	// is what --help says for means on Windows, which has no signals.
	means, detail, onWindows string
}

// meaning is what the code means on goos.
func (e exitCodeRow) meaning(goos string) string {
	if goos == "windows" && e.onWindows != "" {
		return e.onWindows
	}
	return e.means
}

// exitCodes is the one table of what each exit code means, in order.
// --help, docs/exit-codes.md and the README's table are made from it
// (TestDocs checks them; `go test ./internal/cli -run TestDocs -update`
// writes them again), so a new code is its constant and one row here.
var exitCodes = []exitCodeRow{
	{ExitOK, "every image is present", "", ""},
	{ExitFailure, "any other failure", "", ""},
	{ExitUsage, "usage or configuration error", "a `PAK` path that is missing or a directory, `-` on a terminal, included", ""},
	{ExitBadPak, "the pak does not name a pullable image", "not a pak, no `.conf`, bad or missing `DIGEST`, no `REGISTRY` and no `default_registry`", ""},
	{ExitAuth, "the registry rejected the credentials", "", ""},
	{ExitNotFound, "the registry does not have that repository or digest", "", ""},
	{ExitEngine, "Docker Engine unreachable", "", ""},
	{ExitPlatform, "the image cannot run on this proxy: it has no variant for the Docker Engine's platform", "typically `linux/arm64` only, built on an Apple Silicon Mac: rebuild it for `linux/amd64`", ""},
	{ExitRegistry, "registry unreachable: the Docker Engine could not connect to it", "its name does not resolve, the connection is refused or reset, no route, a TLS handshake timeout; the one-shot and `mirror` give up after 8 attempts in a row, about a minute, and at once when the name does not resolve; the engine's proxy settings apply", ""},
	{ExitInterrupted, "ended by Ctrl-C, SIGINT", "a pak that was done keeps its status, the others are reported `interrupted`; a second Ctrl-C ends prepull at once", "ended by Ctrl-C or Ctrl-Break"},
	{ExitTerminated, "ended by SIGTERM", "as for Ctrl-C", "ended by closing its console window, logging off or shutting down"},
}

// exitMax is the highest code a failure reports, signals aside: a proxy's
// higher code means nothing.
var exitMax = func() ExitCode {
	var highest ExitCode
	for _, e := range exitCodes {
		if e.code < 128 && e.code > highest {
			highest = e.code
		}
	}
	return highest
}()

// exitCodesHelp is the exit codes' section of --help on goos.
func exitCodesHelp(goos string) string {
	var b strings.Builder
	b.WriteString("Exit codes:\n")
	for _, e := range exitCodes {
		text := e.meaning(goos)
		if e.detail != "" {
			text += " (" + e.detail + ")"
		}
		lines := wrap(strings.ReplaceAll(text, "`", ""), 72)
		fmt.Fprintf(&b, "  %-3d  %s\n", e.code, strings.Join(lines, "\n       "))
	}
	b.WriteString("With several paks every pak is still tried, and the highest code wins.")
	return b.String()
}

// exitCodesMarkdown is the Markdown table of the exit codes: with each
// code's detail for docs/exit-codes.md, without for the README.
func exitCodesMarkdown(detail bool) string {
	var b strings.Builder
	b.WriteString("| code | meaning |\n| --- | --- |\n")
	for _, e := range exitCodes {
		text := e.means
		if detail && e.detail != "" {
			text += " (" + e.detail + ")"
		}
		fmt.Fprintf(&b, "| %d | %s |\n", e.code, text)
	}
	return b.String()
}

// wrap breaks text into lines of at most width bytes at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}
