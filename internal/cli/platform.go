package cli

import (
	"runtime"

	"github.com/spf13/cobra"

	"github.com/prepull/prepull/internal/config"
)

// system returns the operating system prepull runs on, as GOOS names it:
// runtime.GOOS, or the one a test sets in goos.
func (g *globals) system() string {
	if g.goos != "" {
		return g.goos
	}
	return runtime.GOOS
}

// proxyOnly makes cmd, a command of the Cloud Proxy's service (agent, keep,
// status), refuse to run with a usage error on any system but Linux, before
// it reads its arguments: it builds everywhere, so that one command line
// serves workstations and proxies, but only a proxy runs it.
func proxyOnly(g *globals, cmd *cobra.Command) *cobra.Command {
	goos := g.system()
	if goos == "linux" {
		return cmd
	}
	cmd.Short += " (Cloud Proxy, Linux only)"
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		return usageErrorf("%s runs on the Cloud Proxy (Linux), not on %s: reach proxies from this machine with prepull remote", c.CommandPath(), goos)
	}
	return cmd
}

// configUsage is the --config flag's help on goos, naming the file read
// when none is named there (getenv reads the environment) as its users
// write it.
func configUsage(goos string, getenv func(string) string) string {
	def, err := config.DefaultPath(goos, getenv)
	if err != nil {
		def = "none: " + err.Error()
	}
	env := "$" + config.EnvFile
	if goos == "windows" {
		env = "%" + config.EnvFile + "%"
	}
	return "configuration file (default " + def + ", or " + env + "; a missing default file is fine, a missing named file is an error)"
}
