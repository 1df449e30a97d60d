package pak

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

// ZIP record signatures.
const (
	sigLocal      = 0x04034b50
	sigCentral    = 0x02014b50
	sigEnd        = 0x06054b50
	sigEnd64      = 0x06064b50
	sigDescriptor = 0x08074b50
)

// Local header flag bits.
const (
	flagEncrypted  = 0x1
	flagDescriptor = 0x8
)

// maxSkipInflate bounds how much is inflated, in all, only to find where
// entries with a data descriptor end. A variable for tests.
var maxSkipInflate int64 = 256 << 20

// errTooLarge is returned by the readers and writers that enforce the limits.
var errTooLarge = errors.New("limit exceeded")

// scanner reads an adapter archive sequentially by its local file headers,
// from a stream that cannot seek: the inflated adapter.zip member of a pak.
// It reads only root .conf members and skips everything else.
type scanner struct {
	br      *countingReader
	entries int
	skipped int64 // bytes inflated only to skip entries
}

// localHeader is a ZIP local file header.
type localHeader struct {
	name   string
	flags  uint16
	method uint16
	crc    uint32
	csize  uint64
	usize  uint64
	zip64  bool
}

// scan finds the .conf in the adapter archive that r streams, in the order
// of choose, and stops at <kind>.conf, which the SDK writes first.
func scan(r io.Reader, kind string) (conf, error) {
	s := &scanner{br: &countingReader{r: bufio.NewReaderSize(&limitReader{r: r, left: MaxInnerSize}, 64<<10)}}
	var (
		adapter3 conf     // <kind>_adapter3.conf
		first    conf     // the first other root .conf
		names    []string // other root .conf names, for messages
		count    int      // other root .conf members
		jar      string
	)
	for {
		h, more, err := s.next()
		if err != nil {
			return conf{}, err
		}
		if !more {
			break
		}
		jar = preferJar(jar, h.name)
		if !isRootConf(h.name) {
			if _, err := s.body(&h, false); err != nil {
				return conf{}, err
			}
			continue
		}
		switch {
		case kind != "" && h.name == kind+".conf":
			data, err := s.body(&h, true)
			if err != nil {
				return conf{}, err
			}
			return conf{name: h.name, data: data}, nil
		case kind != "" && h.name == kind+"_adapter3.conf":
			if adapter3.name != "" {
				return conf{}, invalidf("two members named %s", quote(h.name))
			}
			data, err := s.body(&h, true)
			if err != nil {
				return conf{}, err
			}
			adapter3 = conf{name: h.name, data: data}
		default:
			count++
			if len(names) < 16 {
				names = append(names, h.name)
			}
			data, err := s.body(&h, count == 1)
			if err != nil {
				return conf{}, err
			}
			if count == 1 {
				first = conf{name: h.name, data: data}
			}
		}
	}
	if adapter3.name != "" {
		return adapter3, nil
	}
	if _, err := choose(kind, names, count); err != nil {
		return conf{jar: jar}, err
	}
	return first, nil
}

// next reads the next local file header; more is false at the central
// directory, which ends the entries.
func (s *scanner) next() (h localHeader, more bool, err error) {
	var buf [30]byte
	if _, err := io.ReadFull(s.br, buf[:4]); err != nil {
		return h, false, s.streamError(err, "ends before its central directory")
	}
	switch binary.LittleEndian.Uint32(buf[:4]) {
	case sigLocal:
	case sigCentral, sigEnd, sigEnd64:
		return h, false, nil
	default:
		return h, false, invalidf("no ZIP header at offset %d (after %d entries)", s.br.n-4, s.entries)
	}
	s.entries++
	if s.entries > MaxInnerEntries {
		return h, false, invalidf("more than %d entries", MaxInnerEntries)
	}
	if _, err := io.ReadFull(s.br, buf[4:]); err != nil {
		return h, false, s.streamError(err, "ends inside a ZIP header")
	}
	le := binary.LittleEndian
	h.flags = le.Uint16(buf[6:])
	h.method = le.Uint16(buf[8:])
	h.crc = le.Uint32(buf[14:])
	h.csize = uint64(le.Uint32(buf[18:]))
	h.usize = uint64(le.Uint32(buf[22:]))
	nameLen, extraLen := int(le.Uint16(buf[26:])), int(le.Uint16(buf[28:]))
	if nameLen > MaxNameLength {
		return h, false, invalidf("entry %d: name longer than %d bytes", s.entries, MaxNameLength)
	}
	field := make([]byte, nameLen+extraLen)
	if _, err := io.ReadFull(s.br, field); err != nil {
		return h, false, s.streamError(err, "ends inside a ZIP header")
	}
	h.name = string(field[:nameLen])
	h.parseExtra(field[nameLen:])
	return h, true, nil
}

