package awsjson

import (
	smithy "github.com/aws/smithy-go"
)

// The SDK's generated serializers skip a primitive member whose value is
// zero (0, false), because for a client that is the same as "unset". AWS
// services, though, send such members: describe-clusters shows
// "runningTasksCount": 0 and container definitions "cpu": 0. zeroFill wraps
// an output so that, when a structure closes, every member that targets one
// of the service's primitive (non-boxed) shapes and was not written is
// written as zero.

type frameKind int

const (
	frameStruct frameKind = iota
	frameOther            // list, map or union: member writes belong to it
)

type frame struct {
	kind    frameKind
	schema  *smithy.Schema
	written map[string]bool
}

// zeroFill is a smithy.Serializable that wraps another.
type zeroFill struct {
	inner      smithy.Serializable
	primitives map[smithy.ShapeID]bool
}

func (z zeroFill) Serialize(s smithy.ShapeSerializer) {
	z.inner.Serialize(&zeroFillSerializer{ShapeSerializer: s, primitives: z.primitives})
}

type zeroFillSerializer struct {
	smithy.ShapeSerializer
	primitives map[smithy.ShapeID]bool
	stack      []frame
}

func (z *zeroFillSerializer) mark(member *smithy.Schema) {
	if n := len(z.stack); n > 0 && z.stack[n-1].kind == frameStruct && member != nil {
		z.stack[n-1].written[member.MemberName()] = true
	}
}

func (z *zeroFillSerializer) WriteInt8(s *smithy.Schema, v int8) {
	z.mark(s)
	z.ShapeSerializer.WriteInt8(s, v)
}
func (z *zeroFillSerializer) WriteInt16(s *smithy.Schema, v int16) {
	z.mark(s)
	z.ShapeSerializer.WriteInt16(s, v)
}
func (z *zeroFillSerializer) WriteInt32(s *smithy.Schema, v int32) {
	z.mark(s)
	z.ShapeSerializer.WriteInt32(s, v)
}
func (z *zeroFillSerializer) WriteInt64(s *smithy.Schema, v int64) {
	z.mark(s)
	z.ShapeSerializer.WriteInt64(s, v)
}
func (z *zeroFillSerializer) WriteFloat32(s *smithy.Schema, v float32) {
	z.mark(s)
	z.ShapeSerializer.WriteFloat32(s, v)
}
func (z *zeroFillSerializer) WriteFloat64(s *smithy.Schema, v float64) {
	z.mark(s)
	z.ShapeSerializer.WriteFloat64(s, v)
}
func (z *zeroFillSerializer) WriteBool(s *smithy.Schema, v bool) {
	z.mark(s)
	z.ShapeSerializer.WriteBool(s, v)
}

func (z *zeroFillSerializer) WriteStruct(s *smithy.Schema) {
	z.mark(s)
	z.ShapeSerializer.WriteStruct(s)
	z.stack = append(z.stack, frame{kind: frameStruct, schema: s, written: map[string]bool{}})
}

func (z *zeroFillSerializer) CloseStruct() {
	if n := len(z.stack); n > 0 {
		f := z.stack[n-1]
		z.stack = z.stack[:n-1]
		z.fillZeros(f)
	}
	z.ShapeSerializer.CloseStruct()
}

func (z *zeroFillSerializer) fillZeros(f frame) {
	for name, m := range f.schema.Members() {
		if f.written[name] || !z.primitives[m.TargetID()] {
			continue
		}
		switch m.Type() {
		case smithy.ShapeTypeBoolean:
			z.ShapeSerializer.WriteBool(m, false)
		case smithy.ShapeTypeInteger:
			z.ShapeSerializer.WriteInt32(m, 0)
		case smithy.ShapeTypeLong:
			z.ShapeSerializer.WriteInt64(m, 0)
		case smithy.ShapeTypeDouble:
			z.ShapeSerializer.WriteFloat64(m, 0)
		case smithy.ShapeTypeFloat:
			z.ShapeSerializer.WriteFloat32(m, 0)
		}
	}
}

func (z *zeroFillSerializer) push(s *smithy.Schema) {
	z.mark(s)
	z.stack = append(z.stack, frame{kind: frameOther})
}

func (z *zeroFillSerializer) pop() {
	if n := len(z.stack); n > 0 {
		z.stack = z.stack[:n-1]
	}
}

func (z *zeroFillSerializer) WriteList(s *smithy.Schema) { z.push(s); z.ShapeSerializer.WriteList(s) }
func (z *zeroFillSerializer) CloseList()                 { z.pop(); z.ShapeSerializer.CloseList() }
func (z *zeroFillSerializer) WriteMap(s *smithy.Schema)  { z.push(s); z.ShapeSerializer.WriteMap(s) }
func (z *zeroFillSerializer) CloseMap()                  { z.pop(); z.ShapeSerializer.CloseMap() }
func (z *zeroFillSerializer) WriteUnion(s, variant *smithy.Schema) {
	z.push(s)
	z.ShapeSerializer.WriteUnion(s, variant)
}
func (z *zeroFillSerializer) CloseUnion() { z.pop(); z.ShapeSerializer.CloseUnion() }

// Other members (strings, blobs, times, documents, nil) need no zero and no
// frame; marking them keeps the written set exact.
func (z *zeroFillSerializer) WriteString(s *smithy.Schema, v string) {
	z.mark(s)
	z.ShapeSerializer.WriteString(s, v)
}
