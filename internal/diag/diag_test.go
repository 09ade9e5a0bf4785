package diag

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestRenderShowsLineAndCaret(t *testing.T) {
	f := filepath.Join(t.TempDir(), "BUILD.star")
	os.WriteFile(f, []byte("x = 1\nsysext(name = \"jq\", packages = \"jq\")\n"), 0o644)
	d := Errorf(Pos{File: f, Line: 2, Col: 33}, "sysext %q: packages: got string, want list", "jq")
	if got, want := d.Error(), f+":2:33: error: sysext \"jq\": packages: got string, want list"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var b bytes.Buffer
	RenderError(&b, fmt.Errorf("loading //x: %w", d), false)
	want := "loading //x\n" + f + ":2:33: error: sysext \"jq\": packages: got string, want list\n" +
		"    sysext(name = \"jq\", packages = \"jq\")\n" +
		"                                    ^\n"
	if b.String() != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", b.String(), want)
	}
}
