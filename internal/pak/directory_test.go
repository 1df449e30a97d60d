package pak_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
)

// member is a stored member of a ZIP that manyMembers writes.
type member struct {
	name string
	data []byte
}

// manyMembers returns a ZIP holding first, stored, and then n central
// directory records of 47 bytes naming "x", all pointing at the first
// member: what archive/zip reads when it opens an archive of many tiny
// members, written by hand because archive/zip's writer is slow at that.
func manyMembers(n int, first ...member) []byte {
	le := binary.LittleEndian
	var body, dir bytes.Buffer
	record := func(name string, crc uint32, size, offset int) {
		c := make([]byte, 46)
		le.PutUint32(c[0:], 0x02014b50)
		le.PutUint16(c[4:], 20)
		le.PutUint16(c[6:], 20)
		le.PutUint32(c[16:], crc)
		le.PutUint32(c[20:], uint32(size))
		le.PutUint32(c[24:], uint32(size))
		le.PutUint16(c[28:], uint16(len(name)))
		le.PutUint32(c[42:], uint32(offset))
		dir.Write(c)
		dir.WriteString(name)
	}
	for _, m := range first {
		off, crc := body.Len(), crc32.ChecksumIEEE(m.data)
		h := make([]byte, 30)
		le.PutUint32(h[0:], 0x04034b50)
		le.PutUint16(h[4:], 20)
		le.PutUint32(h[14:], crc)
		le.PutUint32(h[18:], uint32(len(m.data)))
		le.PutUint32(h[22:], uint32(len(m.data)))
		le.PutUint16(h[26:], uint16(len(m.name)))
		body.Write(h)
		body.WriteString(m.name)
		body.Write(m.data)
		record(m.name, crc, len(m.data), off)
	}
	for range n {
		record("x", 0, 0, 0)
	}
	// archive/zip compares only the low 16 bits of the member count.
	count := uint16(len(first) + n)
	end := make([]byte, 22)
	le.PutUint32(end[0:], 0x06054b50)
	le.PutUint16(end[8:], count)
	le.PutUint16(end[10:], count)
	le.PutUint32(end[12:], uint32(dir.Len()))
	le.PutUint32(end[16:], uint32(body.Len()))
	return slices.Concat(body.Bytes(), dir.Bytes(), end)
}

// TestReadRefusesHugeCentralDirectory checks that archives of more tiny
// members than fit in MaxDirectorySize are refused, whether the pak, its
// stored adapter archive or an adapter archive on its own: archive/zip would
// otherwise hold every member in memory, some 240 bytes each.
func TestReadRefusesHugeCentralDirectory(t *testing.T) {
	n := pak.MaxDirectorySize/47 + 5000
	p := paktest.Pak{Registry: paktest.Registry}
	conf := member{"MyAdapter.conf", p.Conf()}
	outer := manyMembers(n, member{"manifest.txt", p.Manifest()}, member{"adapter.zip", p.AdapterZip()})
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"pak", outer, "in: central directory larger than 8 MiB"},
		// The adapter archive's own reader refuses at the first record
		// that points at a member already listed, before any size matters.
		{"stored adapter.zip", paktest.Pak{Registry: paktest.Registry, StoreAdapterZip: true, RawAdapterZip: manyMembers(n, conf)}.Bytes(),
			"in: adapter.zip: x: the central directory places it at offset 0, where no other member's local header starts"},
		{"adapter.zip on its own", manyMembers(n, conf), "in: central directory larger than 8 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pak.Read("in", bytes.NewReader(tt.data), int64(len(tt.data)))
			if !errors.Is(err, pak.ErrInvalid) || err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Read = %v, want %q...", err, tt.want)
			}
		})
	}

	// An adapter archive of as many real members as allowed still reads,
	// stored or deflated in a pak, and on its own.
	entries := make([]rawEntry, pak.MaxInnerEntries-1, pak.MaxInnerEntries)
	for i := range entries {
		entries[i] = rawEntry{name: fmt.Sprintf("m%06d", i)}
	}
	big := rawZip(append(entries, rawEntry{name: conf.name, data: conf.data})...)
	for name, data := range map[string][]byte{
		"stored":     paktest.Pak{Registry: paktest.Registry, StoreAdapterZip: true, RawAdapterZip: big}.Bytes(),
		"deflated":   paktest.Pak{Registry: paktest.Registry, RawAdapterZip: big}.Bytes(),
		"on its own": big,
	} {
		if _, err := pak.Read("in", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Errorf("an adapter.zip (%s) of %d members: %v", name, pak.MaxInnerEntries, err)
		}
	}
}
