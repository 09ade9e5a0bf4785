package rpm

import (
	"fmt"
	"strings"
)

// Sense flags of a dependency, as in rpm's RPMSENSE_LESS/GREATER/EQUAL.
const (
	senseLess    = 2
	senseGreater = 4
	senseEqual   = 8
	senseMask    = senseLess | senseGreater | senseEqual
)

// Dep is one dependency entry: a capability name, optionally with a
// comparison and an EVR. Rich (boolean) dependencies keep their whole text
// in Name, starting with "(".
type Dep struct {
	Name string `json:"name"`
	// Flags holds the comparison: 2 less, 4 greater, 8 equal (rpm's
	// RPMSENSE bits); 0 for an unversioned dependency.
	Flags uint8 `json:"flags,omitempty"`
	EVR   EVR   `json:"evr,omitzero"`
	// Pre marks a Requires(pre) entry; it has no effect on resolution.
	Pre bool `json:"-"`
}

// String formats d as rpm prints it ("name >= 1.0-1").
func (d Dep) String() string {
	if d.Flags&senseMask == 0 {
		return d.Name
	}
	return d.Name + " " + flagString(d.Flags) + " " + d.EVR.String()
}

func flagString(f uint8) string {
	switch f & senseMask {
	case senseLess:
		return "<"
	case senseGreater:
		return ">"
	case senseEqual:
		return "="
	case senseLess | senseEqual:
		return "<="
	case senseGreater | senseEqual:
		return ">="
	}
	return "?"
}

// parseFlags maps a repodata flags attribute ("EQ", "GE", ...) to sense bits.
func parseFlags(s string) (uint8, error) {
	switch s {
	case "":
		return 0, nil
	case "EQ":
		return senseEqual, nil
	case "LT":
		return senseLess, nil
	case "GT":
		return senseGreater, nil
	case "LE":
		return senseLess | senseEqual, nil
	case "GE":
		return senseGreater | senseEqual, nil
	}
	return 0, fmt.Errorf("unknown dependency flags %q", s)
}

// parseOp maps a textual comparison ("<=", ">", ...) to sense bits.
func parseOp(s string) (uint8, bool) {
	switch s {
	case "=", "==":
		return senseEqual, true
	case "<":
		return senseLess, true
	case ">":
		return senseGreater, true
	case "<=", "=<":
		return senseLess | senseEqual, true
	case ">=", "=>":
		return senseGreater | senseEqual, true
	}
	return 0, false
}

// overlaps reports whether a provide (name already matched) with flags pf
// and EVR pe satisfies a requirement with flags rf and EVR re, following
// rpm's rpmdsCompare: an unversioned side matches everything.
func overlaps(pf uint8, pe EVR, rf uint8, re EVR) bool {
	pf, rf = pf&senseMask, rf&senseMask
	if pf == 0 || rf == 0 {
		return true
	}
	sense := CompareEVR(pe, re)
	switch {
	case sense < 0:
		return pf&senseGreater != 0 || rf&senseLess != 0
	case sense > 0:
		return pf&senseLess != 0 || rf&senseGreater != 0
	default:
		return (pf&senseEqual != 0 && rf&senseEqual != 0) ||
			(pf&senseLess != 0 && rf&senseLess != 0) ||
			(pf&senseGreater != 0 && rf&senseGreater != 0)
	}
}

// Rich dependency operators.
const (
	opAnd     = "and"
	opOr      = "or"
	opIf      = "if"
	opElse    = "else"
	opUnless  = "unless"
	opWith    = "with"
	opWithout = "without"
)

// richDep is a parsed boolean dependency: either a leaf (Dep set) or an
// operator over Args. For "if"/"unless" Args is [then, cond] or
// [then, cond, else].
type richDep struct {
	Op   string
	Args []*richDep
	Dep  Dep
}

func (r *richDep) String() string {
	if r.Op == "" {
		return r.Dep.String()
	}
	parts := make([]string, len(r.Args))
	for i, a := range r.Args {
		parts[i] = a.String()
	}
	switch r.Op {
	case opIf, opUnless:
		s := "(" + parts[0] + " " + r.Op + " " + parts[1]
		if len(parts) == 3 {
			s += " else " + parts[2]
		}
		return s + ")"
	}
	return "(" + strings.Join(parts, " "+r.Op+" ") + ")"
}

// parseRich parses a rich dependency such as
// "(foo >= 1.0 or (bar if baz))".
func parseRich(s string) (*richDep, error) {
	toks := tokenizeRich(s)
	p := &richParser{toks: toks}
	r, err := p.expr()
	if err != nil {
		return nil, fmt.Errorf("rich dependency %q: %w", s, err)
	}
	if p.pos != len(toks) {
		return nil, fmt.Errorf("rich dependency %q: trailing %q", s, toks[p.pos])
	}
	return r, nil
}

func tokenizeRich(s string) []string {
	var toks []string
	cur := strings.Builder{}
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '(', ')':
			flush()
			toks = append(toks, string(c))
		case ' ', '\t', '\n':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return toks
}

type richParser struct {
	toks []string
	pos  int
}

func (p *richParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func isRichOp(s string) bool {
	switch s {
	case opAnd, opOr, opIf, opElse, opUnless, opWith, opWithout:
		return true
	}
	return false
}

// expr parses "( term op term ... )".
func (p *richParser) expr() (*richDep, error) {
	if p.peek() != "(" {
		return nil, fmt.Errorf("expected \"(\" at %q", p.peek())
	}
	p.pos++
	first, err := p.term()
	if err != nil {
		return nil, err
	}
	if p.peek() == ")" {
		p.pos++
		return first, nil
	}
	op := p.peek()
	if !isRichOp(op) || op == opElse {
		return nil, fmt.Errorf("expected an operator at %q", op)
	}
	p.pos++
	second, err := p.term()
	if err != nil {
		return nil, err
	}
	r := &richDep{Op: op, Args: []*richDep{first, second}}
	for {
		next := p.peek()
		if next == ")" {
			p.pos++
			return r, nil
		}
		switch {
		case next == opElse && (op == opIf || op == opUnless) && len(r.Args) == 2:
		case next == op && (op == opAnd || op == opOr || op == opWith):
		default:
			return nil, fmt.Errorf("unexpected %q after %q", next, op)
		}
		p.pos++
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		r.Args = append(r.Args, t)
	}
}

// term parses a nested expression or "name [op evr]".
func (p *richParser) term() (*richDep, error) {
	t := p.peek()
	switch {
	case t == "(":
		return p.expr()
	case t == "" || t == ")" || isRichOp(t):
		return nil, fmt.Errorf("expected a capability at %q", t)
	}
	p.pos++
	d := Dep{Name: t}
	if f, ok := parseOp(p.peek()); ok {
		p.pos++
		v := p.peek()
		if v == "" || v == "(" || v == ")" {
			return nil, fmt.Errorf("missing version after %q", t)
		}
		p.pos++
		d.Flags, d.EVR = f, ParseEVR(v)
	}
	return &richDep{Dep: d}, nil
}
