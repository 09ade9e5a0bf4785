package remotecache

import (
	"bytes"
	"strings"
	"testing"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The hand-written ActionResult encoding against the generated REAPI types.
func TestActionResultMatchesREAPI(t *testing.T) {
	h1, h2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	ours := &ActionResult{OutputFiles: []OutputFile{
		{Path: ManifestName, Digest: Digest{Hash: h1, Size: 120}},
		{Path: "tree.sxbtar.part-0000", Digest: Digest{Hash: h2, Size: 16 << 20}, Executable: true},
		{Path: "empty", Digest: DigestOf(nil)},
	}}
	theirs := &repb.ActionResult{OutputFiles: []*repb.OutputFile{
		{Path: ManifestName, Digest: &repb.Digest{Hash: h1, SizeBytes: 120}},
		{Path: "tree.sxbtar.part-0000", Digest: &repb.Digest{Hash: h2, SizeBytes: 16 << 20}, IsExecutable: true},
		{Path: "empty", Digest: &repb.Digest{Hash: DigestOf(nil).Hash}},
	}}
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(theirs)
	if err != nil {
		t.Fatal(err)
	}
	if got := ours.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from REAPI's:\n got %x\nwant %x", got, want)
	}
	// A result another client wrote, with fields sxb does not use.
	theirs.ExitCode = 3
	theirs.StdoutDigest = &repb.Digest{Hash: h1, SizeBytes: 1}
	theirs.OutputDirectories = []*repb.OutputDirectory{{Path: "d", TreeDigest: &repb.Digest{Hash: h2, SizeBytes: 9}}}
	theirs.ExecutionMetadata = &repb.ExecutedActionMetadata{Worker: "w", QueuedTimestamp: timestamppb.Now()}
	theirs.OutputFiles[0].NodeProperties = &repb.NodeProperties{Properties: []*repb.NodeProperty{{Name: "n", Value: "v"}}}
	b, _ := proto.Marshal(theirs)
	got, err := ParseActionResult(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.OutputFiles) != 3 || got.OutputFiles[0] != ours.OutputFiles[0] || got.OutputFiles[1] != ours.OutputFiles[1] || got.OutputFiles[2] != ours.OutputFiles[2] {
		t.Fatalf("parsed %+v", got.OutputFiles)
	}
	for _, bad := range [][]byte{{0x12, 0x05, 0x0a}, {0x12}, {0x15, 0, 0}, []byte("<html>")} {
		if _, err := ParseActionResult(bad); err == nil {
			t.Errorf("%x parsed", bad)
		}
	}
}
