// Package diag formats diagnostics about user input files (BUILD.star,
// mkosi.conf, repart.d): a position, a message, the source line and a caret,
// colored only when the output is a terminal and NO_COLOR is unset.
package diag

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fatih/color"
)

// Severity tells errors from warnings.
type Severity int

// Severities.
const (
	Error Severity = iota
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Pos is a position in an input file. Line and Col are 1-based; 0 means
// unknown.
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string {
	switch {
	case p.File == "":
		return ""
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Diagnostic is one finding about an input file. It is an error value.
type Diagnostic struct {
	Severity Severity
	Pos      Pos
	Msg      string
	// Notes are further lines, for example the callers of a macro or the
	// other position of a duplicate.
	Notes []string
	// Source is the text of the offending line when the file cannot be read
	// again at render time; empty means read it from Pos.File.
	Source string
}

// Errorf makes an error Diagnostic at pos.
func Errorf(pos Pos, format string, args ...any) *Diagnostic {
	return &Diagnostic{Severity: Error, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Warnf makes a warning Diagnostic at pos.
func Warnf(pos Pos, format string, args ...any) *Diagnostic {
	return &Diagnostic{Severity: Warning, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Error renders the one-line form "file:line:col: error: msg".
func (d *Diagnostic) Error() string {
	if p := d.Pos.String(); p != "" {
		return fmt.Sprintf("%s: %s: %s", p, d.Severity, d.Msg)
	}
	return fmt.Sprintf("%s: %s", d.Severity, d.Msg)
}

// As returns the Diagnostic in err's chain, if any.
func As(err error) (*Diagnostic, bool) {
	var d *Diagnostic
	ok := errors.As(err, &d)
	return d, ok
}

// UseColor reports whether w is a terminal that should get color.
func UseColor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Render writes d with its source line and a caret under the column.
func Render(w io.Writer, d *Diagnostic, useColor bool) {
	sev := color.New(color.FgRed, color.Bold)
	if d.Severity == Warning {
		sev = color.New(color.FgMagenta, color.Bold)
	}
	bold := color.New(color.Bold)
	green := color.New(color.FgGreen)
	if !useColor {
		sev.DisableColor()
		bold.DisableColor()
		green.DisableColor()
	} else {
		sev.EnableColor()
		bold.EnableColor()
		green.EnableColor()
	}
	if p := d.Pos.String(); p != "" {
		bold.Fprintf(w, "%s: ", p)
	}
	sev.Fprintf(w, "%s: ", d.Severity)
	bold.Fprintln(w, d.Msg)
	src := d.Source
	if src == "" && d.Pos.Line > 0 {
		src = SourceLine(d.Pos.File, d.Pos.Line)
	}
	if src != "" {
		fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(src, "\t", " "))
		if d.Pos.Col > 0 && d.Pos.Col <= len(src)+1 {
			green.Fprintf(w, "    %s^\n", strings.Repeat(" ", d.Pos.Col-1))
		}
	}
	for _, n := range d.Notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
}

// RenderError writes err: as a Diagnostic when it is one (wrapped context is
// kept as a prefix line), else as "sxb: error: ..." .
func RenderError(w io.Writer, err error, useColor bool) {
	if d, ok := As(err); ok {
		if outer := strings.TrimSuffix(err.Error(), d.Error()); outer != "" && outer != err.Error() {
			fmt.Fprintf(w, "%s\n", strings.TrimSuffix(strings.TrimSpace(outer), ":"))
		}
		Render(w, d, useColor)
		return
	}
	c := color.New(color.FgRed, color.Bold)
	if useColor {
		c.EnableColor()
	} else {
		c.DisableColor()
	}
	fmt.Fprint(w, "sxb: ")
	c.Fprint(w, "error: ")
	fmt.Fprintln(w, err)
}

// SourceLine returns line (from 1) of file without its line ending, or ""
// when the file cannot be read or is shorter.
func SourceLine(file string, line int) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1<<20)
	for i := 1; s.Scan(); i++ {
		if i == line {
			return strings.TrimRight(s.Text(), "\r")
		}
	}
	return ""
}

// ErrorList is several errors (usually *diag.Diagnostic), in a stable order.
type ErrorList []error

// Error joins the errors' one-line forms, one per line.
func (e ErrorList) Error() string {
	s := make([]string, len(e))
	for i, x := range e {
		s[i] = x.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors.
func (e ErrorList) Unwrap() []error { return e }
