package eval

import (
	"errors"
	"fmt"
	"slices"

	"go.starlark.net/starlark"

	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/rules"
)

// ruleBuiltin implements base_image, sysext and confext.
func ruleBuiltin(th *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	kind := b.Name()
	specs := extAttrs
	if kind == rules.KindBaseImage {
		specs = baseAttrs
	}
	l, ps, a, name, err := ruleArgs(th, kind, specs, pos, kwargs)
	if err != nil {
		return nil, err
	}
	t := &rules.Target{Label: label.Label{Pkg: ps.name, Name: name}, Kind: kind}
	d := &decl{t: t}
	if kind == rules.KindBaseImage {
		if t.Base, d.baseText, err = a.baseImage(name); err == nil {
			err = a.schemaErr(t.Base.Validate())
		}
		if t.Base != nil && t.Base.Base != nil {
			t.Deps = []label.Label{*t.Base.Base}
		}
	} else {
		if t.Ext, d.baseText, err = a.extension(name, kind); err == nil {
			err = a.schemaErr(t.Ext.Validate())
		}
		if t.Ext != nil && t.Ext.Base != nil {
			t.Deps = []label.Label{*t.Ext.Base}
		}
	}
	if err != nil {
		return nil, err
	}
	// Tree targets in extra_trees (and skeleton_trees) are built first.
	var ts []rules.Tree
	if t.Base != nil {
		ts = append(append(ts, t.Base.SkeletonTrees...), t.Base.ExtraTrees...)
	} else {
		ts = t.Ext.ExtraTrees
	}
	for _, l := range treeDeps(ts) {
		if !slices.Contains(t.Deps, l) {
			t.Deps = append(t.Deps, l)
		}
	}
	if err := l.declare(th, ps, d, a); err != nil {
		return nil, err
	}
	return &Target{t: t}, nil
}

// schemaErr positions an error of the rule schema's Validate: one about
// an attribute at that attribute, one inside a partition definition where
// it is.
func (a *args) schemaErr(err error) error {
	if err == nil {
		return nil
	}
	var ae *rules.AttrError
	if errors.As(err, &ae) {
		return a.errf(ae.Attr, "%s", ae.Msg)
	}
	if d, ok := diag.As(err); ok {
		return &defError{d: d, rule: a.rule, name: a.name}
	}
	return a.errf("", "%v", err)
}

// declare adds d to package ps, refusing duplicate names.
func (l *loader) declare(th *starlark.Thread, ps *pkgState, d *decl, a *args) error {
	frames := userFrames(th.CallStack())
	if len(frames) > 0 {
		d.call = frames[len(frames)-1].Pos
		d.stack = frames
		d.t.Pos = l.callStart(frames[0].Pos)
	}
	name := d.t.Label.Name
	if prev, dup := ps.byName[name]; dup {
		where := prev.t.Pos
		if len(prev.stack) == 1 {
			where = l.attrPos(prev.call, "name")
		}
		rule := d.t.Kind
		if a != nil {
			rule = a.rule
		}
		return &attrError{rule: rule, attr: "name", msg: fmt.Sprintf("duplicate target name %q in package //%s", name, ps.name),
			notes: []string{fmt.Sprintf("note: %q was first declared here: %s", name, where)}}
	}
	if err := l.claimOutputs(ps, d, a); err != nil {
		return err
	}
	ps.byName[name] = d
	ps.decls = append(ps.decls, d)
	return nil
}

// claimOutputs refuses an extension whose published file names (in the
// package's output directory) another target of the package already
// writes: the later build would silently replace the earlier's image.
func (l *loader) claimOutputs(ps *pkgState, d *decl, a *args) error {
	x := d.t.Ext
	if x == nil || d.t.Publish != nil {
		return nil
	}
	files := []string{x.Output + ".raw"}
	if x.Version != "" {
		files = append(files, x.Output+"_"+x.Version+".raw")
	}
	if ps.outputs == nil {
		ps.outputs = map[string]*decl{}
	}
	for _, f := range files {
		prev, dup := ps.outputs[f]
		if !dup {
			continue
		}
		rule, attr := d.t.Kind, "name"
		if a != nil {
			rule = a.rule
			if a.has("output") {
				attr = "output"
			}
		}
		return &attrError{rule: rule, name: d.t.Label.Name, attr: attr,
			msg:   fmt.Sprintf("output file %s is also written by %s in the same package; give one of them another output (or name)", f, prev.t.Label),
			notes: []string{fmt.Sprintf("note: %s was declared here: %s", prev.t.Label, prev.t.Pos)}}
	}
	for _, f := range files {
		ps.outputs[f] = d
	}
	return nil
}

