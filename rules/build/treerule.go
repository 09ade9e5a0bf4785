package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/rules"
)

type treeInputs struct {
	Rule          string          `json:"rule"`
	Builtin       string          `json:"builtin"`
	Attrs         *rules.TreeRule `json:"attrs"`
	Base          string          `json:"base"`
	Hooks         string          `json:"hooks"`
	BuildPackages []Package       `json:"build_packages,omitempty"`
	Arch          arch.Arch       `json:"architecture"`
	Epoch         int64           `json:"epoch"`
}

// buildTree builds a tree target: its prepare and build scripts run on
// its base (with the build packages in the build overlay), and $DESTDIR
// becomes the target's directory.
func (x *executor) buildTree(ctx context.Context, t *rules.Target) error {
	tr := t.Tree
	baseRoot, resolveRoot, baseKey, info, err := x.extBase(ctx, *tr.Base)
	if err != nil {
		return err
	}
	a := info.Architecture
	if a == arch.None {
		a = arch.Native()
	}
	if err := x.syncScripts(ctx, t, tr.Hooks, info, a, "", ""); err != nil {
		return err
	}
	hooks, err := hooksDigest(tr.Hooks)
	if err != nil {
		return err
	}
	inputs := treeInputs{Rule: t.Kind, Builtin: builtinVersion(), Attrs: tr, Base: baseKey, Hooks: hooks, Arch: a, Epoch: x.opts.Epoch}
	var bp *buildPackages
	if len(tr.Hooks.BuildPackages) > 0 {
		if bp, err = x.resolveBuildPackages(ctx, t, tr.Hooks, info, a, baseRoot, resolveRoot); err != nil {
			return err
		}
		inputs.BuildPackages = packagesOf(bp.res)
	}
	return x.act(ctx, t, inputs, func(st *Staging) (*Entry, error) {
		work, err := st.Work()
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(work)
		root := filepath.Join(work, "root")
		if err := mkdirRoot(root); err != nil {
			return nil, err
		}
		hr, err := x.newHookRun(t, tr.Hooks, info, a, "", "", work, root, tree.NewMeta(), baseRoot)
		if err != nil {
			return nil, err
		}
		hr.buildPkgs = bp
		dest, err := hr.prepareAndBuildDest(ctx)
		if err != nil {
			return nil, err
		}
		out := filepath.Join(st.Out(), "tree")
		if err := os.Rename(dest, out); err != nil {
			return nil, err
		}
		// What the scripts wrote is root's, as in an image.
		if err := tree.NewMeta().Save(tree.MetaPath(out)); err != nil {
			return nil, err
		}
		return st.Commit(t.Label.String(), struct{}{}, inputs)
	}, x.publishTree)
}

// resolveTreeLabels points the trees of t that name tree targets at their
// published directories (built first: they are dependencies).
func (x *executor) resolveTreeLabels(t *rules.Target) error {
	var lists [][]rules.Tree
	switch {
	case t.Base != nil:
		lists = [][]rules.Tree{t.Base.SkeletonTrees, t.Base.ExtraTrees}
	case t.Ext != nil:
		lists = [][]rules.Tree{t.Ext.ExtraTrees}
	}
	for _, l := range lists {
		for i := range l {
			lb := l[i].Label
			if lb == nil {
				continue
			}
			dt := x.g.Target(*lb)
			if dt == nil || dt.Tree == nil {
				kind := "missing target"
				if dt != nil {
					kind = dt.Kind
				}
				return fmt.Errorf("extra_trees: %s is a %s, not a tree", lb, kind)
			}
			if x.entry(lb.String()) == nil {
				return fmt.Errorf("extra_trees: tree %s was not built", lb)
			}
			l[i].Source = filepath.Join(x.opts.OutputDir, filepath.FromSlash(lb.Pkg), dt.Tree.Name)
		}
	}
	return nil
}
