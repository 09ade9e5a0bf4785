package mkosi

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/diag"
)

// writeProject creates files (path -> contents; a path ending in "/" is a
// directory) in a temporary directory and returns it.
func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type loaded struct {
	*Project
	warnings []*diag.Diagnostic
}

func testOpts(w *[]*diag.Diagnostic) LoadOptions {
	return LoadOptions{
		Environment:      map[string]string{"HOME": "/home/u", "FOO": "foo"},
		HostDistribution: "debian", HostRelease: "trixie", HostArchitecture: "x86-64",
		SystemdVersion: "257.4", Resources: NoResources,
		Warn: func(d *diag.Diagnostic) { *w = append(*w, d) },
	}
}

func mustLoad(t *testing.T, dir string, mod ...func(*LoadOptions)) *loaded {
	t.Helper()
	l := &loaded{}
	o := testOpts(&l.warnings)
	for _, m := range mod {
		m(&o)
	}
	p, err := Load(dir, o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	l.Project = p
	return l
}

func loadErr(t *testing.T, dir string, mod ...func(*LoadOptions)) error {
	t.Helper()
	var w []*diag.Diagnostic
	o := testOpts(&w)
	for _, m := range mod {
		m(&o)
	}
	_, err := Load(dir, o)
	if err == nil {
		t.Fatalf("Load succeeded, want an error")
	}
	return err
}

func withProfiles(p ...string) func(*LoadOptions) { return func(o *LoadOptions) { o.Profiles = p } }

func names(p *Project) []string {
	var out []string
	for _, im := range p.Images {
		out = append(out, im.Name)
	}
	return out
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestMergeRules(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf": `
[Distribution]
Distribution=ubuntu
Architecture=arm64
Repositories=epel,epel-next

[Config]
Profiles=abc

[Build]
Environment=MY_KEY=MY_VALUE

[Output]
Format=tar
ImageId=base

[Content]
Packages=zsh (cond) /usr/bin/ls
  bash
WithDocs=no
`,
		"mkosi.conf.d/d1.conf": `
[Distribution]
Distribution=debian
Repositories=
  main
[Config]
Profiles=qed
         def
[Output]
ImageId=00-dropin
ImageVersion=0
@Output=abc
[Content]
Packages=!negated
WithDocs=
`,
		"mkosi.version": "1.2.3\n",
	})
	l := mustLoad(t, dir)
	m := l.Main()
	eq(t, "Distribution", m.Distribution, "debian")
	eq(t, "Release (default for non-host distribution)", m.Release, "trixie")
	eq(t, "Architecture", m.Architecture, "arm64")
	eq(t, "Repositories", m.Repositories, []string{"epel", "epel-next", "main"})
	eq(t, "Profiles", m.Profiles, []string{"abc", "qed", "def"})
	eq(t, "Format", m.Format, "tar")
	eq(t, "ImageId", m.ImageID, "00-dropin")
	eq(t, "ImageVersion (explicit beats mkosi.version)", m.ImageVersion, "0")
	eq(t, "Output", m.Output, "abc")
	eq(t, "Packages (sorted, ! literal)", m.Packages, []string{"!negated", "bash", "zsh", "/usr/bin/ls", "(cond)"})
	eq(t, "WithDocs (reset to default)", m.WithDocs, true)
	eq(t, "Environment", m.Environment, map[string]string{"MY_KEY": "MY_VALUE"})
	eq(t, "CompressOutput default for tar", m.CompressOutput, "zstd")
	eq(t, "OutputFile", m.OutputFile(), "abc.tar.zst")
	var deprecated bool
	for _, w := range l.warnings {
		if strings.Contains(w.Msg, "'@' specifier is deprecated") && w.Pos.Line == 12 {
			deprecated = true
		}
	}
	if !deprecated {
		t.Errorf("no warning for @Output at line 12: %v", l.warnings)
	}

	// Empty assignment resets lists and suppresses their defaults; scalars
	// fall back to their default.
	os.WriteFile(filepath.Join(dir, "mkosi.conf.d/d2.conf"), []byte("[Content]\nPackages=\n[Output]\nImageId=\nFormat=\n"), 0o644)
	m = mustLoad(t, dir).Main()
	eq(t, "Packages after reset", m.Packages, []string{})
	eq(t, "ImageId after reset", m.ImageID, "")
	eq(t, "Format after reset", m.Format, "disk")
	eq(t, "Output stays", m.Output, "abc")

	os.Remove(filepath.Join(dir, "mkosi.conf.d/d1.conf"))
	m = mustLoad(t, dir).Main()
	eq(t, "ImageVersion from mkosi.version", m.ImageVersion, "1.2.3")
	eq(t, "Output default", m.Output, "image_1.2.3")
}

func TestOutputIdVersion(t *testing.T) {
	dir := writeProject(t, map[string]string{"mkosi.conf": "[Output]\nImageId=output\nImageVersion=1.2.3\nFormat=sysext\n"})
	m := mustLoad(t, dir).Main()
	eq(t, "Output", m.Output, "output_1.2.3")
	eq(t, "OutputFile", m.OutputFile(), "output_1.2.3.raw")
	eq(t, "OutputDir", m.OutputDir(), dir)
}

func TestValueParsing(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf": `
[Output]
OutputDirectory=out
[Content]
ExtraTrees=extra:/opt/x,$FOO,~/h
SkeletonTrees=skel
BaseTrees=%O/base
WithRecommends=yes
Bootable=no
[Output]
SplitArtifacts=roothash,partitions
CompressOutput=yes
Format=disk
[Build]
Environment="A=b c" D=e\ f
            PLAIN
            FOO
[Config]
PassEnvironment=A D
`,
		"extra/":          "",
		"skel/":           "",
		"foo/":            "",
		"mkosi.extra/":    "",
		"mkosi.skeleton/": "",
	})
	m := mustLoad(t, dir).Main()
	eq(t, "ExtraTrees", m.ExtraTrees, []Tree{{Source: dir + "/mkosi.extra"}, {Source: dir + "/extra", Target: "/opt/x"},
		{Source: dir + "/foo"}, {Source: "/home/u/h"}})
	eq(t, "SkeletonTrees", m.SkeletonTrees, []Tree{{Source: dir + "/mkosi.skeleton"}, {Source: dir + "/skel"}})
	eq(t, "OutputDirectory (relative to the file's directory)", m.OutputDirectory, dir+"/out")
	eq(t, "BaseTrees via %O", m.BaseTrees, []string{dir + "/out/base"})
	eq(t, "WithRecommends", m.WithRecommends, true)
	eq(t, "Bootable", m.Bootable, "disabled")
	eq(t, "SplitArtifacts", m.SplitArtifacts, []string{"roothash", "partitions"})
	eq(t, "CompressOutput", m.CompressOutput, "zstd")
	eq(t, "OutputFile", m.OutputFile(), "image.raw.zst")
	eq(t, "Environment", m.Environment, map[string]string{"A": "b c", "D": "e f", "PLAIN": "", "FOO": "foo"})
	eq(t, "PassEnvironment", m.PassEnvironment, []string{"A", "D"})

	// Required paths name file and line when missing.
	bad := writeProject(t, map[string]string{"mkosi.conf": "[Content]\n\nSkeletonTrees=missing\n"})
	err := loadErr(t, bad)
	d, ok := diag.As(err)
	if !ok || d.Pos.File != filepath.Join(bad, "mkosi.conf") || d.Pos.Line != 3 || !strings.Contains(d.Msg, "missing does not exist") {
		t.Errorf("error %v", err)
	}
	for _, tc := range []struct{ conf, want string }{
		{"[Content]\nWithDocs=maybe\n", "invalid boolean literal"},
		{"[Output]\nFormat=Disk\n", "'Disk' is not a valid OutputFormat"},
		{"[Distribution]\nDistribution=Debian\n", "'Debian' is not a valid Distribution"},
		{"[Output]\nOutput=a/b\n", "not a valid filename"},
		{"[Content]\nSourceDateEpoch=-1\n", "cannot be negative"},
		{"[Output]\nOutputSize=-1G\n", "size out of range"},
		{"[Output]\nOutputMode=8\n", "not a valid integer in base 8"},
		{"[Output]\nOutputMode=2000\n", "cannot be greater than 1777"},
		{"[Config]\nProfiles=../x\n", "not a valid profile"},
		{"[Build]\nEnvironment=\"A=b\n", "no closing quotation"},
		{"[Output]\nSplitArtifacts=foo\n", "not a valid ArtifactOutput"},
		{"[Distribution]\nArchitecture=amd64\n", "not a valid Architecture"},
	} {
		err := loadErr(t, writeProject(t, map[string]string{"mkosi.conf": tc.conf}))
		if d, ok := diag.As(err); !ok || d.Pos.Line != 2 || !strings.Contains(d.Msg, tc.want) {
			t.Errorf("%q: error %v, want line 2 and %q", tc.conf, err, tc.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1": 4096, "8000": 8192, "8K": 8192, "4097": 8192, "1M": 1 << 20,
		"1.9M": 1994752, "1G": 1 << 30, "7.3G": 7838318592} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "-2K", "-3M", "-4G", "0", "abc", "", "G"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) succeeded", in)
		}
	}
}

func TestSortPackages(t *testing.T) {
	p := []string{"(python3-foo if python3)", "/usr/bin/b", "zlib", "!x", "/a", "abc", "Abc"}
	SortPackages(p)
	eq(t, "sorted", p, []string{"!x", "Abc", "abc", "zlib", "/a", "/usr/bin/b", "(python3-foo if python3)"})
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1", "1", 0}, {"1", "2", -1}, {"2", "1", 1}, {"1.10", "1.9", 1}, {"1.0", "1", 1},
		{"1~rc1", "1", -1}, {"1~rc1", "1~rc2", -1}, {"1-1", "1", 1}, {"1^git", "1", 1}, {"1^git", "1.1", -1},
		{"a", "b", -1}, {"1a", "1b", -1}, {"01", "1", 0}, {"1.2.3", "1.2.3", 0}, {"257.4", "255", 1},
		{"123456789012345678901234567890", "123456789012345678901234567891", -1}, {"-", "-^", 1}, {"", "", 0},
	} {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestFnmatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"abc", "abc", true}, {"a*", "abc", true}, {"*c", "abc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*", "a/b", true}, {"a[bc]d", "acd", true}, {"a[!bc]d", "acd", false}, {"a[a-z]d", "aqd", true},
		{"my-*-image", "my-big-image", true}, {"my-*-image", "my-image", false}, {"[", "[", true}, {"", "", true},
	} {
		if got := fnmatch(tc.p, tc.s); got != tc.want {
			t.Errorf("fnmatch(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

func TestSpecifiers(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf": `
[Distribution]
Distribution=ubuntu
Release=lunar
Architecture=arm64

[Output]
ImageId=my-image-id
ImageVersion=1.2.3
OutputDirectory=abcde
Output=test
Format=directory

[Build]
Environment=Distribution=%d
            Release=%r
            Architecture=%a
            Image=%I
            ImageId=%i
            ImageVersion=%v
            OutputDirectory=%O
            Output=%o
            Format=%t
            ConfigRootDirectory=%D
            ConfigRootConfdir=%C
            ConfigRootPwd=%P
            Filesystem=%F
            Percent=100%%
            Trailing=%
`,
		"abcde/": "",
		"mkosi.conf.d/abc.conf": `
[Build]
Environment=ConfigAbcDirectory=%D
            ConfigAbcConfdir=%C
            ConfigAbcPwd=%P
            Unknown=%z
`,
		"mkosi.conf.d/qed/mkosi.conf": `
[Build]
Environment=ConfigQedDirectory=%D
            ConfigQedConfdir=%C
            ConfigQedPwd=%P
`,
		"mkosi.images/subimage.conf": "[Build]\nEnvironment=Image=%I\n",
	})
	l := mustLoad(t, dir, func(o *LoadOptions) { o.Environment = map[string]string{} })
	eq(t, "images", names(l.Project), []string{"subimage", "main"})
	want := map[string]string{
		"Distribution": "ubuntu", "Release": "lunar", "Architecture": "arm64", "Image": "main",
		"ImageId": "my-image-id", "ImageVersion": "1.2.3", "OutputDirectory": dir + "/abcde", "Output": "test",
		"Format": "directory", "ConfigRootDirectory": dir, "ConfigRootConfdir": dir, "ConfigRootPwd": dir,
		"ConfigAbcDirectory": dir, "ConfigAbcConfdir": dir + "/mkosi.conf.d", "ConfigAbcPwd": dir,
		"ConfigQedDirectory": dir, "ConfigQedConfdir": dir + "/mkosi.conf.d/qed", "ConfigQedPwd": dir + "/mkosi.conf.d/qed",
		"Filesystem": "ext4", "Percent": "100%", "Trailing": "%", "Unknown": "",
	}
	eq(t, "Environment", l.Main().Environment, want)
	eq(t, "subimage Environment", l.Image("subimage").Environment, map[string]string{"Image": "subimage"})
	found := false
	for _, w := range l.warnings {
		if strings.Contains(w.Msg, "unknown specifier '%z'") && w.Pos.Line == 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning for %%z: %v", l.warnings)
	}

	// A specifier for a setting that has no value yet is dropped with a
	// warning naming the setting.
	dir = writeProject(t, map[string]string{"mkosi.conf": "[Build]\nEnvironment=X=%v/%O/%i\n"})
	l = mustLoad(t, dir)
	eq(t, "unset specifiers", l.Main().Environment["X"], "//")
	var unset []string
	for _, w := range l.warnings {
		if strings.Contains(w.Msg, "is not yet set") {
			unset = append(unset, strings.Fields(w.Msg)[1])
		}
	}
	eq(t, "unset warnings", unset, []string{"ImageVersion", "OutputDirectory", "ImageId"})
}

func TestSectionsAndKeys(t *testing.T) {
	dir := writeProject(t, map[string]string{"mkosi.conf": `
[Content]
ImageId=testimage
packages=lowercase
Bogus=1
[Whatever]
NoEquals line is fine in an unknown section
Packages=ignored
[Output]
Profile=old
`})
	l := mustLoad(t, dir)
	m := l.Main()
	eq(t, "ImageId from wrong section applies", m.ImageID, "testimage")
	eq(t, "Packages from unknown section ignored", m.Packages, []string{})
	eq(t, "deprecated name applies", m.Profiles, []string{"old"})
	var got []string
	for _, w := range l.warnings {
		got = append(got, w.Pos.String()[len(dir)+1:]+" "+w.Msg)
	}
	eq(t, "warnings", got, []string{
		"mkosi.conf:6:1 unknown section [Whatever]: its settings are ignored",
		"mkosi.conf:3:1 setting ImageId should be configured in [Output], not [Content]",
		"mkosi.conf:4:1 unknown setting packages",
		"mkosi.conf:5:1 unknown setting Bogus",
		"mkosi.conf:10:1 setting Profile should be configured in [Config], not [Output]",
		"mkosi.conf:10:1 setting Profile is deprecated, please use Profiles instead",
	})
}

func TestLocalConfig(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.local.conf": "[Distribution]\nDistribution=debian\n[Build]\nEnvironment=FOO=override\nEnvironment=BAZ=normal\n[Content]\nPackages=local\n",
		"mkosi.conf":       "[Distribution]\nDistribution=fedora\n[Build]\nEnvironment=FOO=normal\nEnvironment=BAR=normal\n[Content]\nPackages=zz\n",
	})
	m := mustLoad(t, dir).Main()
	eq(t, "Distribution", m.Distribution, "debian")
	eq(t, "Environment", m.Environment, map[string]string{"FOO": "override", "BAR": "normal", "BAZ": "normal"})
	eq(t, "Packages (config then local)", m.Packages, []string{"zz", "local"})

	os.MkdirAll(filepath.Join(dir, "mkosi.local/mkosi.conf.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "mkosi.local/mkosi.conf.d/10-test.conf"), []byte("[Build]\nEnvironment=BAR=override\nEnvironment=BAZ=override\n"), 0o644)
	m = mustLoad(t, dir).Main()
	eq(t, "Environment with mkosi.local/", m.Environment, map[string]string{"FOO": "override", "BAR": "override", "BAZ": "override"})
}

func TestSubdirLayout(t *testing.T) {
	dir := writeProject(t, map[string]string{"mkosi/mkosi.conf": "[Output]\nOutput=qed\n", "mkosi/mkosi.extra/": ""})
	l := mustLoad(t, dir)
	eq(t, "Output", l.Main().Output, "qed")
	eq(t, "ConfigDir", l.ConfigDir, dir+"/mkosi")
	eq(t, "ExtraTrees", l.Main().ExtraTrees, []Tree{{Source: dir + "/mkosi/mkosi.extra"}})
	os.WriteFile(filepath.Join(dir, "mkosi.conf"), []byte("[Output]\nOutput=abc\n"), 0o644)
	eq(t, "Output with top-level mkosi.conf", mustLoad(t, dir).Main().Output, "abc")
}

func TestConfDFilter(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf.d/10-file.conf":               "[Content]\nPackages=yes",
		"mkosi.conf.d/20-file.noconf":             "[Content]\nPackages=nope",
		"mkosi.conf.d/05-dir/mkosi.conf":          "[Content]\nPackages=fromdir",
		"mkosi.conf.d/05-dir/mkosi.conf.d/x.conf": "[Content]\nPackages=nested",
		"mkosi.conf.d/30-last.conf":               "[Content]\nPackages=\n",
		"mkosi.conf.d/40-after.conf":              "[Content]\nPackages=after",
	})
	eq(t, "Packages", mustLoad(t, dir).Main().Packages, []string{"after"})
	os.Remove(filepath.Join(dir, "mkosi.conf.d/30-last.conf"))
	eq(t, "Packages", mustLoad(t, dir).Main().Packages, []string{"after", "fromdir", "nested", "yes"})
}

func TestIncludes(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf":                  "[Include]\nInclude=abc.conf\n[Config]\nInclude=abc.conf\n[Content]\nBuildPackages=abc\n",
		"abc.conf":                    "[Content]\nBuildPackages=def\n",
		"mkosi.images/one.conf":       "[Config]\nInclude=abc.conf\n",
		"mkosi.images/two/mkosi.conf": "[Include]\nInclude=../../abc.conf\n",
		"incdir/mkosi.conf":           "[Content]\nPackages=incdir\n",
		"incdir/mkosi.conf.d/a.conf":  "[Content]\nPackages=incdir-dropin\n",
	})
	l := mustLoad(t, dir)
	eq(t, "main BuildPackages", l.Main().BuildPackages, []string{"abc", "def"})
	eq(t, "one", l.Image("one").BuildPackages, []string{"def"})
	eq(t, "two", l.Image("two").BuildPackages, []string{"def"})

	os.WriteFile(filepath.Join(dir, "mkosi.conf"), []byte("[Include]\nInclude=incdir\n"), 0o644)
	eq(t, "directory include", mustLoad(t, dir).Main().Packages, []string{"incdir", "incdir-dropin"})

	// mkosi's built-in configurations: read from an installed mkosi, or
	// the image is unbuildable (loading still succeeds).
	dir = writeProject(t, map[string]string{"mkosi.conf": "[Include]\nInclude=mkosi-vm\n[Content]\nPackages=own\n"})
	err := mustLoad(t, dir).Main().CheckSupported()
	if err == nil || !strings.Contains(err.Error(), "mkosi.conf:2:1: error: image main: Include=mkosi-vm: mkosi's built-in configuration; no installed mkosi") ||
		strings.Count(err.Error(), "Include=") != 1 {
		t.Errorf("error %v", err)
	}
	res := writeProject(t, map[string]string{"mkosi-vm/mkosi.conf": "[Content]\nPackages=from-vm\n",
		"mkosi-vm/mkosi.conf.d/x.conf": "[Match]\nDistribution=debian\n[Content]\nPackages=debian-vm\n"})
	vm := mustLoad(t, dir, func(o *LoadOptions) { o.Resources = res }).Main()
	eq(t, "mkosi-vm packages", vm.Packages, []string{"debian-vm", "from-vm", "own"})
	for _, u := range vm.Unsupported {
		if u.Name == "Include" {
			t.Errorf("unsupported %v with mkosi-vm installed", u)
		}
	}
	// An include of itself is parsed once.
	dir = writeProject(t, map[string]string{"mkosi.conf": "[Include]\nInclude=mkosi.conf\n[Content]\nPackages=a\n"})
	eq(t, "self include", mustLoad(t, dir).Main().Packages, []string{"a", "a"})
}

func TestProfiles(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.profiles/profile.conf": "[Distribution]\nDistribution=fedora\n[Runtime]\nKVM=yes\n",
		"mkosi.conf":                  "[Config]\nProfiles=profile\n",
		"mkosi.conf.d/abc.conf":       "[Distribution]\nDistribution=debian\n",
	})
	m := mustLoad(t, dir).Main()
	eq(t, "profiles", m.Profiles, []string{"profile"})
	eq(t, "profile overrides conf.d", m.Distribution, "fedora")

	os.Remove(filepath.Join(dir, "mkosi.conf"))
	m = mustLoad(t, dir, withProfiles("profile")).Main()
	eq(t, "profile from options", m.Distribution, "fedora")

	os.WriteFile(filepath.Join(dir, "mkosi.conf"), []byte("[Config]\nProfiles=profile,abc\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "mkosi.profiles/abc.conf"), []byte("[Match]\nProfiles=abc\n[Distribution]\nDistribution=opensuse\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "mkosi.images/subimage/mkosi.profiles"), 0o755)
	os.WriteFile(filepath.Join(dir, "mkosi.images/subimage/mkosi.profiles/abc.conf"), []byte("[Build]\nEnvironment=Image=%I\n"), 0o644)
	l := mustLoad(t, dir)
	eq(t, "profiles", l.Main().Profiles, []string{"profile", "abc"})
	eq(t, "Distribution", l.Main().Distribution, "opensuse")
	eq(t, "subimage profile", l.Image("subimage").Environment, map[string]string{"Image": "subimage"})
	eq(t, "subimage inherits profiles", l.Image("subimage").Profiles, []string{"profile", "abc"})
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		opts       func(*LoadOptions)
		matched    bool
	}{
		{"format or", "[Match]\nFormat=|directory\nFormat=|disk\n", nil, true},
		{"format or none", "[Match]\nFormat=|directory\nFormat=|tar\n", nil, false},
		{"two match sections both", "[Match]\nFormat=|disk\nFormat=|directory\n[Match]\nArchitecture=|x86-64\nArchitecture=|arm64\n", nil, true},
		{"two match sections one", "[Match]\nFormat=|disk\n[Match]\nArchitecture=|s390x\n", nil, false},
		{"trigger first", "[TriggerMatch]\nFormat=disk\nArchitecture=x86-64\n[TriggerMatch]\nFormat=directory\nArchitecture=arm64\n", nil, true},
		{"trigger none fully", "[TriggerMatch]\nFormat=disk\nArchitecture=arm64\n[TriggerMatch]\nFormat=directory\nArchitecture=x86-64\n", nil, false},
		{"trigger with or", "[TriggerMatch]\nFormat=|tar\nFormat=|disk\n[TriggerMatch]\nFormat=directory\n", nil, true},
		{"trigger or and plain", "[TriggerMatch]\nFormat=|disk\nFormat=|directory\nArchitecture=arm64\n[TriggerMatch]\nFormat=directory\n", nil, false},
		{"match and trigger", "[Match]\nFormat=disk\n[TriggerMatch]\nArchitecture=arm64\n[TriggerMatch]\nArchitecture=x86-64\n", nil, true},
		{"match fails trigger ok", "[Match]\nFormat=tar\n[TriggerMatch]\nArchitecture=x86-64\n", nil, false},
		{"negate", "[Match]\nDistribution=!fedora\n", nil, true},
		{"negate fails", "[Match]\nDistribution=!debian\n", nil, false},
		{"release", "[Match]\nRelease=trixie\n", nil, true},
		{"release other", "[Match]\nRelease=bookworm\n", nil, false},
		{"empty profiles", "[Match]\nProfiles=\n", nil, true},
		{"empty profiles with profile", "[Match]\nProfiles=\n", withProfiles("p"), false},
		{"profile", "[Match]\nProfiles=p\n", withProfiles("q", "p"), true},
		{"uefi", "[Match]\nArchitecture=uefi\n", nil, true},
		{"image", "[Match]\nImage=main\n", nil, true},
		{"path exists", "[Match]\nPathExists=mkosi.conf\n", nil, true},
		{"path missing", "[Match]\nPathExists=nope\n", nil, false},
		{"host arch", "[Match]\nHostArchitecture=x86-64\n", nil, true},
		{"systemd version", "[Match]\nSystemdVersion=>=255\n", nil, true},
		{"systemd version low", "[Match]\nSystemdVersion=<255\n", nil, false},
		{"specifier in match", "[Match]\nDistribution=%d\n", nil, true},
		{"bootable default", "[Match]\nBootable=auto\n", nil, true},
		{"environment", "[Match]\nEnvironment=NOPE\n", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeProject(t, map[string]string{
				"mkosi.conf":                tc.conf,
				"mkosi.conf.d/x.conf":       "[Output]\nImageId=abcde\n",
				"mkosi.conf.d/y/mkosi.conf": "[Match]\nImageId=abc*\n[Content]\nPackages=glob-matched\n",
			})
			var mods []func(*LoadOptions)
			if tc.opts != nil {
				mods = append(mods, tc.opts)
			}
			m := mustLoad(t, dir, mods...).Main()
			if got := m.ImageID == "abcde"; got != tc.matched {
				t.Errorf("matched = %v, want %v", got, tc.matched)
			}
			if tc.matched {
				eq(t, "glob match in drop-in dir", m.Packages, []string{"glob-matched"})
			}
		})
	}
}

func TestMatchOnValues(t *testing.T) {
	for _, tc := range []struct {
		version, pattern string
		want             bool
	}{
		{"1.2.3", "1.2.3", true}, {"1.2.3", "==1.2.3", true}, {"1.2.3", "!=1.2.3", false}, {"1.2.3", ">1.2", true},
		{"1.2.3", "<1.2", false}, {"1.2.3", ">=1.2.3", true}, {"1.2.3", "<=1.2.2", false}, {"1.2.3", "<1.10", true},
	} {
		dir := writeProject(t, map[string]string{
			"mkosi.conf":          "[Output]\nImageVersion=" + tc.version + "\n[Build]\nEnvironment=K=V\n",
			"mkosi.conf.d/m.conf": "[Match]\nImageVersion=" + tc.pattern + "\nEnvironment=K=V\n[Content]\nPackages=m\n",
		})
		if got := len(mustLoad(t, dir).Main().Packages) == 1; got != tc.want {
			t.Errorf("ImageVersion=%s vs %s: %v", tc.version, tc.pattern, got)
		}
	}
	// Matching happens on the value at the time the file is parsed.
	dir := writeProject(t, map[string]string{
		"mkosi.conf":           "[Distribution]\nDistribution=fedora\n",
		"mkosi.conf.d/10.conf": "[Match]\nDistribution=fedora\n[Distribution]\nDistribution=opensuse\n",
		"mkosi.conf.d/20.conf": "[Match]\nDistribution=fedora\n[Content]\nPackages=late\n",
	})
	m := mustLoad(t, dir).Main()
	eq(t, "Distribution", m.Distribution, "opensuse")
	eq(t, "Packages", m.Packages, []string{})

	for conf, want := range map[string]string{
		"[Match]\nPackages=x\n":             "Packages cannot be used in [Match]",
		"[Match]\nFoo=x\n":                  "Foo cannot be used in [Match]",
		"[Match]\nHostArchitecture=amd64\n": "'amd64' is not a valid Architecture",
		"[Match]\nFormat=Disk\n":            "not a valid OutputFormat",
	} {
		err := loadErr(t, writeProject(t, map[string]string{"mkosi.conf": conf}))
		if d, ok := diag.As(err); !ok || d.Pos.Line != 2 || !strings.Contains(d.Msg, want) {
			t.Errorf("%q: %v", conf, err)
		}
	}
}

func TestAssert(t *testing.T) {
	for _, tc := range []struct {
		conf, profile, want string
	}{
		{"[Assert]\nProfiles=a\n", "", "Profiles=a in [Assert] section was not satisfied"},
		{"[Assert]\nProfiles=a\n", "a", ""},
		{"[Assert]\nProfiles=a\n[Assert]\nImage=other\n", "a", "Image=other in [Assert] section was not satisfied"},
		{"[TriggerAssert]\nProfiles=a\n[TriggerAssert]\nProfiles=b\n", "", "none of the [TriggerAssert] sections was satisfied"},
		{"[TriggerAssert]\nProfiles=a\n[TriggerAssert]\nProfiles=b\n", "b", ""},
		{"[Assert]\nProfiles=|a\nProfiles=|b\n", "", "trigger condition in [Assert] section was not satisfied"},
		{"[Assert]\nProfiles=|a\nProfiles=|b\n", "b", ""},
	} {
		dir := writeProject(t, map[string]string{"mkosi.conf": tc.conf})
		var o []func(*LoadOptions)
		if tc.profile != "" {
			o = append(o, withProfiles(tc.profile))
		}
		if tc.want == "" {
			mustLoad(t, dir, o...)
			continue
		}
		err := loadErr(t, dir, o...)
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "mkosi.conf") {
			t.Errorf("%q: %v, want %q", tc.conf, err, tc.want)
		}
	}
}

func TestSubimageScopes(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf": `[Distribution]
Distribution=debian
Release=bookworm
[Output]
ImageVersion=1.2.3
OutputDirectory=mkosi.output
[Content]
Packages=main-only
[Build]
Environment=PASSED=1 NOTPASSED=2
[Config]
PassEnvironment=PASSED
`,
		"mkosi.output/":                    "",
		"mkosi.images/one.conf":            "[Content]\nPackages=one\n",
		"mkosi.images/two/mkosi.conf":      "[Content]\nPackages=two\n[Output]\nImageVersion=4.5.6\n",
		"mkosi.images/two/mkosi.skeleton/": "",
	})
	l := mustLoad(t, dir)
	one, two, m := l.Image("one"), l.Image("two"), l.Main()
	eq(t, "order", names(l.Project), []string{"one", "two", "main"})
	for _, im := range []*Image{one, two} {
		eq(t, im.Name+" Distribution", im.Distribution, "debian")
		eq(t, im.Name+" Release", im.Release, "bookworm")
		eq(t, im.Name+" OutputDirectory", im.OutputDirectory, dir+"/mkosi.output")
		eq(t, im.Name+" Environment", im.Environment, map[string]string{"PASSED": "1"})
	}
	eq(t, "one packages", one.Packages, []string{"one"})
	eq(t, "two packages", two.Packages, []string{"two"})
	eq(t, "main packages", m.Packages, []string{"main-only"})
	eq(t, "one version inherited", one.ImageVersion, "1.2.3")
	eq(t, "two version overridden", two.ImageVersion, "4.5.6")
	eq(t, "two output", two.Output, "two_4.5.6")
	eq(t, "two skeleton", two.SkeletonTrees, []Tree{{Source: dir + "/mkosi.images/two/mkosi.skeleton"}})
	eq(t, "main default dependencies", m.Dependencies, []string{"one", "two"})

	// Universal and main-only settings cannot be set in a subimage.
	for conf, name := range map[string]string{
		"[Distribution]\nRelease=sid\n":    "Release",
		"[Output]\nOutputDirectory=/tmp\n": "OutputDirectory",
		"[Config]\nPassEnvironment=X\n":    "PassEnvironment",
		"[Runtime]\nRAM=4G\n":              "RAM",
		"[Content]\nSourceDateEpoch=1\n":   "SourceDateEpoch",
	} {
		d := writeProject(t, map[string]string{"mkosi.conf": "", "mkosi.images/sub/mkosi.conf": "\n" + conf})
		err := loadErr(t, d)
		de, ok := diag.As(err)
		if !ok || de.Pos.File != filepath.Join(d, "mkosi.images/sub/mkosi.conf") || de.Pos.Line != 3 ||
			de.Msg != "setting "+name+" cannot be configured in sub image" {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Default files of universal settings are not picked up in subimages.
	d := writeProject(t, map[string]string{"mkosi.conf": "", "mkosi.images/sub/mkosi.output/": "", "mkosi.images/sub/mkosi.conf": ""})
	eq(t, "sub OutputDirectory", mustLoad(t, d).Image("sub").OutputDirectory, "")
}

func TestDependencies(t *testing.T) {
	files := map[string]string{
		"mkosi.conf":                "[Output]\nFormat=none\n",
		"mkosi.images/a/mkosi.conf": "[Config]\nDependencies=c\n",
		"mkosi.images/b/mkosi.conf": "[Config]\nDependencies=a,c\n",
		"mkosi.images/c/mkosi.conf": "",
		"mkosi.images/d.conf":       "[Match]\nProfiles=d\n",
		"mkosi.images/README.md":    "not an image",
	}
	l := mustLoad(t, writeProject(t, files))
	eq(t, "order", names(l.Project), []string{"c", "a", "b", "main"})
	eq(t, "default deps skip unmatched", l.Main().Dependencies, []string{"a", "b", "c"})
	l = mustLoad(t, writeProject(t, files), withProfiles("d"))
	eq(t, "order with d", names(l.Project), []string{"c", "d", "a", "b", "main"})

	files["mkosi.conf"] = "[Config]\nDependencies=a\n"
	l = mustLoad(t, writeProject(t, files))
	eq(t, "only what main needs", names(l.Project), []string{"c", "a", "main"})

	files["mkosi.conf"] = "[Config]\nDependencies=\n"
	eq(t, "none", names(mustLoad(t, writeProject(t, files)).Project), []string{"main"})

	files["mkosi.conf"] = "\n[Config]\nDependencies=zzz\n"
	err := loadErr(t, writeProject(t, files))
	if d, ok := diag.As(err); !ok || d.Pos.Line != 3 || !strings.Contains(d.Msg, "no image found with name zzz") {
		t.Errorf("missing: %v", err)
	}
	files["mkosi.conf"] = ""
	files["mkosi.images/c/mkosi.conf"] = "[Config]\nDependencies=b\n"
	err = loadErr(t, writeProject(t, files))
	if !strings.Contains(err.Error(), "image dependency cycle detected: ") || !strings.Contains(err.Error(), "mkosi.images/") {
		t.Errorf("cycle: %v", err)
	}
	files["mkosi.images/c/mkosi.conf"] = "[Config]\nDependencies=nope\n"
	err = loadErr(t, writeProject(t, files))
	if !strings.Contains(err.Error(), "depends on nope") || !strings.Contains(err.Error(), "mkosi.images/c/mkosi.conf:2") {
		t.Errorf("missing in subimage: %v", err)
	}
}

func TestUnsupported(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf":                     "[Output]\nFormat=none\n[Validation]\nSecureBoot=no\nChecksum=yes\n",
		"mkosi.images/a/mkosi.conf":      "[Output]\nFormat=sysext\n[Content]\nBootable=yes\nHostname=x\nAutologin=no\n",
		"mkosi.images/a/mkosi.postinst":  "#!/bin/sh\n",
		"mkosi.images/b/mkosi.conf":      "[Output]\nFormat=uki\n",
		"mkosi.images/c/mkosi.conf":      "[Output]\nFormat=directory\n[Content]\nRootShell=/bin/zsh\n[Validation]\nChecksum=yes\n[Runtime]\n",
		"mkosi.images/c/mkosi.build.d/x": "",
	})
	l := mustLoad(t, dir)
	got := map[string][]string{}
	for _, im := range l.Images {
		for _, u := range im.Unsupported {
			p := ""
			if u.Pos.File != "" {
				p = u.Pos.String()[len(dir)+1:]
			}
			got[im.Name] = append(got[im.Name], u.Name+"@"+p)
		}
	}
	eq(t, "unsupported", got, map[string][]string{
		// Hostname= on a sysext: mkosi applies no first-boot settings to
		// extensions, so it is no gap there (it is on a base tree).
		"a": {"Bootable@mkosi.images/a/mkosi.conf:4:1"},
		"b": {"Format@mkosi.images/b/mkosi.conf:2:1"},
		// Checksum=yes: no gap anywhere (Format=none has nothing to sum).
		"c": {"RootShell@mkosi.images/c/mkosi.conf:4:1"},
		// a is bootable: mkosi adds its default initrd.
		"default-initrd": {"Format@mkosi.images/a/mkosi.conf:4:1", "Include@mkosi.images/a/mkosi.conf:4:1"},
	})
	err := l.Image("a").CheckSupported()
	if err == nil || !strings.Contains(err.Error(), "mkosi.images/a/mkosi.conf:4:1: error: image a: Bootable=yes is not supported by sxb yet") {
		t.Errorf("CheckSupported: %v", err)
	}
	// An executable mkosi.version would be run by mkosi; sxb refuses.
	dir = writeProject(t, map[string]string{"mkosi.conf": ""})
	os.WriteFile(filepath.Join(dir, "mkosi.version"), []byte("#!/bin/sh\necho 1\n"), 0o755)
	if err := loadErr(t, dir); !strings.Contains(err.Error(), "mkosi.version is executable") {
		t.Errorf("executable mkosi.version: %v", err)
	}
}

func TestSymlinkLoop(t *testing.T) {
	dir := writeProject(t, map[string]string{"mkosi.conf": "", "mkosi.conf.d/": ""})
	if err := os.Symlink("..", filepath.Join(dir, "mkosi.conf.d/loop")); err != nil {
		t.Fatal(err)
	}
	// The kernel stops resolving after 40 symlinks; like mkosi, the
	// unreadable entry is skipped and loading terminates.
	mustLoad(t, dir)
}

func TestNoProject(t *testing.T) {
	err := loadErr(t, t.TempDir())
	if !strings.Contains(err.Error(), "no mkosi configuration found") {
		t.Errorf("%v", err)
	}
}

func TestDefaultFiles(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf":                  "[Output]\nFormat=sysext\n",
		"mkosi.key":                   "KEY",
		"mkosi.crt":                   "CRT",
		"mkosi.output/":               "",
		"mkosi.cache/":                "",
		"mkosi.repart/00-root.conf":   "[Partition]\nType=root\n",
		"mkosi.version":               "7\n",
		"mkosi.images/sub/mkosi.conf": "[Output]\nFormat=sysext\n",
		"mkosi.images/sub/mkosi.key":  "ignored: VerityKey is universal",
	})
	os.Chmod(filepath.Join(dir, "mkosi.key"), 0o600)
	l := mustLoad(t, dir)
	m := l.Main()
	eq(t, "VerityKey", m.VerityKey, dir+"/mkosi.key")
	eq(t, "VerityCertificate", m.VerityCertificate, dir+"/mkosi.crt")
	eq(t, "SecureBootKey", m.SecureBootKey, dir+"/mkosi.key")
	eq(t, "OutputDirectory", m.OutputDirectory, dir+"/mkosi.output")
	eq(t, "CacheDirectory", m.CacheDirectory, dir+"/mkosi.cache")
	eq(t, "RepartDirs", m.RepartDirs, []string{dir + "/mkosi.repart"})
	eq(t, "ImageVersion", m.ImageVersion, "7")
	eq(t, "Pos of a default file", m.Pos["ImageVersion"], diag.Pos{File: dir + "/mkosi.version"})
	eq(t, "EffectiveVerity with key and certificate", m.EffectiveVerity(), "signed")
	sub := l.Image("sub")
	eq(t, "sub VerityKey from main", sub.VerityKey, dir+"/mkosi.key")
	eq(t, "sub output", sub.OutputFile(), "sub_7.raw")
	if _, _, ok := sub.OutputSymlink(); !ok {
		t.Errorf("no symlink for %s", sub.OutputFile())
	}
	eq(t, "main builds", m.Builds(), true)
	eq(t, "sub EffectiveVerity", sub.EffectiveVerity(), "signed")
}

func TestBuilds(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf":             "[Distribution]\nDistribution=debian\n",
		"mkosi.images/base.conf": "[Output]\nFormat=directory\n[Content]\nPackages=bash\n",
		"mkosi.images/full.conf": "[Content]\nPackages=linux-image-amd64\n",
	})
	l := mustLoad(t, dir)
	eq(t, "main builds", l.Main().Builds(), false)
	eq(t, "main unsupported", l.Main().Unsupported, []Setting(nil))
	eq(t, "base builds", l.Image("base").Builds(), true)
	full := l.Image("full")
	if len(full.Unsupported) != 1 || full.Unsupported[0].Name != "Format" {
		t.Errorf("full disk image without repart: %v", full.Unsupported)
	}
}

// TestDefaultInitrd checks the image mkosi synthesizes for a bootable
// image with a kernel: settings forced and inherited from the main image,
// then mkosi-initrd from the resources, as a dependency of that image.
func TestDefaultInitrd(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf": "[Distribution]\nDistribution=debian\nRelease=trixie\n[Output]\nImageVersion=3\n" +
			"[Content]\nPackages=linux-image-amd64\nInitrdPackages=extra-initrd\n",
		"mkosi.images/base/mkosi.conf": "[Output]\nFormat=directory\n",
	})
	res := writeProject(t, map[string]string{"mkosi-initrd/mkosi.conf": "[Output]\nOutput=initrd\nFormat=cpio\n[Content]\nBootable=no\nPackages=systemd\n"})
	l := mustLoad(t, dir, func(o *LoadOptions) { o.Resources = res })
	var names []string
	for _, im := range l.Images {
		names = append(names, im.Name)
	}
	eq(t, "images", names, []string{"base", "default-initrd", "main"})
	initrd := l.Image("default-initrd")
	eq(t, "initrd", []any{initrd.Format, initrd.Output, initrd.Release, initrd.ImageVersion, initrd.Packages},
		[]any{"cpio", "initrd", "trixie", "3", []string{"extra-initrd", "systemd"}})
	eq(t, "main deps", l.Main().Dependencies, []string{"base", "default-initrd"})
	if err := initrd.CheckSupported(); err == nil || !strings.Contains(err.Error(), "mkosi.conf:7:1: error: image default-initrd: Format=cpio: the default initrd") {
		t.Errorf("initrd: %v", err)
	}
	js, err := l.SummaryJSON()
	if err != nil || !strings.Contains(string(js), `"Image": "default-initrd"`) {
		t.Errorf("summary: %v\n%s", err, js)
	}
	// Initrd* lists collect every file's values, as mkosi's lists do;
	// mkosi-initrd's own packages join them (and sort the list, as
	// mkosi's package lists sort on every assignment).
	dir = writeProject(t, map[string]string{
		"mkosi.conf": "[Distribution]\nDistribution=debian\n[Content]\nPackages=linux-image-amd64\n" +
			"InitrdVolatilePackages=systemd udev\nInitrdPackages=b\n",
		"mkosi.conf.d/d.conf": "[Content]\nInitrdVolatilePackages=systemd-resolved\nInitrdPackages=a\n",
	})
	res = writeProject(t, map[string]string{"mkosi-initrd/mkosi.conf": "[Output]\nFormat=cpio\n[Content]\nVolatilePackages=kmod\n"})
	l = mustLoad(t, dir, func(o *LoadOptions) { o.Resources = res })
	initrd = l.Image("default-initrd")
	eq(t, "initrd volatile", initrd.Summary()["VolatilePackages"], []string{"kmod", "systemd", "systemd-resolved", "udev"})
	eq(t, "initrd packages", initrd.Packages, []string{"b", "a"})
	eq(t, "main InitrdPackages", l.Main().Summary()["InitrdPackages"], []string{"b", "a"})

	// Not bootable without a kernel package, nor with Bootable=no.
	for _, conf := range []string{"[Content]\nPackages=systemd\n", "[Content]\nBootable=no\nPackages=linux-image-amd64\n", "[Output]\nFormat=sysext\n[Content]\nPackages=linux-image-amd64\n"} {
		dir := writeProject(t, map[string]string{"mkosi.conf": "[Distribution]\nDistribution=debian\n" + conf})
		if im := mustLoad(t, dir).Project.Image("default-initrd"); im != nil {
			t.Errorf("%q: default initrd", conf)
		}
	}
}

// TestSandboxTrees checks the apt repositories of mkosi.sandbox/ (and its
// older names): sources extend mkosi's defaults, mkosi.sources replaces
// them, Signed-By resolves in the sandbox; what sxb cannot honour makes
// the image unbuildable.
func TestSandboxTrees(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf": "[Distribution]\nDistribution=debian\nRelease=trixie\n[Output]\nFormat=directory\n",
		"mkosi.sandbox/etc/apt/sources.list.d/extra.list":    "deb [signed-by=/usr/share/keyrings/extra.gpg] https://extra.example/debian trixie main\n",
		"mkosi.sandbox/usr/share/keyrings/extra.gpg":         "key",
		"mkosi.sandbox/etc/apt/sources.list.d/plain.sources": "Types: deb\nURIs: https://plain.example/\nSuites: trixie\nComponents: main contrib\n",
		"mkosi.sandbox/etc/apt/trusted.gpg.d/plain.gpg":      "key",
		"mkosi.sandbox/etc/apt/apt.conf.d/10proxy":           "Acquire::http::Proxy \"x\";\n",
	})
	im := mustLoad(t, dir).Main()
	if len(im.AptSources) != 2 || im.NoDefaultSources || len(im.Unsupported) != 0 {
		t.Fatalf("sources %+v replace %v unsupported %v", im.AptSources, im.NoDefaultSources, im.Unsupported)
	}
	eq(t, "extra keyring", im.AptSources[0].Keyring, filepath.Join(dir, "mkosi.sandbox/usr/share/keyrings/extra.gpg"))
	eq(t, "trusted.gpg.d", im.AptSources[1].Keyring, filepath.Join(dir, "mkosi.sandbox/etc/apt/trusted.gpg.d"))
	eq(t, "components", im.AptSources[1].Components, []string{"main", "contrib"})

	// mkosi.sources replaces mkosi's own; mkosi.pkgmngr/ is the old name.
	dir = writeProject(t, map[string]string{
		"mkosi.conf": "[Distribution]\nDistribution=debian\nRelease=trixie\n[Output]\nFormat=directory\n",
		"mkosi.pkgmngr/etc/apt/sources.list.d/mkosi.sources":          "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
		"mkosi.pkgmngr/usr/share/keyrings/debian-archive-keyring.gpg": "key",
	})
	im = mustLoad(t, dir).Main()
	if len(im.AptSources) != 1 || !im.NoDefaultSources {
		t.Errorf("mkosi.sources: %+v replace %v", im.AptSources, im.NoDefaultSources)
	}
	dir = writeProject(t, map[string]string{
		"mkosi.conf":              "[Distribution]\nDistribution=debian\nRelease=trixie\n[Output]\nFormat=directory\n[Build]\nPackageManagerTrees=pm\n",
		"pm/etc/apt/sources.list": "deb http://x.example/ trixie main\n",
	})
	if im = mustLoad(t, dir).Main(); len(im.AptSources) != 1 || im.AptSources[0].URI != "http://x.example/" {
		t.Errorf("PackageManagerTrees=: %+v", im.AptSources)
	}

	// apt preferences: preferences first, then preferences.d/ by name
	// (apt skips names with another extension than .pref).
	dir = writeProject(t, map[string]string{
		"mkosi.conf": "[Distribution]\nDistribution=debian\nRelease=trixie\n[Output]\nFormat=directory\n",
		"mkosi.sandbox/etc/apt/preferences.d/20-b.pref": "Package: b\nPin: version 2.*\nPin-Priority: 600\n",
		"mkosi.sandbox/etc/apt/preferences.d/10-a":      "Package: *\nPin: release a=trixie-backports\nPin-Priority: 100\n",
		"mkosi.sandbox/etc/apt/preferences.d/x.txt":     "not read",
		"mkosi.sandbox/etc/apt/preferences":             "Package: c\nPin: origin \"\"\nPin-Priority: -1\n",
	})
	im = mustLoad(t, dir).Main()
	if len(im.Unsupported) != 0 || len(im.AptPins) != 3 || im.AptPins[0].Packages[0] != "c" || im.AptPins[1].Release["a"] != "trixie-backports" ||
		im.AptPins[2].Version != "2.*" {
		t.Errorf("pins %+v unsupported %v", im.AptPins, im.Unsupported)
	}

	// dnf's .repo files add repositories to Fedora's defaults, their
	// variables expanded and their keys found in the sandbox.
	dir = writeProject(t, map[string]string{
		"mkosi.conf": "[Distribution]\nDistribution=fedora\nRelease=41\nArchitecture=x86-64\n[Output]\nFormat=directory\n",
		"mkosi.sandbox/etc/yum.repos.d/extra.repo": "[extra]\nbaseurl=https://extra.example/$releasever/$basearch/\ngpgkey=file:///etc/pki/rpm-gpg/extra.asc\n" +
			"[off]\nbaseurl=https://off.example/\nenabled=0\n",
		"mkosi.sandbox/etc/pki/rpm-gpg/extra.asc":   "key",
		"mkosi.sandbox/etc/zypp/repos.d/other.repo": "[ignored]\nmirrorlist=https://x/\n",
	})
	im = mustLoad(t, dir).Main()
	eq(t, "fedora repositories", im.Repositories, []string{"release", "updates", "https://extra.example/41/x86_64/"})
	eq(t, "fedora keys", im.RepoKeys, []string{filepath.Join(dir, "mkosi.sandbox/etc/pki/rpm-gpg/extra.asc")})
	if im.NoDefaultSources || len(im.Unsupported) != 0 {
		t.Errorf("fedora: replace %v unsupported %v", im.NoDefaultSources, im.Unsupported)
	}

	for name, tc := range map[string]struct{ files map[string]string }{
		"pinning":   {map[string]string{"mkosi.sandbox/etc/apt/preferences.d/pin": "Package: *\n"}},
		"no key":    {map[string]string{"mkosi.sandbox/etc/apt/sources.list": "deb [signed-by=/nonexistent/k.gpg] http://x/ trixie main\n"}},
		"flat":      {map[string]string{"mkosi.sandbox/etc/apt/sources.list": "deb http://x/ ./\n"}},
		"yum repos": {map[string]string{"mkosi.sandbox/etc/yum.repos.d/x.repo": "[x]\n", "mkosi.conf.d/f.conf": "[Distribution]\nDistribution=fedora\n"}},
	} {
		files := map[string]string{"mkosi.conf": "[Distribution]\nDistribution=debian\nRelease=trixie\n[Output]\nFormat=directory\n"}
		for k, v := range tc.files {
			files[k] = v
		}
		err := mustLoad(t, writeProject(t, files)).Main().CheckSupported()
		if err == nil || !strings.Contains(err.Error(), "image main: SandboxTrees=") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// [Match]BuildSources= is true when a build source is mounted at the
// target named (leading slashes and trailing ones do not count); the
// default build source (the project directory) has no target.
func TestMatchBuildSources(t *testing.T) {
	for _, tc := range []struct {
		sources, match string
		want           bool
	}{
		{"", "kernel", false},
		{"", "!kernel", true},
		{"src:kernel", "kernel", true},
		{"src:kernel/", "/kernel", true},
		{"src:./kernel", "kernel", true},
		{"src:kernel", "!kernel", false},
		{"src:other,src:kernel", "kernel", true},
		{"src", "src", false},
	} {
		conf := "[Distribution]\nDistribution=debian\n"
		if tc.sources != "" {
			conf += "[Build]\nBuildSources=" + tc.sources + "\n"
		}
		dir := writeProject(t, map[string]string{
			"mkosi.conf":          conf,
			"src/":                "",
			"mkosi.conf.d/k.conf": "[Match]\nBuildSources=" + tc.match + "\n[Content]\nPackages=k\n",
		})
		if got := len(mustLoad(t, dir).Main().Packages) == 1; got != tc.want {
			t.Errorf("BuildSources=%s, [Match]BuildSources=%s: matched %v, want %v", tc.sources, tc.match, got, tc.want)
		}
	}
	// The summary prints them as mkosi does: the project directory by
	// default, targets relative.
	dir := writeProject(t, map[string]string{"mkosi.conf": "", "src/": ""})
	eq(t, "default", mustLoad(t, dir).Main().Summary()["BuildSources"], []map[string]any{{"Source": dir, "Target": nil}})
	dir = writeProject(t, map[string]string{"mkosi.conf": "[Build]\nBuildSources=src:a/b/\n", "src/": ""})
	eq(t, "set", mustLoad(t, dir).Main().Summary()["BuildSources"], []map[string]any{{"Source": filepath.Join(dir, "src"), "Target": "a/b"}})
	for conf, want := range map[string]string{
		"[Build]\nBuildSources=nope\n":       "nope does not exist",
		"[Build]\nBuildSources=mkosi.conf\n": "mkosi.conf is not a directory",
	} {
		err := loadErr(t, writeProject(t, map[string]string{"mkosi.conf": conf}))
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", conf, err, want)
		}
	}
}

// OutputMode= is octal, printed as mkosi prints it (an integer).
func TestOutputMode(t *testing.T) {
	im := mustLoad(t, writeProject(t, map[string]string{"mkosi.conf": "[Output]\nOutputMode=640\n"})).Main()
	eq(t, "OutputMode", []any{im.OutputMode, im.Summary()["OutputMode"]}, []any{int64(0o640), int64(0o640)})
	im = mustLoad(t, writeProject(t, map[string]string{"mkosi.conf": ""})).Main()
	eq(t, "unset", []any{im.OutputMode, im.Summary()["OutputMode"]}, []any{int64(-1), nil})
}

// ExtraTrees= naming a file copies it (to its target, or into the root
// under its own name); only what mkosi would unpack (a tar archive or a
// disk image without a target) is beyond sxb.
func TestFileTrees(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf": "[Distribution]\nDistribution=debian\n[Output]\nFormat=directory\n[Content]\n" +
			"ExtraTrees=unit.service:/usr/lib/systemd/system\nExtraTrees=tool.py\nExtraTrees=rootfs.tar.zst:/srv/rootfs.tar.zst\n",
		"unit.service": "", "tool.py": "", "rootfs.tar.zst": "",
	})
	im := mustLoad(t, dir).Main()
	var got []string
	for _, tr := range im.ExtraTrees {
		got = append(got, filepath.Base(tr.Source)+"@"+tr.ImageTarget())
	}
	eq(t, "targets", got, []string{"unit.service@/usr/lib/systemd/system", "tool.py@/tool.py", "rootfs.tar.zst@/srv/rootfs.tar.zst"})
	if err := im.CheckSupported(); err != nil {
		t.Errorf("file trees: %v", err)
	}
	for _, tree := range []string{"rootfs.tar.zst", "disk.raw", "x.tar"} {
		dir := writeProject(t, map[string]string{
			"mkosi.conf": "[Distribution]\nDistribution=debian\n[Output]\nFormat=directory\n[Content]\nExtraTrees=" + tree + "\n",
			tree:         "",
		})
		err := mustLoad(t, dir).Main().CheckSupported()
		if err == nil || !strings.Contains(err.Error(), "mkosi.conf:6:1: error: image main: ExtraTrees="+filepath.Join(dir, tree)+" (archives and disk images are not supported") {
			t.Errorf("%s: %v", tree, err)
		}
	}
}
