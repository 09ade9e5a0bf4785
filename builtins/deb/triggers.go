package deb

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strings"
)

// dpkg triggers, as dpkg keeps them (see deb-triggers(5) and dpkg's
// doc/triggers.txt): a package's control member "triggers" declares
// "interest" in a trigger name (or in a path: a file trigger) and
// "activate"s triggers. dpkg indexes the interests of every installed
// package in var/lib/dpkg/triggers (File: "<path> <package>[/noawait]" per
// line; one file per explicit trigger name listing "<package>[/noawait]"),
// and while it unpacks a package it activates the file triggers whose path
// is a file of the package or one of its parent directories, and the
// triggers the package activates explicitly. An activated trigger is
// recorded on the interested package ("Triggers-Pending:"), which dpkg
// --configure --pending (or --triggers-only) then runs as "postinst
// triggered <names>". sxb unpacks natively, so it does the indexing and the
// activation itself and leaves the running to the tree's dpkg.

// trigInterest is one package's interest in a trigger.
type trigInterest struct {
	pkg     string
	noawait bool
}

// triggerIndex is the interests of every package of a tree.
type triggerIndex struct {
	file     map[string][]trigInterest // path -> interested packages
	explicit map[string][]trigInterest // trigger name -> interested packages
}

// triggerDecl is what one package's triggers member declares.
type triggerDecl struct {
	interests []string // trigger names and paths, "/noawait" appended where asked
	activates []string // trigger names
}

// parseTriggers reads a package's triggers control member.
func parseTriggers(b []byte) triggerDecl {
	var d triggerDecl
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "interest", "interest-await":
			d.interests = append(d.interests, f[1])
		case "interest-noawait":
			d.interests = append(d.interests, f[1]+"/noawait")
		case "activate", "activate-await", "activate-noawait":
			d.activates = append(d.activates, f[1])
		}
	}
	return d
}

// add records pkg's interests.
func (x *triggerIndex) add(pkg string, d triggerDecl) {
	for _, in := range d.interests {
		name, noawait := strings.CutSuffix(in, "/noawait")
		ti := trigInterest{pkg: pkg, noawait: noawait}
		if strings.HasPrefix(name, "/") {
			x.file[name] = append(x.file[name], ti)
		} else {
			x.explicit[name] = append(x.explicit[name], ti)
		}
	}
}

// files returns the index files dpkg keeps in var/lib/dpkg/triggers, by
// name.
func (x *triggerIndex) files() map[string][]byte {
	out := map[string][]byte{}
	line := func(b *bytes.Buffer, prefix string, ti trigInterest) {
		b.WriteString(prefix + ti.pkg)
		if ti.noawait {
			b.WriteString("/noawait")
		}
		b.WriteByte('\n')
	}
	var file bytes.Buffer
	for _, p := range sortedKeys(x.file) {
		for _, ti := range x.file[p] {
			line(&file, p+" ", ti)
		}
	}
	out["File"] = file.Bytes()
	for _, name := range sortedKeys(x.explicit) {
		var b bytes.Buffer
		for _, ti := range x.explicit[name] {
			line(&b, "", ti)
		}
		out[name] = b.Bytes()
	}
	return out
}

// activate returns, per interested package, the triggers that unpacking a
// package with the listed paths and explicit activations sets off, in the
// order dpkg would record them, each once.
func (x *triggerIndex) activate(list []string, activates []string, pending map[string][]string) {
	add := func(pkg, name string) {
		for _, n := range pending[pkg] {
			if n == name {
				return
			}
		}
		pending[pkg] = append(pending[pkg], name)
	}
	for _, p := range list {
		// The path itself and every parent directory.
		for q := path.Clean(p); q != "/" && q != "."; q = path.Dir(q) {
			for _, ti := range x.file[q] {
				add(ti.pkg, q)
			}
		}
	}
	for _, name := range activates {
		for _, ti := range x.explicit[name] {
			add(ti.pkg, name)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// statusEdit changes one package's paragraph of var/lib/dpkg/status.
type statusEdit struct {
	status  string   // the new Status: value
	pending []string // Triggers-Pending: names, if any
}

// editStatus rewrites a dpkg status file: each package named in edits (by
// "name" or "name:arch") gets the new status and pending triggers.
func editStatus(status []byte, edits map[string]statusEdit) ([]byte, error) {
	var out bytes.Buffer
	err := parseParagraphs(status, func(_ int, p *Paragraph) error {
		e, ok := edits[p.Get("Package")+":"+p.Get("Architecture")]
		if !ok {
			e, ok = edits[p.Get("Package")]
		}
		for _, f := range p.Fields {
			switch {
			case ok && f.Name == "Status":
				out.WriteString("Status: " + e.status + "\n")
				if len(e.pending) > 0 {
					out.WriteString("Triggers-Pending: " + strings.Join(e.pending, " ") + "\n")
				}
				continue
			case ok && (f.Name == "Triggers-Pending" || f.Name == "Triggers-Awaited"):
				continue
			}
			if strings.HasPrefix(f.Value, "\n") {
				out.WriteString(f.Name + ":" + f.Value + "\n")
			} else {
				out.WriteString(f.Name + ": " + f.Value + "\n")
			}
		}
		out.WriteByte('\n')
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("editing the dpkg status: %w", err)
	}
	return out.Bytes(), nil
}
