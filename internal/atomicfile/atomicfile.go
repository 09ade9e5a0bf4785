// Package atomicfile writes files so that readers see the old content or
// the new, never a part: the bytes go to a temporary file in the same
// directory, which is then renamed over the target.
package atomicfile

import (
	"io"
	"os"
)

// Write replaces file with b, with permission bits mode.
func Write(file string, b []byte, mode os.FileMode) error {
	return WriteFunc(file, mode, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}
