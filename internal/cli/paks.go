package cli

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/term"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
)

// checkPakArgs rejects argument lists prepull cannot serve, before any pak
// is read: none at all, standard input named twice or while it is a
// terminal (nobody types a pak), a path that does not exist or a directory.
// Each is a usage error: nothing is tried.
func checkPakArgs(args []string, stdin io.Reader) error {
	if len(args) == 0 {
		return usageErrorf("no PAK given (see 'prepull --help')")
	}
	dash := 0
	for _, a := range args {
		if a == "-" {
			dash++
			continue
		}
		st, err := os.Stat(a)
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
			return usageErrorf("%s: no such file", display.Text(a))
		case err == nil && st.IsDir():
			return usageErrorf("%s is a directory: name the pak files in it (e.g. %s)", display.Text(a), display.Text(filepath.Join(a, "*.pak")))
		}
	}
	switch {
	case dash > 1:
		return usageErrorf("standard input (-) can be read only once")
	case dash == 1 && isTerminal(stdin):
		return usageErrorf("standard input (-) is a terminal: redirect or pipe a pak into it, e.g. prepull - < MyAdapter_1.0.0.pak")
	}
	return nil
}

// isTerminal tells whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// readSlim reads one PAK argument and returns its image and what a proxy's
// prepull, or its agent, needs of it (see pak.File.Slim).
func readSlim(arg string, stdin io.Reader) (pak.Image, []byte, error) {
	f, err := pak.OpenArg(arg, stdin)
	if err != nil {
		return pak.Image{}, nil, err
	}
	defer f.Close()
	slim, err := f.Slim()
	return f.Image, slim, err
}

// readTarget reads one PAK argument and settles its registry.
func readTarget(arg string, stdin io.Reader, defaultRegistry string) (pak.Target, error) {
	f, err := pak.OpenArg(arg, stdin)
	if err != nil {
		return pak.Target{}, err
	}
	f.Close()
	return f.Resolve(defaultRegistry)
}

// setDefaultRegistry applies --default-registry, when given, over the
// configuration's default_registry.
func setDefaultRegistry(cfg *config.Config, flag string) error {
	if flag == "" {
		return nil
	}
	if err := pak.ValidateRegistry(flag); err != nil {
		return usageErrorf("--default-registry %w", err)
	}
	cfg.DefaultRegistry = flag
	return nil
}
