package eval

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/sxb-build/sxb/internal/diag"
)

// joinErrors flattens lists, drops duplicates (the same problem reached
// from two packages) and returns nil, the one error, or an diag.ErrorList.
func joinErrors(errs []error) error {
	var out diag.ErrorList
	seen := map[string]bool{}
	var add func(e error)
	add = func(e error) {
		if l, ok := e.(diag.ErrorList); ok {
			for _, x := range l {
				add(x)
			}
			return
		}
		k := e.Error()
		if d, ok := e.(*diag.Diagnostic); ok {
			k = d.Pos.String() + "\x00" + d.Msg
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	for _, e := range errs {
		if e != nil {
			add(e)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

// RenderError writes err for a person: each diagnostic with its source line
// and caret (see diag.Render), other errors as "sxb: error: ...".
func RenderError(w io.Writer, err error, useColor bool) {
	if l, ok := err.(diag.ErrorList); ok {
		for _, e := range l {
			diag.RenderError(w, e, useColor)
		}
		return
	}
	diag.RenderError(w, err, useColor)
}

func toPos(p syntax.Position) diag.Pos {
	return diag.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
}

// diagAt makes a diagnostic with its source line filled in.
func (l *loader) diagAt(p diag.Pos, msg string, notes ...string) *diag.Diagnostic {
	d := diag.Errorf(p, "%s", msg)
	d.Source = l.sourceLine(p.File, p.Line)
	d.Notes = notes
	return d
}

func (l *loader) sourceLine(file string, line int) string {
	l.mu.Lock()
	src := l.srcs[file]
	l.mu.Unlock()
	if src == nil || line < 1 {
		return ""
	}
	for i := 1; i < line; i++ {
		j := bytes.IndexByte(src, '\n')
		if j < 0 {
			return ""
		}
		src = src[j+1:]
	}
	if j := bytes.IndexByte(src, '\n'); j >= 0 {
		src = src[:j]
	}
	return strings.TrimRight(string(src), "\r")
}

// convert turns a Starlark error into positioned diagnostics: syntax and
// resolver errors at their position, evaluation errors at the innermost
// user frame (for rule errors: at the attribute) with the callers as notes.
func (l *loader) convert(err error) error {
	switch e := err.(type) {
	case syntax.Error:
		return l.diagAt(toPos(e.Pos), e.Msg)
	case resolve.ErrorList:
		var errs []error
		for _, x := range e {
			errs = append(errs, l.diagAt(toPos(x.Pos), x.Msg))
		}
		return joinErrors(errs)
	case *starlark.EvalError:
		return l.convertEval(e)
	}
	return err
}

func (l *loader) convertEval(e *starlark.EvalError) error {
	frames := userFrames(e.CallStack)
	if strings.HasSuffix(e.Msg, "called recursively") && len(frames) > 1 {
		// The innermost frame is the refused call itself, not yet running.
		frames = frames[:len(frames)-1]
	}
	var inner syntax.Position
	if len(frames) > 0 {
		inner = frames[len(frames)-1].Pos
	}
	var notes []string
	for i := len(frames) - 2; i >= 0; i-- {
		notes = append(notes, fmt.Sprintf("note: in %s(), called from %s", frames[i+1].Name, l.callStart(frames[i].Pos)))
	}
	cause := e.Unwrap()
	var de *defError
	if cause != nil && errors.As(cause, &de) {
		return l.defDiag(de, inner, notes)
	}
	// A load()ed file failed: show its own diagnostics, noting the load.
	if cause != nil {
		var loaded []*diag.Diagnostic
		var list diag.ErrorList
		var d *diag.Diagnostic
		if errors.As(cause, &list) {
			for _, x := range list {
				if xd, ok := x.(*diag.Diagnostic); ok {
					loaded = append(loaded, xd)
				}
			}
		} else if errors.As(cause, &d) {
			loaded = append(loaded, d)
		}
		if len(loaded) > 0 {
			var errs []error
			for _, x := range loaded {
				nd := *x
				nd.Notes = append(append([]string(nil), x.Notes...), fmt.Sprintf("note: loaded from %s", toPos(inner)))
				nd.Notes = append(nd.Notes, notes...)
				errs = append(errs, &nd)
			}
			return joinErrors(errs)
		}
	}
	pos := toPos(inner)
	msg := e.Msg
	var ae *attrError
	if cause != nil && errors.As(cause, &ae) {
		msg = ae.Error()
		switch {
		case ae.unknown != "":
			pos = l.kwargNamePos(inner, ae.unknown)
		default:
			pos = l.framesAttrPos(frames, ae.attr)
		}
		notes = append(append([]string(nil), ae.notes...), notes...)
	} else if len(frames) > 0 && len(e.CallStack) > len(frames) {
		// An error in a built-in called from user code: point at the call.
		pos = l.callStart(inner)
	}
	if strings.HasPrefix(msg, "Starlark computation cancelled: too many steps") {
		msg = fmt.Sprintf("evaluation exceeded the step limit (%d steps): is there an unbounded loop?", l.maxSteps)
	}
	return l.diagAt(pos, msg, notes...)
}

// defError is a problem inside a partition definition (a partition()
// value or a repart.d file) that the rule using it found when validating.
type defError struct {
	d          *diag.Diagnostic
	rule, name string
}

func (e *defError) Error() string { return e.d.Error() }

// defDiag shows a defError where the definition has it, with its source
// line, noting the rule call at inner that uses it.
func (l *loader) defDiag(e *defError, inner syntax.Position, notes []string) error {
	d := *e.d
	if filepath.IsAbs(d.Pos.File) {
		if d.Source == "" {
			d.Source = diag.SourceLine(d.Pos.File, d.Pos.Line)
		}
		d.Pos.File = l.display(d.Pos.File)
	} else if d.Source == "" {
		d.Source = l.sourceLine(d.Pos.File, d.Pos.Line)
	}
	use := fmt.Sprintf("note: in the partitions of %s %q at %s", e.rule, e.name, l.callStart(inner))
	d.Notes = append(append(slices.Clone(d.Notes), use), notes...)
	return &d
}

type posKey struct {
	file      string
	line, col int32
}

// callAt finds the call expression whose "(" is at p.
func (l *loader) callAt(p syntax.Position) *syntax.CallExpr {
	name := p.Filename()
	l.mu.Lock()
	defer l.mu.Unlock()
	idx, ok := l.calls[name]
	if !ok {
		f := l.files[name]
		if f == nil {
			return nil
		}
		idx = map[posKey]*syntax.CallExpr{}
		syntax.Walk(f, func(n syntax.Node) bool {
			if c, ok := n.(*syntax.CallExpr); ok {
				idx[posKey{name, c.Lparen.Line, c.Lparen.Col}] = c
			}
			return true
		})
		l.calls[name] = idx
	}
	return idx[posKey{name, p.Line, p.Col}]
}

// callStart is the position of the start of the call whose "(" is at p.
func (l *loader) callStart(p syntax.Position) diag.Pos {
	if c := l.callAt(p); c != nil {
		start, _ := c.Span()
		return toPos(start)
	}
	return toPos(p)
}

// attrPos is the position of the value of keyword argument attr in the call
// whose "(" is at p; the start of the call when absent.
func (l *loader) attrPos(p syntax.Position, attr string) diag.Pos {
	c := l.callAt(p)
	if c == nil {
		return toPos(p)
	}
	if attr != "" {
		for _, a := range c.Args {
			if b, ok := a.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
				if id, ok := b.X.(*syntax.Ident); ok && id.Name == attr {
					start, _ := b.Y.Span()
					return toPos(start)
				}
			}
		}
	}
	start, _ := c.Span()
	return toPos(start)
}

// framesAttrPos is the position of attribute attr in the innermost call of
// frames that names it (a macro may pass it on with **kwargs); else the
// start of the innermost call.
func (l *loader) framesAttrPos(frames []starlark.CallFrame, attr string) diag.Pos {
	if len(frames) == 0 {
		return diag.Pos{}
	}
	inner := frames[len(frames)-1].Pos
	if attr == "" {
		return l.callStart(inner)
	}
	for i := len(frames) - 1; i >= 0; i-- {
		if p, ok := l.kwargValuePos(frames[i].Pos, attr); ok {
			return p
		}
	}
	return l.callStart(inner)
}

func (l *loader) kwargValuePos(p syntax.Position, attr string) (diag.Pos, bool) {
	c := l.callAt(p)
	if c == nil {
		return diag.Pos{}, false
	}
	for _, a := range c.Args {
		if b, ok := a.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
			if id, ok := b.X.(*syntax.Ident); ok && id.Name == attr {
				start, _ := b.Y.Span()
				return toPos(start), true
			}
		}
	}
	return diag.Pos{}, false
}

// kwargNamePos is the position of the name of keyword argument attr.
func (l *loader) kwargNamePos(p syntax.Position, attr string) diag.Pos {
	c := l.callAt(p)
	if c == nil {
		return toPos(p)
	}
	for _, a := range c.Args {
		if b, ok := a.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
			if id, ok := b.X.(*syntax.Ident); ok && id.Name == attr {
				return toPos(id.NamePos)
			}
		}
	}
	start, _ := c.Span()
	return toPos(start)
}

// userFrames drops built-in frames from a call stack.
func userFrames(cs starlark.CallStack) []starlark.CallFrame {
	out := make([]starlark.CallFrame, 0, len(cs))
	for _, f := range cs {
		if f.Pos.Filename() != "<builtin>" {
			out = append(out, f)
		}
	}
	return out
}
