package build

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/rules"
)

// firstBootTool is where a tree has systemd-firstboot.
const firstBootTool = "/usr/bin/systemd-firstboot"

// applyFirstBoot applies a base image's first-boot settings as mkosi does:
// systemd-firstboot --force with them, then each setting that is a
// credential also in /usr/lib/credstore. sxb runs the tree's own
// systemd-firstboot, chrooted in the sandbox, where mkosi runs its tools
// tree's on the image: the files it writes are the distribution's (Debian's
// systemd keeps the locale in /etc/default/locale, upstream's in
// /etc/locale.conf).
func (x *executor) applyFirstBoot(ctx context.Context, t *rules.Target, b *rules.BaseImage, root string, meta *tree.Meta) error {
	if len(b.FirstBoot) == 0 {
		return nil
	}
	r, err := tree.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := r.Lstat(strings.TrimPrefix(firstBootTool, "/")); err != nil {
		return fmt.Errorf("first-boot settings (%s) need %s in the image (mkosi would run its tools tree's); install systemd", b.FirstBoot[0].Key, firstBootTool)
	}
	emu, err := sandbox.EmulatorForArch(orNative(b.Architecture))
	if err != nil {
		return fmt.Errorf("first-boot settings: %w", err)
	}
	args := []string{firstBootTool, "--force"}
	for _, kv := range b.FirstBoot {
		for _, fk := range rules.FirstBootKeys {
			if fk.Key == kv.Key {
				args = append(args, fk.Option+"="+kv.Value)
			}
		}
	}
	var out bytes.Buffer
	so := sandbox.Options{Root: root, Meta: meta, Chroot: true, Args: args, Stdout: &out, Stderr: &out,
		Env: []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(x.epoch(t), 10)}}
	if emu != nil && !emu.Fixed() {
		so.Binds = append(so.Binds, emu.Bind())
	}
	if _, err := sandbox.Run(ctx, so); err != nil {
		return fmt.Errorf("applying first-boot settings: %w\n%s", err, strings.TrimSpace(out.String()))
	}
	d, err := r.MkdirAll("usr/lib/credstore")
	if err != nil {
		return err
	}
	defer d.Close()
	for _, kv := range b.FirstBoot {
		for _, fk := range rules.FirstBootKeys {
			if fk.Key == kv.Key && fk.Credential != "" {
				if err := d.WriteFile(fk.Credential, []byte(kv.Value), 0o644); err != nil {
					return fmt.Errorf("first-boot credential %s: %w", fk.Credential, err)
				}
			}
		}
	}
	return nil
}

// orNative is a, or the host's architecture when a is unset.
func orNative(a arch.Arch) arch.Arch {
	if a == arch.None {
		return arch.Native()
	}
	return a
}
