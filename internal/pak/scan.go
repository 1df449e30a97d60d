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

// scanner reads an adapter archive sequentially, from a stream that cannot
// seek: the adapter.zip member of a pak, or an adapter archive on its own.
// It reads every local file header and the central directory after them,
// keeps the root .conf members that may be chosen, and skips the rest.
type scanner struct {
	br      *countingReader
	entries []entry // in the order of the stream
	names   int64   // bytes of member names held in entries
	skipped int64   // bytes inflated only to skip entries
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

// entry is what one member's local header and data said, or what the
// central directory says of one member.
type entry struct {
	offset int64
	name   string
	method uint16
	crc    uint32
	csize  uint64
	usize  uint64
}

// readInner finds the .conf in the adapter archive that r streams, in the
// order of choose. It is the one reader of adapter archives, stored or
// deflated, in a pak or on their own, with one set of rules: it reads the
// whole archive, local headers and central directory, and refuses an
// archive in which they disagree, a member the central directory does not
// list, two members of one name, and anything after the end record, so
// that any other ZIP reader (unzip, VCF Operations) sees the same members
// and the same .conf.
func readInner(r io.Reader, kind string) (conf, error) {
	s := &scanner{br: &countingReader{r: bufio.NewReaderSize(&limitReader{r: r, left: MaxInnerSize}, 64<<10)}}
	var (
		chosen   conf     // <kind>.conf
		adapter3 conf     // <kind>_adapter3.conf
		first    conf     // the first other root .conf
		names    []string // other root .conf names, for messages
		count    int      // other root .conf members
		jar      string
	)
	for {
		h, sig, err := s.next()
		if err != nil {
			return conf{}, err
		}
		if sig != sigLocal {
			if err := s.directory(sig); err != nil {
				return conf{}, err
			}
			break
		}
		jar = preferJar(jar, h.name)
		keep := false
		var slot *conf
		if isRootConf(h.name) {
			switch {
			case kind != "" && h.name == kind+".conf":
				slot = &chosen
			case kind != "" && h.name == kind+"_adapter3.conf":
				slot = &adapter3
			default:
				count++
				if len(names) < 16 {
					names = append(names, h.name)
				}
				slot = &first
			}
			keep = slot.name == "" // a second of one name is refused below
		}
		data, err := s.body(&h, keep)
		if err != nil {
			return conf{}, err
		}
		e := &s.entries[len(s.entries)-1]
		e.crc, e.csize, e.usize = h.crc, h.csize, h.usize
		if keep {
			*slot = conf{name: h.name, data: data}
		}
	}
	switch {
	case chosen.name != "":
		return chosen, nil
	case adapter3.name != "":
		return adapter3, nil
	}
	if _, err := choose(kind, names, count); err != nil {
		return conf{jar: jar}, err
	}
	return first, nil
}

// next reads the next record's signature and, for a local file header, the
// header. The offset of every local header is recorded.
func (s *scanner) next() (h localHeader, sig uint32, err error) {
	var buf [30]byte
	off := s.br.n
	if _, err := io.ReadFull(s.br, buf[:4]); err != nil {
		return h, 0, s.streamError(err, "ends before its central directory")
	}
	switch sig = binary.LittleEndian.Uint32(buf[:4]); sig {
	case sigLocal:
	case sigCentral, sigEnd, sigEnd64:
		return h, sig, nil
	default:
		return h, 0, invalidf("no ZIP header at offset %d (after %d entries)", off, len(s.entries))
	}
	if len(s.entries) >= MaxInnerEntries {
		return h, 0, invalidf("more than %d entries", MaxInnerEntries)
	}
	if _, err := io.ReadFull(s.br, buf[4:]); err != nil {
		return h, 0, s.streamError(err, "ends inside a ZIP header")
	}
	le := binary.LittleEndian
	h.flags = le.Uint16(buf[6:])
	h.method = le.Uint16(buf[8:])
	h.crc = le.Uint32(buf[14:])
	h.csize = uint64(le.Uint32(buf[18:]))
	h.usize = uint64(le.Uint32(buf[22:]))
	nameLen, extraLen := int(le.Uint16(buf[26:])), int(le.Uint16(buf[28:]))
	if nameLen > MaxNameLength {
		return h, 0, invalidf("entry %d: name longer than %d bytes", len(s.entries)+1, MaxNameLength)
	}
	field := make([]byte, nameLen+extraLen)
	if _, err := io.ReadFull(s.br, field); err != nil {
		return h, 0, s.streamError(err, "ends inside a ZIP header")
	}
	h.name = string(field[:nameLen])
	h.parseExtra(field[nameLen:])
	if s.names += int64(nameLen); s.names > MaxDirectorySize {
		return h, 0, invalidf("member names larger than %s in all: more entries than a pak holds", limit(MaxDirectorySize))
	}
	s.entries = append(s.entries, entry{offset: off, name: h.name, method: h.method})
	return h, sigLocal, nil
}

// parseExtra reads the sizes from a zip64 extra field, where the 32-bit
// fields say so, as archive/zip does.
func (h *localHeader) parseExtra(extra []byte) {
	field, ok := zip64Extra(extra)
	if !ok {
		return
	}
	h.zip64 = true
	field = take64(field, &h.usize)
	take64(field, &h.csize)
}

// zip64Extra returns the data of the zip64 field (ID 1) among extra fields.
func zip64Extra(extra []byte) ([]byte, bool) {
	le := binary.LittleEndian
	for len(extra) >= 4 {
		id, n := le.Uint16(extra), int(le.Uint16(extra[2:]))
		extra = extra[4:]
		if n > len(extra) {
			break
		}
		if id == 0x0001 {
			return extra[:n], true
		}
		extra = extra[n:]
	}
	return nil, false
}

// take64 reads *v from the zip64 field f when its 32-bit field is all ones,
// as the zip64 field holds only those, and returns the rest of f.
func take64(f []byte, v *uint64) []byte {
	if *v == 0xffffffff && len(f) >= 8 {
		*v = binary.LittleEndian.Uint64(f)
		return f[8:]
	}
	return f
}

// body reads an entry's data and returns it when keep is set (a .conf,
// within MaxConfSize), or skips it. It leaves the stream at the next header.
func (s *scanner) body(h *localHeader, keep bool) ([]byte, error) {
	var data []byte
	err := checkEntry(h, keep)
	switch {
	case err != nil:
	case h.flags&flagDescriptor != 0:
		data, err = s.inflateToDescriptor(h, keep)
	case !keep:
		if _, err = io.CopyN(io.Discard, s.br, int64(h.csize)); err != nil {
			err = s.streamError(err, "ends inside this entry")
		}
	default:
		data, err = s.read(h)
	}
	if err != nil {
		return nil, &Error{Members: []string{h.name}, Err: err}
	}
	return data, nil
}

// checkEntry refuses an entry that cannot be read (keep: kept) as its
// local header describes it.
func checkEntry(h *localHeader, keep bool) error {
	descriptor := h.flags&flagDescriptor != 0
	switch {
	case keep && h.flags&flagEncrypted != 0:
		return invalidf("is encrypted")
	case keep && h.method != zip.Store && h.method != zip.Deflate:
		return invalidf("compressed with unsupported method %d", h.method)
	case keep && !descriptor && h.usize > MaxConfSize:
		return invalidf("claims %s uncompressed (limit %s)", bytesize(h.usize), limit(MaxConfSize))
	case descriptor && h.method == zip.Store:
		return invalidf("stored with a data descriptor: unsupported, its end cannot be found without inflating")
	case descriptor && (h.method != zip.Deflate || h.flags&flagEncrypted != 0):
		return invalidf("has a data descriptor and method %d: unsupported, its end cannot be found", h.method)
	case !descriptor && h.csize > MaxInnerSize:
		return invalidf("claims %s compressed (limit %s)", bytesize(h.csize), limit(MaxInnerSize))
	}
	return nil
}

// inflateToDescriptor reads a deflated entry whose sizes follow it in a
// data descriptor: the deflate stream's end is the data's end.
func (s *scanner) inflateToDescriptor(h *localHeader, keep bool) ([]byte, error) {
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
		return nil, s.inflateError(err, keep)
	}
	csize := uint64(s.br.n - start)
	if err := s.descriptor(h, out.crc, csize, uint64(out.n)); err != nil {
		return nil, err
	}
	h.crc, h.csize, h.usize = out.crc, csize, uint64(out.n) // what the central directory must say
	return out.buf, nil
}

// read reads an entry kept whose sizes its local header gives, and checks
// them and its checksum.
func (s *scanner) read(h *localHeader) ([]byte, error) {
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
		return nil, s.inflateError(err, true)
	}
	if lr.N > 0 { // deflate data ended before its claimed compressed size
		if _, err := io.CopyN(io.Discard, lr, lr.N); err != nil {
			return nil, s.streamError(err, "ends inside this entry")
		}
	}
	switch {
	case h.method == zip.Store && uint64(out.n) != h.csize:
		return nil, s.streamError(io.ErrUnexpectedEOF, "ends inside this entry")
	case uint64(out.n) != h.usize:
		return nil, invalidf("holds %d bytes, not the %d its header claims", out.n, h.usize)
	case out.crc != h.crc:
		return nil, invalidf("checksum error: damaged")
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
