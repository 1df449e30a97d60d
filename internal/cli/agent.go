package cli

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/prepull/prepull/agent"
)

func newAgentCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "agent",
		Short: "Run as the Cloud Proxy service: pull the image of every pak dropped into watch_dir, and keep it present",
		Long: `prepull agent watches watch_dir (default /var/lib/prepull/inbox) for .pak
files. Once a pak stopped changing for the settle time, its image is pulled
with this proxy's registry credentials; the pak then moves to done/, or to
failed/ with NAME.pak.error beside it when it names no pullable image. Every
verify_interval the agent checks that its images are still present and pulls
again what vanished. With conf_dirs it also keeps the image of each adapter
.conf in those folders present, reading them only; with keep_images N it
removes an image it pulled once nothing names it and N newer digests of its
repository are kept. State is kept in state_dir/state.json; see prepull status.

SIGTERM or SIGINT stops it (exit 0); SIGHUP reloads the configuration.
It refuses to start when watch_dir or state_dir can be written by anyone but
its own user (exit 2).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			log := g.logger(cfg)
			defer log.Sync()
			eng, err := g.openEngine(g.engineHost(cfg))
			if err != nil {
				return err
			}
			defer eng.Close()
			a, err := agent.New(agent.Options{ConfigFile: g.configFile, Config: cfg, Engine: eng, Log: log, Version: agentVersion()})
			if err != nil {
				return err
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			ctx := cmd.Context()
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						a.Reload()
					}
				}
			}()
			return a.Run(ctx)
		},
	}
}

func newStatusCommand(g *globals) *cobra.Command {
	var wide bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what the agent did with each pak and image, and how fresh that is (the agent need not run)",
		Long: `prepull status reads state_dir/state.json and state_dir/agent.lock and prints
first how fresh the rest is, then each pak and image.

The agent line says:
  running    an agent holds the lock now (its pid, and since when)
  degraded   an agent holds the lock but cannot work normally: it cannot save
             its state (a full or read-only disk: it moves no pak and keeps
             the images it knows present, and resumes by itself), or
             watch_dir is unsafe (it takes no new pak until it is safe)
  stopped    no agent holds the lock: the rest is what the last agent saved
             (a pull it was doing is shown as waiting)
"saved" is when the state was last saved; "engine" whether Docker Engine
answered at the agent's last check, and when: while it is unreachable,
image statuses are as last seen.

With keep_images, RELEASED lists the images the agent pulled that nothing
names any more (and why each is still there), REMOVED the last removals:
removed, untagged (the image stays for its other tags) or gone.

Paks and images are waiting (for their turn, or for the next try after a
transient failure), pulling, present, failed (for a reason that waiting will
not fix, such as rejected credentials; still retried slowly, and at once on
reload) or, for paks, invalid (names no pullable image: moved to failed/).
LAST ERROR says why in a few words, the cause first ("credentials
rejected: ...", "manifest unknown: ...", "no linux/amd64 variant: ...");
--wide shows the whole error text, as --json's "last_error" does
("last_cause" has the few words). A pak whose image has no variant for the
proxy's platform keeps its reference, and says so.
With --json it prints the state itself, digests and references included,
and the agent's status under "agent".

Exit status: 0 the status was shown; 1 no agent has run with this
state_dir (no state.json and no agent.lock: check state_dir and --config);
2 the configuration is invalid.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			r, err := agent.ReadReport(cfg.StateDir)
			if err != nil {
				return err
			}
			format := agent.StatusTable
			switch {
			case g.json:
				format = agent.StatusJSON
			case wide:
				format = agent.StatusWide
			}
			return agent.WriteStatus(g.stdout, r, cfg.StateDir, format)
		},
	}
	cmd.Flags().BoolVar(&wide, "wide", false, "show whole error texts in LAST ERROR (--json always has them)")
	return cmd
}
