package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/prepull/prepull/internal/display"
)

// buildInfo is what `prepull version --json` prints: a stable shape that
// scripts read. Empty fields are unknown (a build without VCS stamping).
type buildInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit,omitempty"`
	CommitDate string `json:"commit_date,omitempty"`
	Modified   bool   `json:"modified,omitempty"`
	Go         string `json:"go,omitempty"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// thisBuild is the buildInfo of the running binary.
func thisBuild() buildInfo {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = nil
	}
	return buildOf(Version, Commit, CommitDate, info)
}

// buildOf is thisBuild for the version, commit and commit date set at build
// time (or "") and the build information Go recorded (or nil): what is set
// at build time wins, then what Go recorded (module version, vcs.revision,
// vcs.time), then "dev" for the version.
func buildOf(version, commit, date string, info *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: versionNumber(version, info), Commit: commit, CommitDate: date,
		OS: runtime.GOOS, Arch: runtime.GOARCH}
	if info == nil {
		return b
	}
	b.Go = info.GoVersion
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && b.Commit == "":
			b.Commit = s.Value
		case s.Key == "vcs.time" && b.CommitDate == "":
			b.CommitDate = s.Value
		case s.Key == "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// short is the version and what identifies the build, without the system
// it runs on: what a one-shot reports, and prepull remote compares across
// systems, e.g. "1.2.0 (commit 0123456789ab, 2026-12-05T09:18:07Z, go1.26.8)".
func (b buildInfo) short() string {
	var extra []string
	if b.Commit != "" {
		extra = append(extra, "commit "+b.Commit[:min(len(b.Commit), 12)])
	}
	if b.CommitDate != "" {
		extra = append(extra, b.CommitDate)
	}
	if b.Modified {
		extra = append(extra, "modified")
	}
	if b.Go != "" {
		extra = append(extra, b.Go)
	}
	if len(extra) == 0 {
		return b.Version
	}
	return fmt.Sprintf("%s (%s)", b.Version, strings.Join(extra, ", "))
}

// line is what `prepull version` and `prepull --version` print.
func (b buildInfo) line() string {
	return "prepull " + b.short() + " " + b.OS + "/" + b.Arch
}

// versionLine is thisBuild's line.
func versionLine() string { return thisBuild().line() }

// agentVersion is the version the agent publishes in prepull_build_info.
func agentVersion() string { return thisBuild().Version }

// versionNumber is the version alone: v when set at build time, else the
// module version Go recorded, else "dev".
func versionNumber(v string, info *debug.BuildInfo) string {
	if v == "" && info != nil && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	if v == "" {
		v = "dev"
	}
	return v
}

func newVersionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print prepull's version",
		Long: `Print prepull's version, as --version does: the version, commit and commit date set at build time (scripts/release.sh, install.sh), else Go's build information (module version, commit), then the Go release and the system it was built for. (A pak file named version is ./version.)

--json prints {"version", "commit", "commit_date", "modified", "go", "os", "arch"}; an unknown field is left out.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.json {
				return display.JSON(g.stdout, thisBuild())
			}
			_, err := fmt.Fprintln(g.stdout, versionLine())
			return err
		},
	}
}

// shortVersion is the version a one-shot's JSON result reports, for prepull
// remote to compare with its own: the version and build, not the system.
func shortVersion() string {
	if !built("version") {
		return ""
	}
	return thisBuild().short()
}