func (a *args) baseImage(name string) (*rules.BaseImage, string, error) {
	bi := &rules.BaseImage{Name: name}
	var err error
	var baseText string
	set := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	set(func() (e error) { bi.Distribution, e = a.str("distribution", ""); return })
	set(func() (e error) { bi.Release, e = a.str("release", ""); return })
	set(func() (e error) { bi.Architecture, e = a.arch("architecture", arch.Native()); return })
	set(func() (e error) { bi.Mirror, e = a.str("mirror", ""); return })
	set(func() (e error) { bi.Repositories, e = a.strings("repositories"); return })
	set(func() (e error) { bi.Packages, e = a.strings("packages"); return })
	set(func() (e error) { bi.WithRecommends, e = a.boolean("with_recommends", false); return })
	set(func() (e error) { bi.WithDocs, e = a.boolean("with_docs", true); return })
	set(func() (e error) { s, e := a.boolean("scripts", true); bi.NoScripts = !s; return e })
	set(func() (e error) { bi.SourceDateEpoch, e = a.epoch("source_date_epoch"); return })
	set(func() (e error) { bi.ExtraTrees, e = a.trees("extra_trees"); return })
	set(func() (e error) { bi.SkeletonTrees, e = a.trees("skeleton_trees"); return })
	set(func() (e error) { bi.RemoveFiles, e = a.imagePaths("remove_files"); return })
	set(func() (e error) { bi.Keyring, e = a.path("keyring"); return })
	set(func() (e error) { bi.Output, e = a.str("output", "directory"); return })
	set(func() (e error) { bi.Base, bi.BaseTree, baseText, e = a.baseAttr(); return })
	set(func() (e error) { bi.Hooks, e = a.hooks(); return })
	set(func() (e error) { bi.FirstBoot, e = a.firstboot(); return })
	if err != nil {
		return nil, "", err
	}
	if bi.Packages == nil {
		bi.Packages = []string{}
	}
	return bi, baseText, nil
}

func (a *args) extension(name, kind string) (*rules.Extension, string, error) {
	x := &rules.Extension{Name: name, Kind: kind}
	var err error
	var baseText string
	set := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	set(func() (e error) { x.Base, x.BaseTree, baseText, e = a.baseAttr(); return })
	set(func() (e error) { x.Packages, e = a.strings("packages"); return })
	set(func() (e error) { x.ExtraTrees, e = a.trees("extra_trees"); return })
	set(func() (e error) { x.RemoveFiles, e = a.imagePaths("remove_files"); return })
	set(func() (e error) { x.WithRecommends, e = a.boolean("with_recommends", false); return })
	set(func() (e error) { x.WithDocs, e = a.boolean("with_docs", true); return })
	set(func() (e error) { s, e := a.boolean("scripts", true); x.NoScripts = !s; return e })
	set(func() (e error) { x.SourceDateEpoch, e = a.epoch("source_date_epoch"); return })
	set(func() (e error) { x.Format, e = a.str("format", "erofs"); return })
	set(func() (e error) { x.Compression, e = a.str("compression", ""); return })
	set(func() (e error) { x.Verity, e = a.str("verity", "off"); return })
	set(func() (e error) { x.Key, e = a.path("key"); return })
	set(func() (e error) { x.Certificate, e = a.path("certificate"); return })
	set(func() (e error) { x.Version, e = a.str("version", ""); return })
	set(func() (e error) { x.ImageID, e = a.str("image_id", ""); return })
	set(func() (e error) { x.ExtensionRelease, e = a.dict("extension_release"); return })
	set(func() (e error) { x.Scope, e = a.str("scope", ""); return })
	set(func() (e error) { x.Partitions, e = a.partitions("partitions"); return })
	set(func() (e error) { x.Output, e = a.str("output", name); return })
	set(func() (e error) { x.Architecture, e = a.arch("architecture", arch.None); return })
	set(func() (e error) {
		gen, e := a.boolean("generate_release", true)
		x.ReleaseFromTrees = !gen
		return e
	})
	set(func() (e error) { x.CompressOutput, x.Update, e = a.shipping(x); return })
	set(func() (e error) { x.Seed, e = a.str("seed", ""); return })
	set(func() (e error) { x.Hooks, e = a.hooks(); return })
	if err != nil {
		return nil, "", err
	}
	return x, baseText, nil
}
