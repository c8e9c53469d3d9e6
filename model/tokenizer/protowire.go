package tokenizer

import (
	"fmt"
	"io"
)

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

var wireNames = map[int]string{wireVarint: "varint", wireFixed64: "fixed64", wireBytes: "length-delimited", wireFixed32: "fixed32"}

// protoField is one field of a protobuf message, as the wire format gives it: no schema,
// so the caller checks that the wire type is the one its field needs.
type protoField struct {
	num    int
	wire   int
	varint uint64 // wireVarint
	bits32 uint32 // wireFixed32
	bytes  []byte // wireBytes: the payload, a string or a nested message
	offset int    // file offset of the field's tag, for error messages
	body   int    // file offset of bytes
}

// protoReader walks the fields of one message. Errors name the file offset.
type protoReader struct {
	buf  []byte
	pos  int
	base int // file offset of buf[0]
}

// message returns a reader over the nested message in f.
func (f protoField) message() *protoReader {
	return &protoReader{buf: f.bytes, base: f.body}
}

// next reads the next field, or returns io.EOF at the end of the message.
func (r *protoReader) next() (protoField, error) {
	if r.pos == len(r.buf) {
		return protoField{}, io.EOF
	}
	f := protoField{offset: r.base + r.pos}
	tag, err := r.uvarint()
	if err != nil {
		return f, err
	}
	f.num, f.wire = int(tag>>3), int(tag&7)
	if tag>>3 == 0 || tag>>3 > 1<<29-1 {
		return f, fmt.Errorf("invalid field number %d at byte %d", tag>>3, f.offset)
	}
	switch f.wire {
	case wireVarint:
		f.varint, err = r.uvarint()
	case wireFixed64:
		_, err = r.take(8, "fixed64")
	case wireFixed32:
		var b []byte
		if b, err = r.take(4, "fixed32"); err == nil {
			f.bits32 = uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		}
	case wireBytes:
		var n uint64
		if n, err = r.uvarint(); err == nil {
			if n > uint64(len(r.buf)-r.pos) {
				return f, fmt.Errorf("truncated: field %d at byte %d is %d bytes long but only %d remain", f.num, f.offset, n, len(r.buf)-r.pos)
			}
			f.body = r.base + r.pos
			f.bytes, err = r.take(int(n), "bytes")
		}
	default:
		return f, fmt.Errorf("field %d at byte %d has unsupported wire type %d", f.num, f.offset, f.wire)
	}
	return f, err
}

// expect checks that field f, named name in error messages, has the wire type want.
func (f protoField) expect(name string, want int) error {
	if f.wire != want {
		return fmt.Errorf("%s (field %d) at byte %d has wire type %d, want %d (%s)", name, f.num, f.offset, f.wire, want, wireNames[want])
	}
	return nil
}

func (r *protoReader) uvarint() (uint64, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if r.pos == len(r.buf) {
			return 0, fmt.Errorf("truncated varint at byte %d", r.base+r.pos)
		}
		b := r.buf[r.pos]
		r.pos++
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("varint longer than 10 bytes at byte %d", r.base+r.pos)
}

func (r *protoReader) take(n int, what string) ([]byte, error) {
	if n > len(r.buf)-r.pos {
		return nil, fmt.Errorf("truncated %s at byte %d", what, r.base+r.pos)
	}
	b := r.buf[r.pos : r.pos+n]
	r.pos += n
	return b, nil
}
