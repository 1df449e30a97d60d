package pak

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	// Aliased: display is this package's own quoting of member names.
	safetext "github.com/prepull/prepull/internal/display"
)

// Limits on what the reader accepts. Input beyond them is refused with an
// error wrapping ErrInvalid, whatever the archive headers claim.
const (
	// MaxConfSize is the largest .conf accepted, in bytes.
	MaxConfSize = 64 << 10
	// MaxConfLine is the longest .conf line accepted, in bytes.
	MaxConfLine = 4 << 10
	// MaxManifestSize is the largest manifest.txt accepted, in bytes.
	MaxManifestSize = 1 << 20
	// MaxInnerSize is the largest inner adapter archive accepted, in bytes
	// uncompressed.
	MaxInnerSize = 256 << 20
	// MaxInnerEntries is the most members read from an inner adapter archive.
	MaxInnerEntries = 100_000
	// MaxDirectorySize is the largest ZIP central directory read, in bytes:
	// room for some 80,000 members with names of 50 bytes, where real paks
	// hold a few thousand. It bounds the memory an archive of millions of
	// tiny members takes.
	MaxDirectorySize = 8 << 20
	// MaxNameLength is the longest archive member name accepted, in bytes.
	MaxNameLength = 4 << 10
	// maxKindLength is the longest adapter kind accepted, in bytes.
	maxKindLength = 255
)

// Conf is what a .conf file states about the adapter's container image.
type Conf struct {
	KindKey    string // KINDKEY; may be empty, the pack's manifest names the kind too
	Registry   string // REGISTRY; empty when left out (or written empty)
	Repository string // REPOSITORY without its leading slash
	Digest     string // DIGEST, "sha256:" + 64 lower-case hex
}

// The .conf keys that matter; all others are ignored.
const (
	keyKind       = "KINDKEY"
	keyRegistry   = "REGISTRY"
	keyRepository = "REPOSITORY"
	keyDigest     = "DIGEST"
)

// confLine splits line lineNo of a .conf into its key and value, trimmed;
// the key is empty for a blank line or a comment.
func confLine(line []byte, lineNo int) (key, value string, err error) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > MaxConfLine {
		return "", "", invalidf("line %d: longer than %d bytes", lineNo, MaxConfLine)
	}
	if !utf8.Valid(line) {
		return "", "", invalidf("line %d: invalid UTF-8", lineNo)
	}
	text := strings.TrimSpace(string(line))
	if text == "" || strings.HasPrefix(text, "#") {
		return "", "", nil
	}
	key, value, ok := strings.Cut(text, "=")
	if !ok {
		// The line itself is not echoed: prepull pointed at the wrong file,
		// say a password file, must not print that file's content.
		return "", "", invalidf("line %d: not a KEY=VALUE line", lineNo)
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if key == "" {
		return "", "", invalidf("line %d: no key before \"=\"", lineNo)
	}
	return key, value, nil
}

// ParseConf parses the KEY=VALUE text of an adapter .conf file and checks
// the image fields it states.
//
// Lines may end in LF or CRLF; spaces around keys and values are trimmed;
// blank lines and lines starting with # are skipped; a line splits on its
// first "=". Keys are case-sensitive and unknown keys are ignored, but each
// known key may appear only once. REPOSITORY and DIGEST are required, REGISTRY
// and KINDKEY are optional; REGISTRY is a registry host or, as SDK 0.x
// writes for Docker Hub, a Docker Hub namespace. Every error wraps ErrInvalid.
func ParseConf(data []byte) (Conf, error) {
	var c Conf
	if len(data) > MaxConfSize {
		return c, invalidf("larger than %s (limit %s)", bytesize(uint64(len(data))), limit(MaxConfSize))
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return c, invalidf("contains a NUL byte at offset %d: not a text file", i)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a BOM from Windows editors
	// seen maps each known key to the line it is on.
	seen := map[string]int{}
	vals := map[string]string{}
	for n, line := range bytes.Split(data, []byte("\n")) {
		lineNo := n + 1
		key, value, err := confLine(line, lineNo)
		switch {
		case err != nil:
			return c, err
		case key != keyKind && key != keyRegistry && key != keyRepository && key != keyDigest:
			continue // a comment, a blank line or a key prepull does not read
		}
		if first, dup := seen[key]; dup {
			return c, invalidf("line %d: %s repeated (first on line %d)", lineNo, key, first)
		}
		seen[key] = lineNo
		vals[key] = value
	}

	for _, key := range []string{keyRepository, keyDigest} {
		if _, ok := seen[key]; !ok {
			return c, invalidf("%s is missing", key)
		}
		if vals[key] == "" {
			return c, invalidf("%s is empty", key)
		}
	}
	c = Conf{
		KindKey:    vals[keyKind],
		Registry:   vals[keyRegistry],
		Repository: strings.TrimPrefix(vals[keyRepository], "/"),
		Digest:     vals[keyDigest],
	}
	if _, ok := seen[keyKind]; ok {
		if err := checkKind(c.KindKey); err != nil {
			return Conf{}, invalidf("KINDKEY %w", err)
		}
	}
	if c.Registry != "" {
		if err := validatePakRegistry(c.Registry); err != nil {
			return Conf{}, invalidf("REGISTRY %w", err)
		}
	}
	if err := checkRepository(c.Repository); err != nil {
		return Conf{}, invalidf("REPOSITORY %w", err)
	}
	if err := checkDigest(c.Digest); err != nil {
		return Conf{}, invalidf("DIGEST %w", err)
	}
	return c, nil
}

// checkKind checks an adapter kind key: letters, digits, "_", "-" and ".",
// as the SDK allows, so that it is safe in member names and messages.
func checkKind(kind string) error {
	if kind == "" {
		return errors.New("is empty")
	}
	if len(kind) > maxKindLength {
		return fmt.Errorf("is longer than %d bytes", maxKindLength)
	}
	if !utf8.ValidString(kind) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range kind {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' && r != '.' {
			return fmt.Errorf("%s has %s: only letters, digits and the characters _ - . make an adapter kind", quote(kind), quote(string(r)))
		}
	}
	if kind == "." || kind == ".." {
		return fmt.Errorf("%s is not an adapter kind", quote(kind))
	}
	return nil
}

// display returns an archive member name as safe to print: as is when it is
// plain text as safetext.Text has it, short, and holds neither a quote nor
// ": " (which would blur the member chain of an error), otherwise quoted.
func display(name string) string {
	if name != "" && len(name) <= 200 && !strings.ContainsRune(name, '"') && !strings.Contains(name, ": ") && safetext.Text(name) == name {
		return name
	}
	return quote(name)
}

// quote quotes a value from the input for an error message, shortened when
// long, so that nothing it holds can break the message.
func quote(s string) string {
	const max = 100
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q...", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}

// bytesize formats a measured byte count for messages, e.g. "4.0 GiB".
func bytesize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// limit formats a round byte limit for messages, e.g. "64 KiB".
func limit(n uint64) string {
	for _, u := range []struct {
		size uint64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}