// parseExtra reads the sizes from a zip64 extra field, where the 32-bit
// fields say so, as archive/zip does.
func (h *localHeader) parseExtra(extra []byte) {
	le := binary.LittleEndian
	for len(extra) >= 4 {
		id, n := le.Uint16(extra), int(le.Uint16(extra[2:]))
		extra = extra[4:]
		if n > len(extra) {
			return
		}
		field := extra[:n]
		extra = extra[n:]
		if id != 0x0001 {
			continue
		}
		h.zip64 = true
		if h.usize == 0xffffffff && len(field) >= 8 {
			h.usize = le.Uint64(field)
			field = field[8:]
		}
		if h.csize == 0xffffffff && len(field) >= 8 {
			h.csize = le.Uint64(field)
		}
	}
}

// body reads an entry's data and returns it when keep is set (a .conf,
// within MaxConfSize), or skips it. It leaves the stream at the next header.
func (s *scanner) body(h *localHeader, keep bool) ([]byte, error) {
	entry := []string{h.name}
	fail := func(err error) ([]byte, error) { return nil, &Error{Members: entry, Err: err} }
	descriptor := h.flags&flagDescriptor != 0
	switch {
	case keep && h.flags&flagEncrypted != 0:
		return fail(invalidf("is encrypted"))
	case keep && h.method != zip.Store && h.method != zip.Deflate:
		return fail(invalidf("compressed with unsupported method %d", h.method))
	case keep && !descriptor && h.usize > MaxConfSize:
		return fail(invalidf("claims %s uncompressed (limit %s)", bytesize(h.usize), limit(MaxConfSize)))
	case descriptor && h.method == zip.Store:
		return fail(invalidf("stored with a data descriptor: unsupported, its end cannot be found without inflating"))
	case descriptor && (h.method != zip.Deflate || h.flags&flagEncrypted != 0):
		return fail(invalidf("has a data descriptor and method %d: unsupported, its end cannot be found", h.method))
	case !descriptor && h.csize > MaxInnerSize:
		return fail(invalidf("claims %s compressed (limit %s)", bytesize(h.csize), limit(MaxInnerSize)))
	}

	if descriptor {
		out := &sink{keep: keep, max: MaxConfSize}
		if !keep {
			out.max = maxSkipInflate - s.skipped
		}
		start := s.br.n
		fr := flate.NewReader(s.br) // s.br is a ByteReader: flate reads no further than the stream's end
		_, err := io.Copy(out, fr)
		fr.Close()
		if !keep {
			s.skipped += out.n
		}
		if err != nil {
			return fail(s.inflateError(err, keep))
		}
		if err := s.descriptor(h, out.crc, uint64(s.br.n-start), uint64(out.n)); err != nil {
			return fail(err)
		}
		return out.buf, nil
	}

	if !keep {
		if _, err := io.CopyN(io.Discard, s.br, int64(h.csize)); err != nil {
			return fail(s.streamError(err, "ends inside this entry"))
		}
		return nil, nil
	}
	lr := &io.LimitedReader{R: s.br, N: int64(h.csize)}
	out := &sink{keep: true, max: MaxConfSize}
	var err error
	if h.method == zip.Store {
		_, err = io.Copy(out, lr)
	} else {
		fr := flate.NewReader(lr)
		_, err = io.Copy(out, fr)
		fr.Close()
	}
	if err != nil {
		return fail(s.inflateError(err, true))
	}
	if lr.N > 0 { // deflate data ended before its claimed compressed size
		if _, err := io.CopyN(io.Discard, lr, lr.N); err != nil {
			return fail(s.streamError(err, "ends inside this entry"))
		}
	}
	switch {
	case h.method == zip.Store && uint64(out.n) != h.csize:
		return fail(s.streamError(io.ErrUnexpectedEOF, "ends inside this entry"))
	case uint64(out.n) != h.usize:
		return fail(invalidf("holds %d bytes, not the %d its header claims", out.n, h.usize))
	case out.crc != h.crc:
		return fail(invalidf("checksum error: damaged"))
	}
	return out.buf, nil
}

