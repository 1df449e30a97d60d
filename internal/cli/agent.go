package cli

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/prepull/prepull/agent"
	"github.com/prepull/prepull/internal/engine"
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
again what vanished. State is kept in state_dir/state.json; see prepull status.

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
			eng, err := engine.NewDocker(g.engineHost(cfg))
			if err != nil {
				return fmt.Errorf("%w: %v", engine.ErrUnreachable, err)
			}
			defer eng.Close()
			a, err := agent.New(agent.Options{ConfigFile: g.configFile, Config: cfg, Engine: eng, Log: log})
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
	return &cobra.Command{
		Use:   "status",
		Short: "Show what the agent did with each pak and image (the agent need not run)",
		Long: `prepull status reads state_dir/state.json and prints each pak and image with
its status (waiting, pulling, present, failed, invalid), attempts, last error
and when. With --json it prints the state itself, digests and references
included.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			s, err := agent.ReadState(cfg.StateDir)
			if err != nil {
				return err
			}
			return agent.WriteStatus(g.stdout, s, g.json)
		},
	}
}
