package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// pakExtensions are the files a PAK argument completes to.
var pakExtensions = []string{"pak", "zip", "conf"}

// completePaks completes PAK arguments to .pak files (and adapter.zip or
// .conf files, which prepull reads too), and folders to look into.
func completePaks(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return pakExtensions, cobra.ShellCompDirectiveFilterFileExt
}

// completeRoot completes prepull's first argument: to the commands whose
// names start with it (cobra lists them), else to pak files as
// completePaks does. A shell completes either names or files, not both.
func completeRoot(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() && strings.HasPrefix(c.Name(), toComplete) {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
		}
	}
	return completePaks(cmd, args, toComplete)
}

// withoutFlags keeps the global flags named off cmd: its --help does not
// list them, and giving one is a usage error that says it does not apply.
func withoutFlags(cmd *cobra.Command, names ...string) {
	help := cmd.HelpFunc()
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
		if c == cmd {
			for _, n := range names {
				if f := c.InheritedFlags().Lookup(n); f != nil {
					f.Hidden = true
				}
			}
		}
		help(c, args)
	})
	run := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		var given *pflag.Flag
		for _, n := range names {
			if f := c.Flags().Lookup(n); f != nil && f.Changed && given == nil {
				given = f
			}
		}
		if given != nil {
			return usageErrorf("--%s does not apply to %s (see '%s --help')", given.Name, c.CommandPath(), c.CommandPath())
		}
		if run != nil {
			return run(c, args)
		}
		return nil
	}
}

// newPullCommand is prepull pull, the one-shot under the name Docker's
// habit gives it: prepull pull X.pak does what prepull X.pak does.
func newPullCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pull [flags] PAK...",
		Short: "Pull the image of each pak: the same as prepull PAK...",
		Long: fmt.Sprintf(`prepull pull PAK... is the one-shot, prepull PAK..., under the name the
docker CLI's habit gives it; it takes the same flags. (A pak file named pull
is ./pull.)

%s`, exitCodesHelp(g.system())),
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completePaks,
	}
	addPullFlags(cmd, g)
	return cmd
}
