package pak_test

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
)

// rawEntry is a hand-made ZIP entry, to craft what ordinary writers do not.
type rawEntry struct {
	name       string
	data       []byte
	method     uint16 // 0 stored, 8 deflated, or anything to test refusals
	flags      uint16 // extra flag bits, e.g. 0x1 (encrypted)
	descriptor bool   // sizes and CRC after the data
	noSig      bool   // the data descriptor without its signature
	zip64      bool   // a zip64 extra field, and 64-bit descriptor sizes
	claimSize  int64  // when not 0, the uncompressed size the header claims
	badCRC     bool   // a wrong CRC in the header (or descriptor)

	// What the central directory says, where it disagrees.
	cdName   string // when not "", the name the central directory gives
	cdMethod int    // when not 0, the method it gives, plus one
	cdSize   int64  // when not 0, the uncompressed size it gives
	hidden   bool   // no central directory record at all
	cdTwice  bool   // two central directory records for this entry
}

// rawZip lays out entries as local headers and data, then a central
// directory that agrees with them (but where an entry says otherwise) and
// the end record.
func rawZip(entries ...rawEntry) []byte {
	var b, dir bytes.Buffer
	le := binary.LittleEndian
	records := 0
	for _, e := range entries {
		offset := b.Len()
		body := e.data
		if e.method == 8 {
			var c bytes.Buffer
			fw, _ := flate.NewWriter(&c, flate.DefaultCompression)
			fw.Write(e.data)
			fw.Close()
			body = c.Bytes()
		}
		crc := crc32.ChecksumIEEE(e.data)
		if e.badCRC {
			crc++
		}
		usize := uint64(len(e.data))
		if e.claimSize != 0 {
			usize = uint64(e.claimSize)
		}
		csize := uint64(len(body))
		flags := e.flags
		if e.descriptor {
			flags |= 0x8
		}
		var extra []byte
		hcrc, hc, hu := uint32(crc), uint32(csize), uint32(usize)
		if e.descriptor {
			hcrc, hc, hu = 0, 0, 0
		}
		if e.zip64 {
			extra = le.AppendUint16(extra, 0x0001)
			extra = le.AppendUint16(extra, 16)
			if e.descriptor {
				extra = le.AppendUint64(extra, 0)
				extra = le.AppendUint64(extra, 0)
			} else {
				extra = le.AppendUint64(extra, usize)
				extra = le.AppendUint64(extra, csize)
			}
			hc, hu = 0xffffffff, 0xffffffff
		}
		h := le.AppendUint32(nil, 0x04034b50)
		h = le.AppendUint16(h, 20)
		h = le.AppendUint16(h, flags)
		h = le.AppendUint16(h, e.method)
		h = le.AppendUint32(h, 0) // time and date
		h = le.AppendUint32(h, hcrc)
		h = le.AppendUint32(h, hc)
		h = le.AppendUint32(h, hu)
		h = le.AppendUint16(h, uint16(len(e.name)))
		h = le.AppendUint16(h, uint16(len(extra)))
		b.Write(h)
		b.WriteString(e.name)
		b.Write(extra)
		b.Write(body)
		if e.descriptor {
			var d []byte
			if !e.noSig {
				d = le.AppendUint32(d, 0x08074b50)
			}
			d = le.AppendUint32(d, crc)
			if e.zip64 {
				d = le.AppendUint64(d, csize)
				d = le.AppendUint64(d, usize)
			} else {
				d = le.AppendUint32(d, uint32(csize))
				d = le.AppendUint32(d, uint32(usize))
			}
			b.Write(d)
		}
		if e.hidden {
			continue
		}
		name, method := e.name, e.method
		if e.cdName != "" {
			name = e.cdName
		}
		if e.cdMethod != 0 {
			method = uint16(e.cdMethod - 1)
		}
		if e.cdSize != 0 {
			usize = uint64(e.cdSize)
		}
		var cextra []byte
		cc, cu := uint32(csize), uint32(usize)
		if e.zip64 {
			cextra = le.AppendUint16(cextra, 0x0001)
			cextra = le.AppendUint16(cextra, 16)
			cextra = le.AppendUint64(cextra, usize)
			cextra = le.AppendUint64(cextra, csize)
			cc, cu = 0xffffffff, 0xffffffff
		}
		c := le.AppendUint32(nil, 0x02014b50)
		c = le.AppendUint16(c, 20)
		c = le.AppendUint16(c, 20)
		c = le.AppendUint16(c, flags)
		c = le.AppendUint16(c, method)
		c = le.AppendUint32(c, 0) // time and date
		c = le.AppendUint32(c, crc)
		c = le.AppendUint32(c, cc)
		c = le.AppendUint32(c, cu)
		c = le.AppendUint16(c, uint16(len(name)))
		c = le.AppendUint16(c, uint16(len(cextra)))
		c = le.AppendUint16(c, 0) // comment
		c = le.AppendUint16(c, 0) // disk
		c = le.AppendUint16(c, 0) // internal attributes
		c = le.AppendUint32(c, 0) // external attributes
		c = le.AppendUint32(c, uint32(offset))
		c = append(append(c, name...), cextra...)
		for range 1 + btoi(e.cdTwice) {
			dir.Write(c)
			records++
		}
	}
	start := b.Len()
	b.Write(dir.Bytes())
	end := le.AppendUint32(nil, 0x06054b50)
	end = le.AppendUint16(end, 0)
	end = le.AppendUint16(end, 0)
	end = le.AppendUint16(end, uint16(records))
	end = le.AppendUint16(end, uint16(records))
	end = le.AppendUint32(end, uint32(dir.Len()))
	end = le.AppendUint32(end, uint32(start))
	end = le.AppendUint16(end, 0)
	b.Write(end)
	return b.Bytes()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
