package remotecache

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The action cache holds REAPI ActionResult messages
// (build/bazel/remote/execution/v2/remote_execution.proto). sxb writes and
// reads only their output files, so it encodes that part itself with
// protowire: the generated package of github.com/bazelbuild/remote-apis
// also holds the gRPC services and linking it added 9.4 MB (45%) to the
// sxb binary. The tests check this encoding against that package.

// Field numbers in remote_execution.proto.
const (
	fieldActionResultOutputFiles = 2 // ActionResult.output_files
	fieldOutputFilePath          = 1 // OutputFile.path
	fieldOutputFileDigest        = 2 // OutputFile.digest
	fieldOutputFileExecutable    = 4 // OutputFile.is_executable
	fieldDigestHash              = 1 // Digest.hash
	fieldDigestSize              = 2 // Digest.size_bytes
)

// OutputFile is an REAPI OutputFile: a path and the CAS blob holding its
// content.
type OutputFile struct {
	Path       string
	Digest     Digest
	Executable bool
}

// ActionResult is the part of an REAPI ActionResult sxb uses: its output
// files. Parsing skips every other field.
type ActionResult struct {
	OutputFiles []OutputFile
}

// Marshal encodes a as an ActionResult message, fields in number order
// and nothing left to chance: the same result gives the same bytes.
func (a *ActionResult) Marshal() []byte {
	var b []byte
	for _, f := range a.OutputFiles {
		var d []byte
		d = protowire.AppendTag(d, fieldDigestHash, protowire.BytesType)
		d = protowire.AppendString(d, f.Digest.Hash)
		if f.Digest.Size != 0 {
			d = protowire.AppendTag(d, fieldDigestSize, protowire.VarintType)
			d = protowire.AppendVarint(d, uint64(f.Digest.Size))
		}
		var o []byte
		o = protowire.AppendTag(o, fieldOutputFilePath, protowire.BytesType)
		o = protowire.AppendString(o, f.Path)
		o = protowire.AppendTag(o, fieldOutputFileDigest, protowire.BytesType)
		o = protowire.AppendBytes(o, d)
		if f.Executable {
			o = protowire.AppendTag(o, fieldOutputFileExecutable, protowire.VarintType)
			o = protowire.AppendVarint(o, 1)
		}
		b = protowire.AppendTag(b, fieldActionResultOutputFiles, protowire.BytesType)
		b = protowire.AppendBytes(b, o)
	}
	return b
}

// ParseActionResult decodes the output files of an ActionResult message.
func ParseActionResult(b []byte) (*ActionResult, error) {
	a := &ActionResult{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fieldActionResultOutputFiles {
			return nil
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("output_files has wire type %d", typ)
		}
		var f OutputFile
		err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
			switch {
			case num == fieldOutputFilePath && typ == protowire.BytesType:
				f.Path = string(v)
			case num == fieldOutputFileDigest && typ == protowire.BytesType:
				return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
					switch {
					case num == fieldDigestHash && typ == protowire.BytesType:
						f.Digest.Hash = string(v)
					case num == fieldDigestSize && typ == protowire.VarintType:
						f.Digest.Size = int64(n)
					}
					return nil
				})
			case num == fieldOutputFileExecutable && typ == protowire.VarintType:
				f.Executable = n != 0
			}
			return nil
		})
		if err != nil {
			return err
		}
		a.OutputFiles = append(a.OutputFiles, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parsing ActionResult: %w", err)
	}
	return a, nil
}

// fields calls fn for every field of the message b with its number, wire
// type and value: the bytes of a length-delimited field, the number of a
// varint (other types pass neither).
func fields(b []byte, fn func(protowire.Number, protowire.Type, []byte, uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var bytesVal []byte
		var varint uint64
		switch typ {
		case protowire.BytesType:
			bytesVal, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			varint, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, typ, bytesVal, varint); err != nil {
			return err
		}
	}
	return nil
}
