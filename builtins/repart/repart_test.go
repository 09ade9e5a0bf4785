package repart

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/diag"
)

func TestParseSysextDefinition(t *testing.T) {
	p, err := Parse("10-root.conf", []byte(`# comment
[Partition]
Type=root
Format=erofs
CopyFiles=/usr/
CopyFiles=/opt/:/opt
Verity=data
VerityMatchKey=root
Minimize=best
ExcludeFiles=/usr/share/doc/ "/usr/share/man"
MakeDirectories=/usr/lib/x \
  /usr/lib/y
SizeMaxBytes=1000000
Compression=lz4hc
CompressionLevel=12
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Type.Name != "root-"+arch.Native().Systemd() || p.Type.Designator != Root {
		t.Errorf("type %+v", p.Type)
	}
	if len(p.CopyFiles) != 2 || p.CopyFiles[0] != (CopyFile{"/usr", "/usr"}) || p.CopyFiles[1] != (CopyFile{"/opt", "/opt"}) {
		t.Errorf("CopyFiles %v", p.CopyFiles)
	}
	if strings.Join(p.ExcludeFiles, ",") != "/usr/share/doc/,/usr/share/man" {
		t.Errorf("ExcludeFiles %v", p.ExcludeFiles)
	}
	if strings.Join(p.MakeDirectories, ",") != "/usr/lib/x,/usr/lib/y" {
		t.Errorf("MakeDirectories %v", p.MakeDirectories)
	}
	if p.SizeMaxBytes != 1003520 { // rounded up to 4096
		t.Errorf("SizeMaxBytes %d", p.SizeMaxBytes)
	}
	if p.ReadOnly != Yes || p.GrowFileSystem != Auto {
		t.Errorf("Verity=data must imply ReadOnly and no growfs: %v %v", p.ReadOnly, p.GrowFileSystem)
	}
	if p.Compression != "lz4hc" || p.CompressionLevel != "12" || p.Minimize != MinimizeBest {
		t.Errorf("%+v", p)
	}
}

func TestParseDefaults(t *testing.T) {
	p, err := Parse("h.conf", []byte("[Partition]\nType=home\nFormat=erofs\nCopyFiles=/home\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.ReadOnly != Auto || p.GrowFileSystem != Yes || p.SplitName != "%t" {
		t.Errorf("home defaults: ro %v growfs %v split %q", p.ReadOnly, p.GrowFileSystem, p.SplitName)
	}
	p, err = Parse("v.conf", []byte("[Partition]\nType=root-arm64-verity\nVerity=hash\nVerityMatchKey=r\nSplitName=-\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.ReadOnly != Yes || p.Type.Arch != arch.ARM64 || p.SplitName != "" {
		t.Errorf("verity type: %+v", p)
	}
}

func TestTypes(t *testing.T) {
	for name, want := range map[string]string{
		"root-x86-64":                          "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
		"root-amd64":                           "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
		"usr-aarch64-verity":                   "6e11a4e7-fbca-4ded-b9e9-e1a512bb664e",
		"root-riscv64-verity-sig":              "efe0f087-ea8d-4469-821a-4c2a96a8386a",
		"usr-loong64-verity-sig":               "b024f315-d330-444c-8461-44bbde524e99",
		"root-ppc64el":                         "c31c45e6-3f39-412e-80fb-4809c4980599",
		"esp":                                  "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
		"xbootldr":                             "bc13c2ff-59e6-4262-a352-b275fd6f7172",
		"swap":                                 "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f",
		"linux-generic":                        "0fc63daf-8483-4772-8e79-3d69d8477de4",
		"0FC63DAF-8483-4772-8E79-3D69D8477DE4": "0fc63daf-8483-4772-8e79-3d69d8477de4",
		"0fc63daf848347728e793d69d8477de4":     "0fc63daf-8483-4772-8e79-3d69d8477de4",
	} {
		ty, err := ParseType(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if ty.UUID.String() != want {
			t.Errorf("%s: %s, want %s", name, ty.UUID, want)
		}
	}
	ty, _ := ParseType("root-amd64")
	if ty.Name != "root-x86-64" {
		t.Errorf("alias not canonicalized: %s", ty.Name)
	}
	if got := ty.WithArch(arch.ARM64); got.Name != "root-arm64" {
		t.Errorf("WithArch: %s", got.Name)
	}
	if got := ty.WithArch(arch.SPARC64); got != ty {
		t.Errorf("WithArch to an architecture without types: %s, want the type unchanged", got.Name)
	}
	esp, _ := ParseType("esp")
	if esp.WithArch(arch.ARM64) != esp {
		t.Error("esp retargeted")
	}
	if _, err := ParseType("root-vax"); err == nil {
		t.Error("unknown arch accepted")
	}
	// Every architecture has six distinct types and all UUIDs are unique.
	seen := map[ID128]string{}
	for _, a := range Architectures() {
		for _, d := range archDesignators {
			ty, err := ParseType(archTypeName(d, a.Systemd()))
			if err != nil {
				t.Fatal(err)
			}
			if prev, dup := seen[ty.UUID]; dup {
				t.Errorf("%s and %s share %s", prev, ty.Name, ty.UUID)
			}
			seen[ty.UUID] = ty.Name
		}
	}
	if len(seen) != 21*6 {
		t.Errorf("%d arch types, want %d", len(seen), 21*6)
	}
	if as := Architectures(); !slices.Contains(as, arch.ARM) || slices.Contains(as, arch.SPARC64) {
		t.Errorf("Architectures() = %v: want arm (DPS has its types) and not sparc64 (it has none)", as)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{"[Partition]\nType=root\nPriority=1\n", "x.conf:3:1: error: Priority= is a systemd-repart setting sxb does not support"},
		{"[Partition]\nType=root\nFrobnicate=1\n", "x.conf:3:1: error: unknown key Frobnicate="},
		{"[Partition]\nType=root-vax\n", "x.conf:2:6: error: Failed to parse partition type: root-vax"},
		{"[Partition]\nFormat=erofs\nCopyFiles=/usr\n", "x.conf:1: error: Type= not defined, refusing."},
		{"Type=root\n", "x.conf:1:1: error: assignment outside of section [Partition]"},
		{"[Other]\nType=root\n", "x.conf:1:1: error: unknown section [Other]"},
		{"[Partition]\nType=swap\nFormat=swap\nCopyFiles=/etc\n", "x.conf:3:1: error: Format=swap and CopyFiles=/MakeDirectories=/MakeSymlinks= cannot be combined, refusing."},
		{"[Partition]\nType=root\nMinimize=best\n", "x.conf:3:1: error: Minimize= can only be enabled if Format= or Verity=hash are set."},
		{"[Partition]\nType=root\nFormat=ext4\nCopyFiles=/usr\nMinimize=best\n", "x.conf:5:1: error: Minimize=best can only be used with read-only filesystems or Verity=hash."},
		{"[Partition]\nType=root\nFormat=erofs\n", "x.conf:3:1: error: Cannot format erofs filesystem without source files, refusing."},
		{"[Partition]\nType=root\nFormat=erofs\nCopyFiles=/usr\nVerity=data\n", "x.conf:5:1: error: VerityMatchKey= must be set if Verity=data."},
		{"[Partition]\nType=root\nVerityMatchKey=r\n", "x.conf:3:1: error: VerityMatchKey= can only be set if Verity= is not \"off\"."},
		{"[Partition]\nType=root-verity\nVerity=hash\nVerityMatchKey=r\nFormat=erofs\nCopyFiles=/usr\n", "cannot be used with Verity=hash."},
		{"[Partition]\nType=root-verity-sig\nVerity=signature\nVerityMatchKey=r\nSizeMinBytes=1M\n", "SizeMinBytes=/SizeMaxBytes= cannot be used with Verity=signature."},
		{"[Partition]\nType=root\nSizeMinBytes=2M\nSizeMaxBytes=1M\n", "x.conf:3:1: error: SizeMinBytes= larger than SizeMaxBytes=, refusing."},
		{"[Partition]\nType=root\nSizeMinBytes=lots\n", "x.conf:3:14: error: Failed to parse size value: lots"},
		{"[Partition]\nType=root\nVerity=maybe\n", "Failed to parse Verity= value"},
		{"[Partition]\nType=root\nFormat=ext4\nCopyFiles=/usr\n", "x.conf:3:1: error: Format=ext4 is not supported"},
		{"[Partition]\nType=root\nCopyFiles=/usr\n", "x.conf:3:1: error: CopyFiles= without Format= means Format=ext4"},
		{"[Partition]\nType=root\nFormat=erofs\nCopyFiles=usr\n", "CopyFiles= source path is not absolute"},
		{"[Partition]\nType=root\nFormat=erofs\nCopyFiles=/usr/../etc\n", "contains \"..\""},
		{"[Partition]\nType=root\nFormat=erofs\nCopyFiles=/a:/b:/c\n", "Too many arguments"},
		{"[Partition]\nType=root\nLabel=" + strings.Repeat("x", 37) + "\n", "Partition label too long"},
		{"[Partition]\nType=root\nLabel=%A\n", "specifiers are not supported"},
		{"[Partition]\nType=root\nFlags=4\n", "bits below 48"},
		{"[Partition]\nType=root\nReadOnly=perhaps\n", "Failed to parse ReadOnly= boolean"},
		{"[Partition]\nType=root\nUUID=nope\n", "Failed to parse 128-bit ID/UUID: nope"},
		{"", "no [Partition] section"},
	} {
		_, err := Parse("x.conf", []byte(tc.conf))
		if err == nil {
			t.Errorf("%q: accepted, want %q", tc.conf, tc.want)
			continue
		}
		if _, ok := diag.As(err); !ok {
			t.Errorf("%q: %v is not a diagnostic", tc.conf, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.conf, err, tc.want)
		}
	}
}

func TestSizesAndFlags(t *testing.T) {
	for in, want := range map[string]uint64{"4096": 4096, "1K": 1024, "1.5M": 1572864, "2G": 2 << 30, "10B": 10} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	p, err := Parse("x.conf", []byte("[Partition]\nType=root\nFlags=0x1000000000000000\nPaddingMinBytes=5000\nSizeMinBytes=5000\nSizeMaxBytes=5000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Flags != FlagReadOnly || p.PaddingMinBytes != 4096 || p.SizeMinBytes != 4096 || p.SizeMaxBytes != 8192 {
		t.Errorf("%+v", p)
	}
}

func TestReadDirAndLayoutChecks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("20-root-verity.conf", "[Partition]\nType=root-verity\nVerity=hash\nVerityMatchKey=root\nMinimize=best\n")
	write("10-root.conf", "[Partition]\nType=root\nFormat=erofs\nCopyFiles=/usr/\nVerity=data\nVerityMatchKey=root\nMinimize=best\n")
	write("README", "not a definition")
	os.Symlink(os.DevNull, filepath.Join(dir, "15-masked.conf"))
	parts, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].Name != "10-root.conf" || parts[1].Name != "20-root-verity.conf" {
		t.Fatalf("parts %v", parts)
	}
	if Sibling(parts, parts[0], VerityHash) != parts[1] {
		t.Error("sibling not found")
	}
	os.Mkdir(filepath.Join(dir, "20-root-verity.conf.d"), 0o755)
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), "drop-in directories") {
		t.Errorf("drop-in directory: %v", err)
	}
	os.Remove(filepath.Join(dir, "20-root-verity.conf.d"))
	os.Remove(filepath.Join(dir, "20-root-verity.conf"))
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), "10-root.conf:5:1: error: Missing verity hash partition for verity data partition with VerityMatchKey=root.") {
		t.Errorf("missing hash sibling: %v", err)
	}
	write("20-a.conf", "[Partition]\nType=root-verity\nVerity=hash\nVerityMatchKey=root\n")
	write("21-b.conf", "[Partition]\nType=root-verity\nVerity=hash\nVerityMatchKey=root\n")
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), "Multiple verity hash partitions") {
		t.Errorf("duplicate hash sibling: %v", err)
	}
	os.Remove(filepath.Join(dir, "21-b.conf"))
	write("10-root.conf", "[Partition]\nType=root\nFormat=erofs\nCopyFiles=/usr/\nVerity=data\nVerityMatchKey=root\n")
	write("20-a.conf", "[Partition]\nType=root-verity\nVerity=hash\nVerityMatchKey=root\nMinimize=best\n")
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), "data partition does not set CopyBlocks= or Minimize=") {
		t.Errorf("minimized hash, unminimized data: %v", err)
	}
}

func TestFromKeys(t *testing.T) {
	pos := diag.Pos{File: "BUILD.star", Line: 7, Col: 5}
	p, err := FromKeys(pos, "root", []KV{{"Type", "usr"}, {"Format", "squashfs"}, {"CopyFiles", "/usr/"}, {"Compression", "zstd"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Type.Designator != Usr || p.Format != "squashfs" || p.Compression != "zstd" {
		t.Errorf("%+v", p)
	}
	_, err = FromKeys(pos, "x", []KV{{"Type", "usr"}, {"Encrypt", "key-file"}})
	if err == nil || !strings.HasPrefix(err.Error(), "BUILD.star:7:5: error: Encrypt= is a systemd-repart setting sxb does not support") {
		t.Errorf("FromKeys error: %v", err)
	}
}

// TestFSTypeOverride checks systemd-repart's SYSTEMD_REPART_OVERRIDE_FSTYPE
// variables: global for any Format=, per designator for types with a file
// system (the later wins), never for verity or swap partitions; applied
// before the definition is checked, so Format=ext4 becomes squashfs.
func TestFSTypeOverride(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1], true
				}
			}
			return "", false
		}
	}
	const root = "[Partition]\nType=root\nFormat=ext4\nCopyFiles=/\n"
	for _, tc := range []struct {
		conf string
		env  func(string) (string, bool)
		want string
	}{
		{root, env("SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT", "squashfs"), "squashfs"},
		{root, env("SYSTEMD_REPART_OVERRIDE_FSTYPE", "erofs"), "erofs"},
		{root, env("SYSTEMD_REPART_OVERRIDE_FSTYPE", "erofs", "SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT", "squashfs"), "squashfs"},
		{"[Partition]\nType=root\nFormat=erofs\nCopyFiles=/\n", env("SYSTEMD_REPART_OVERRIDE_FSTYPE_USR", "squashfs"), "erofs"},
		{"[Partition]\nType=usr-arm64\nCopyFiles=/usr\n", env("SYSTEMD_REPART_OVERRIDE_FSTYPE_USR", "squashfs"), "squashfs"},
		{"[Partition]\nType=linux-generic\nFormat=ext4\nCopyFiles=/\n", env("SYSTEMD_REPART_OVERRIDE_FSTYPE_LINUX_GENERIC", "erofs"), "erofs"},
		{"[Partition]\nType=root-verity\nVerity=hash\nVerityMatchKey=r\n", env("SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT_VERITY", "ext4", "SYSTEMD_REPART_OVERRIDE_FSTYPE", "ext4"), ""},
	} {
		p, err := ParseEnv("x.conf", []byte(tc.conf), tc.env)
		if err != nil {
			t.Errorf("%q: %v", tc.conf, err)
			continue
		}
		if p.Format != tc.want {
			t.Errorf("%q: Format %q, want %q", tc.conf, p.Format, tc.want)
		}
	}
	// Without the variable, ext4 is still refused.
	if _, err := ParseEnv("x.conf", []byte(root), env("SYSTEMD_REPART_OVERRIDE_FSTYPE_USR", "squashfs")); err == nil {
		t.Error("Format=ext4 accepted")
	}
}