// descriptor reads the data descriptor that follows an entry, with or without
// its signature, with 64-bit sizes when the local header had a zip64 field,
// and checks it against what was read.
func (s *scanner) descriptor(h *localHeader, crc uint32, csize, usize uint64) error {
	le := binary.LittleEndian
	peek, err := s.br.r.Peek(8)
	if len(peek) >= 4 && le.Uint32(peek) == sigDescriptor {
		// A CRC equal to the signature is told apart by what follows.
		if crc != sigDescriptor || (len(peek) == 8 && le.Uint32(peek[4:]) == crc) {
			s.br.n += 4
			s.br.r.Discard(4)
		}
	} else if len(peek) < 4 {
		return s.streamError(err, "ends inside a data descriptor")
	}
	buf := make([]byte, 12, 20)
	if h.zip64 {
		buf = buf[:20]
	}
	if _, err := io.ReadFull(s.br, buf); err != nil {
		return s.streamError(err, "ends inside a data descriptor")
	}
	dcrc, dc, du := le.Uint32(buf), uint64(le.Uint32(buf[4:])), uint64(le.Uint32(buf[8:]))
	if h.zip64 {
		dc, du = le.Uint64(buf[4:]), le.Uint64(buf[12:])
	}
	if dcrc != crc || dc != csize || du != usize {
		return invalidf("data descriptor does not match the data (damaged)")
	}
	return nil
}

// inflateError explains an error met while inflating an entry.
func (s *scanner) inflateError(err error, keep bool) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, errTooLarge) && keep:
		return invalidf("larger than the %s limit", limit(MaxConfSize))
	case errors.Is(err, errTooLarge):
		return invalidf("more than the %s limit inflated only to skip entries with data descriptors", limit(uint64(maxSkipInflate)))
	case errors.As(err, &corrupt):
		return invalidf("damaged compressed data: %w", err)
	}
	return s.streamError(err, "ends inside this entry")
}

// streamError explains an error from the inflated adapter archive stream.
// where says where a premature end fell. The error is about the whole
// archive, so it carries no member name of its own when it is a stream
// failure; entries' callers add theirs.
func (s *scanner) streamError(err error, where string) error {
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return invalidf("truncated: %s", where)
	case errors.Is(err, errTooLarge):
		return invalidf("larger than the %s limit uncompressed", limit(MaxInnerSize))
	case errors.Is(err, zip.ErrFormat):
		return invalidf("damaged or larger than its header claims: %w", err)
	case errors.Is(err, zip.ErrChecksum):
		return invalidf("damaged: %w", err)
	}
	var corrupt flate.CorruptInputError
	if errors.As(err, &corrupt) {
		return invalidf("damaged compressed data: %w", err)
	}
	return invalidf("cannot read: %w", err)
}

// countingReader is a buffered reader that counts the bytes taken from it.
// It is an io.ByteReader, so that flate reads exactly up to a stream's end.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// limitReader reads at most left bytes and then fails with errTooLarge if
// more data follows.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// sink takes inflated data, checksums and counts it, keeps it if asked, and
// fails with errTooLarge beyond max bytes.
type sink struct {
	keep bool
	max  int64
	n    int64
	crc  uint32
	buf  []byte
}

func (w *sink) Write(p []byte) (int, error) {
	if w.n+int64(len(p)) > w.max {
		return 0, errTooLarge
	}
	w.n += int64(len(p))
	w.crc = crc32.Update(w.crc, crc32.IEEETable, p)
	if w.keep {
		w.buf = append(w.buf, p...)
	}
	return len(p), nil
}
