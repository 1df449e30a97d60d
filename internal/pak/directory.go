package pak

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// More ZIP record signatures.
const (
	sigLocator64 = 0x07064b50 // zip64 end of central directory locator
)

// directory reads the central directory that follows the entries, its end
// records and nothing after them, and checks that it lists exactly the
// members whose local headers were read, as they said: same name, method,
// sizes and CRC, each once, and no two naming one path (checkNames's rule).
// sig is the signature already read.
func (s *scanner) directory(sig uint32) error {
	start := s.br.n - 4
	byOffset := make(map[int64]int, len(s.entries))
	for i, e := range s.entries {
		byOffset[e.offset] = i
	}
	seen := make(memberNames, len(s.entries))
	matched := make([]bool, len(s.entries))
	var dir int64 // records read
	for ; sig == sigCentral; dir++ {
		c, err := s.central()
		if err != nil {
			return err
		}
		if err := seen.add(c.name); err != nil {
			return err
		}
		i, ok := byOffset[c.offset]
		if !ok || matched[i] {
			return &Error{Members: []string{c.name}, Err: invalidf("the central directory places it at offset %d, where no other member's local header starts", c.offset)}
		}
		matched[i] = true
		if err := agree(c, s.entries[i]); err != nil {
			return err
		}
		if sig, err = s.signature("ends inside its central directory"); err != nil {
			return err
		}
	}
	for i, ok := range matched {
		if !ok {
			e := s.entries[i]
			return &Error{Members: []string{e.name}, Err: invalidf("has a local header at offset %d but is not in the central directory: readers would disagree on whether it exists", e.offset)}
		}
	}
	for _, e := range s.entries {
		if err := checkMemberName(e.name); err != nil {
			return err
		}
	}
	return s.end(sig, start, s.br.n-4-start, dir)
}

