package pak

import (
	"fmt"
	"io"
	"os"
	"syscall"

	safetext "github.com/prepull/prepull/internal/display"
)

// MaxStdin bounds a pak read from standard input.
const MaxStdin = 8 << 30

// File is a .pak, an adapter.zip or a .conf opened and read: the image it
// names, and its bytes, which stay open for what else is read of them
// (Slim) until Close.
type File struct {
	Image
	f    *os.File
	size int64
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// Slim returns what a Cloud Proxy needs of the file to pull its image: for
// a pak or an adapter archive, a small adapter archive of the adapter .conf
// and the manifest.txt, copied byte for byte; for a .conf, the file itself.
// Read finds in it the same image as in the file (see slim).
func (f *File) Slim() ([]byte, error) { return slim(f.Image, f.f, f.size) }

// OpenFile reads the file at path, which may be a .pak, an adapter.zip or a
// .conf file, told apart by content rather than by name, and keeps it open.
// Every error is an *Error naming path, and wraps ErrInvalid. A path that
// names a FIFO or a device is refused without blocking: the file is opened
// non-blocking, so that opening a FIFO no writer holds returns at once
// instead of hanging.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, invalid(path, nil, "cannot open: %w", safetext.WithoutPath(err))
	}
	st, err := f.Stat()
	switch {
	case err != nil:
		err = invalid(path, nil, "cannot stat: %w", err)
	case st.IsDir():
		err = invalid(path, nil, "is a directory")
	case !st.Mode().IsRegular():
		err = invalid(path, nil, "not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return read(path, f, st.Size())
}

// OpenArg opens a PAK argument of the command line: a path (see OpenFile),
// or "-" for standard input, which is copied to a temporary file, unlinked
// at once: a zip needs random access, nothing is left behind, and memory
// stays small.
func OpenArg(arg string, stdin io.Reader) (*File, error) {
	if arg != "-" {
		return OpenFile(arg)
	}
	f, err := os.CreateTemp("", "prepull-stdin-*.pak")
	if err != nil {
		return nil, fmt.Errorf("-: spooling standard input: %w", err)
	}
	os.Remove(f.Name())
	n, err := io.Copy(f, io.LimitReader(stdin, MaxStdin+1))
	switch {
	case err != nil:
		err = fmt.Errorf("-: reading standard input: %w", err)
	case n > MaxStdin:
		err = &Error{File: "-", Err: fmt.Errorf("standard input is larger than %d GiB: %w", MaxStdin>>30, ErrInvalid)}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return read("-", f, n)
}

// read reads the file f of size bytes as name, keeping it open unless it
// fails.
func read(name string, f *os.File, size int64) (*File, error) {
	img, err := Read(name, f, size)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{Image: img, f: f, size: size}, nil
}
