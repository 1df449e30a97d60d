package cli

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// versionLine is what `prepull version` and `prepull --version` print: the
// version set at build time, else the module version Go recorded (a tag, or
// a pseudo-version from the checkout's commit), else "dev"; then the commit,
// whether the tree was modified, and the Go release.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = nil
	}
	return versionOf(Version, info)
}

// versionOf is versionLine for a version set at build time (or "") and the
// build information Go recorded (or nil).
func versionOf(v string, info *debug.BuildInfo) string {
	ok := info != nil
	v = versionNumber(v, info)
	var extra []string
	if ok {
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			extra = append(extra, "commit "+rev[:min(len(rev), 12)])
		}
		if settings["vcs.modified"] == "true" {
			extra = append(extra, "modified")
		}
		extra = append(extra, info.GoVersion)
	}
	if len(extra) == 0 {
		return "prepull " + v
	}
	return fmt.Sprintf("prepull %s (%s)", v, strings.Join(extra, ", "))
}

// agentVersion is the version the agent publishes in prepull_build_info.
func agentVersion() string {
	info, _ := debug.ReadBuildInfo()
	return versionNumber(Version, info)
}

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
		Long:  "Print prepull's version, as --version does: the one set at build time, else Go's build information (module version, commit), and the Go release. (A pak file named version is ./version.)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(g.stdout, versionLine())
			return err
		},
	}
}

// shortVersion is the version a one-shot's JSON result reports, for prepull
// remote to compare with its own: versionLine without "prepull ".
func shortVersion() string {
	if !built("version") {
		return ""
	}
	return strings.TrimPrefix(versionLine(), "prepull ")
}