// signature reads the next record's signature.
func (s *scanner) signature(where string) (uint32, error) {
	var b [4]byte
	if _, err := io.ReadFull(s.br, b[:]); err != nil {
		return 0, s.streamError(err, where)
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

// central reads one central directory record after its signature.
func (s *scanner) central() (entry, error) {
	var buf [42]byte
	if _, err := io.ReadFull(s.br, buf[:]); err != nil {
		return entry{}, s.streamError(err, "ends inside its central directory")
	}
	le := binary.LittleEndian
	c := entry{
		method: le.Uint16(buf[6:]),
		crc:    le.Uint32(buf[12:]),
		csize:  uint64(le.Uint32(buf[16:])),
		usize:  uint64(le.Uint32(buf[20:])),
		offset: int64(le.Uint32(buf[38:])),
	}
	nameLen, extraLen, commentLen := int(le.Uint16(buf[24:])), int(le.Uint16(buf[26:])), int(le.Uint16(buf[28:]))
	if nameLen > MaxNameLength {
		return entry{}, invalidf("central directory: a name longer than %d bytes", MaxNameLength)
	}
	field := make([]byte, nameLen+extraLen+commentLen)
	if _, err := io.ReadFull(s.br, field); err != nil {
		return entry{}, s.streamError(err, "ends inside its central directory")
	}
	c.name = string(field[:nameLen])
	if s.names += int64(nameLen + extraLen + commentLen); s.names > 2*MaxDirectorySize {
		return entry{}, invalidf("central directory larger than %s: more entries than a pak holds", limit(MaxDirectorySize))
	}
	// A zip64 extra field holds, in this order, those of the uncompressed
	// size, compressed size and offset whose 32-bit fields are all ones.
	if f, ok := zip64Extra(field[nameLen : nameLen+extraLen]); ok {
		f = take64(f, &c.usize)
		f = take64(f, &c.csize)
		off := uint64(c.offset)
		take64(f, &off)
		c.offset = int64(off)
	}
	return c, nil
}

// agree checks that a central directory record c says of its member what
// the member's local header and data l said.
func agree(c, l entry) error {
	fail := func(format string, args ...any) error {
		return &Error{Members: []string{c.name}, Err: invalidf(format+": readers would disagree on what it holds", args...)}
	}
	switch {
	case c.name != l.name:
		return &Error{Members: []string{c.name}, Err: invalidf("the central directory names it %s, its local header %s: readers would disagree on which member it is", quote(c.name), quote(l.name))}
	case c.method != l.method:
		return fail("the central directory says method %s, its local header %s", methodName(c.method), methodName(l.method))
	case c.csize != l.csize || c.usize != l.usize:
		return fail("the central directory says %d bytes (%d compressed), its local header and data %d (%d compressed)", c.usize, c.csize, l.usize, l.csize)
	case c.crc != l.crc:
		return fail("the central directory says CRC %08x, its local header and data %08x", c.crc, l.crc)
	}
	return nil
}

// methodName names a ZIP compression method.
func methodName(m uint16) string {
	switch m {
	case 0:
		return "0 (stored)"
	case 8:
		return "8 (deflated)"
	}
	return fmt.Sprint(m)
}

// zip64End is what a zip64 end record says of the central directory.
type zip64End struct{ count, size, start uint64 }

// end64 reads a zip64 end record, whose signature was read, and the zip64
// end locator after it, and returns the signature that follows them.
func (s *scanner) end64() (*zip64End, uint32, error) {
	le := binary.LittleEndian
	var head [8]byte
	if _, err := io.ReadFull(s.br, head[:]); err != nil {
		return nil, 0, s.streamError(err, "ends inside its end records")
	}
	n := le.Uint64(head[:])
	if n < 44 || n > 64<<10 {
		return nil, 0, invalidf("zip64 end record of %d bytes: damaged", n)
	}
	rec := make([]byte, n)
	if _, err := io.ReadFull(s.br, rec); err != nil {
		return nil, 0, s.streamError(err, "ends inside its end records")
	}
	z64 := &zip64End{count: le.Uint64(rec[20:]), size: le.Uint64(rec[28:]), start: le.Uint64(rec[36:])}
	sig, err := s.signature("ends inside its end records")
	if err != nil {
		return nil, 0, err
	}
	if sig != sigLocator64 {
		return nil, 0, invalidf("no zip64 end locator after the zip64 end record: damaged")
	}
	var loc [16]byte
	if _, err := io.ReadFull(s.br, loc[:]); err != nil {
		return nil, 0, s.streamError(err, "ends inside its end records")
	}
	sig, err = s.signature("ends inside its end records")
	return z64, sig, err
}

// end reads the end of central directory records (zip64 ones first, when
// present) and checks that they describe the central directory just read:
// start and size in bytes, dir records. Nothing may follow the end record's
// comment: a second end record there would point other readers elsewhere.
func (s *scanner) end(sig uint32, start, size, dir int64) error {
	le := binary.LittleEndian
	var z64 *zip64End
	if sig == sigEnd64 {
		var err error
		if z64, sig, err = s.end64(); err != nil {
			return err
		}
	}
	if sig != sigEnd {
		return invalidf("no ZIP header at offset %d (after its central directory)", s.br.n-4)
	}
	var rec [18]byte
	if _, err := io.ReadFull(s.br, rec[:]); err != nil {
		return s.streamError(err, "ends inside its end record")
	}
	count, dsize, dstart := uint64(le.Uint16(rec[6:])), uint64(le.Uint32(rec[8:])), uint64(le.Uint32(rec[12:]))
	if z64 != nil {
		if count == 0xffff {
			count = z64.count
		}
		if dsize == 0xffffffff {
			dsize = z64.size
		}
		if dstart == 0xffffffff {
			dstart = z64.start
		}
	}
	if z64 == nil || count == uint64(le.Uint16(rec[6:])) {
		// Writers without zip64 records let the 16-bit count wrap, and
		// other readers accept it: compare what it can hold.
		count, dir = count&0xffff, dir&0xffff
	}
	if le.Uint16(rec[0:]) != 0 || le.Uint16(rec[2:]) != 0 || count != uint64(dir) || dsize != uint64(size) || dstart != uint64(start) {
		return invalidf("the end record describes another central directory (%d entries, %d bytes at offset %d) than the one at offset %d (%d entries, %d bytes): readers would disagree on its members", count, dsize, dstart, start, dir, size)
	}
	if _, err := io.CopyN(io.Discard, s.br, int64(le.Uint16(rec[16:]))); err != nil {
		return s.streamError(err, "ends inside its end record's comment")
	}
	var one [1]byte
	switch n, err := io.ReadFull(s.br, one[:]); {
	case n > 0:
		return invalidf("data after its end record: readers would disagree on where the archive ends")
	case !errors.Is(err, io.EOF):
		return s.streamError(err, "cannot be read to its end")
	}
	return nil
}
