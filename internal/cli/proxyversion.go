package cli

import (
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/prepull/prepull/internal/remote"
)

// Without names the flags this build of prepull leaves out, comma-separated
// (e.g. "name,until-present"), and "version" for a JSON result without its
// version: set at build time with -ldflags "-X .../cli.Without=...", by the
// tests that need a prepull as an older release was, as a proxy's. Empty in
// every release.
var Without = ""

// built tells whether this build has the feature named.
func built(feature string) bool {
	return !slices.Contains(strings.Split(Without, ","), feature)
}

// optionalFlags are the flags prepull remote sends that the prepull of an
// older proxy may not know, each with what the proxy lacks without it: a
// proxy that refuses one with a usage error is asked again without it.
var optionalFlags = []optionalFlag{
	{"", "--name", true, "pak names in its logs (--name)"},
	{"keep", "--until-present", false, "the agent's verdict for --keep (keep --until-present)"},
}

type optionalFlag struct {
	command string // the command that has it: "" for the one-shot
	flag    string
	value   bool // takes a value, the next argument
	feature string
}

// optional returns the optionalFlags entry of flag in the command that
// args run.
func optional(args []string, flag string) (optionalFlag, bool) {
	command := ""
	if len(args) > 0 && args[0] == "keep" {
		command = "keep"
	}
	for _, o := range optionalFlags {
		if o.command == command && o.flag == flag {
			return o, true
		}
	}
	return optionalFlag{}, false
}

// refusedFlag matches how cobra refuses a flag it does not know.
var refusedFlag = regexp.MustCompile(`unknown flag: (--[a-z][a-z-]*)`)

// proxyCommands makes the command lines sent to proxies and remembers how
// each was made, so that one that an older prepull refused can be made
// again without the flag it did not know. Safe for concurrent use.
type proxyCommands struct {
	mu   sync.Mutex
	made map[string]proxyCommand // by command line
}

type proxyCommand struct {
	base    string   // the --remote-command, as shell text
	args    []string // prepull's arguments, optional flags included
	dropped []string // the optional flags left out
}

// line returns the command line for base and args, without the flags
// dropped.
func (c *proxyCommands) line(base string, args, dropped []string) string {
	var kept []string
	for i := 0; i < len(args); i++ {
		if !slices.Contains(dropped, args[i]) {
			kept = append(kept, args[i])
			continue
		}
		if o, _ := optional(args, args[i]); o.value {
			i++ // its value goes too
		}
	}
	line := remote.CommandLine(base, kept...)
	if c == nil {
		return line
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.made == nil {
		c.made = map[string]proxyCommand{}
	}
	c.made[line] = proxyCommand{base: base, args: args, dropped: dropped}
	return line
}

// retry is Fleet.Retry: when a proxy refused, as a usage error with no
// result, an optional flag that o's command line has, the command line
// without it.
func (c *proxyCommands) retry(o remote.Output) string {
	if c == nil || o.ExitStatus != int(ExitUsage) || len(strings.TrimSpace(string(o.Stdout))) > 0 {
		return ""
	}
	m := refusedFlag.FindStringSubmatch(o.LastStderr)
	if m == nil {
		return ""
	}
	c.mu.Lock()
	pc, ok := c.made[o.Command]
	c.mu.Unlock()
	if _, known := optional(pc.args, m[1]); !ok || !known || !slices.Contains(pc.args, m[1]) || slices.Contains(pc.dropped, m[1]) {
		return ""
	}
	return c.line(pc.base, pc.args, append(slices.Clone(pc.dropped), m[1]))
}

// lacks returns what the proxy lacks that o's command line was made without.
func (c *proxyCommands) lacks(o *remote.Output) []string {
	if c == nil || o == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var features []string
	pc := c.made[o.Command]
	for _, d := range pc.dropped {
		if f, ok := optional(pc.args, d); ok {
			features = append(features, f.feature)
		}
	}
	return features
}

// versionColumn is the VERSION cell of a host's row: its prepull's version
// in short, one word (the release, or dev and the commit), with a "*"
// when it is not this prepull's; "unknown" for a prepull too old to say.
func versionColumn(v string) string {
	short := "unknown"
	if v != "" {
		release, rest, _ := strings.Cut(v, " ")
		short = release
		// A tag names a release; a build off a checkout needs its commit.
		if _, commit, ok := strings.Cut(rest, "commit "); ok && release == "dev" {
			if i := strings.IndexAny(commit, ",)"); i >= 0 {
				commit = commit[:i]
			}
			short += "-" + commit[:min(7, len(commit))]
		}
	}
	if v != shortVersion() {
		short += "*"
	}
	return short
}
