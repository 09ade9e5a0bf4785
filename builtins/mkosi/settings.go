package mkosi

import (
	"sort"
	"strings"

	"github.com/sxb-build/sxb/internal/arch"
)

// scope says how a setting travels between the main image and subimages
// (mkosi's SettingScope).
type scope int

const (
	scLocal         scope = iota // not passed down, configurable everywhere
	scUniversal                  // forced from the main image, main only
	scMultiversal                // forced from the main image, main only
	scInherit                    // passed down, overridable
	scMain                       // main image only, not passed down
	scTools                      // tools tree, main only
	scInitrd                     // initrd, main only
	scInitrdInherit              // like local for sxb
)

func (s scope) mainOnly() bool {
	return s == scMain || s == scTools || s == scInitrd || s == scMultiversal
}

// honour says what sxb does with a setting.
type honour int

const (
	// hModel: sxb reads and honours the setting.
	hModel honour = iota
	// hIgnore: the setting does not change the image (runtime, host
	// tooling, caches); sxb accepts and ignores it.
	hIgnore
	// hGap: the setting changes the image and sxb cannot do it yet; setting
	// it to anything but its neutral value is an honest-gap error at build.
	hGap
)

// setting describes one mkosi setting. Adding a setting is one line in
// the table below.
type setting struct {
	Name    string
	Section string
	Scope   scope
	Kind    *kind
	How     honour
	// Spec is the specifier character that expands to the setting's value.
	Spec byte
	// Files are default files (mkosi.<suffix>) found in a parsed directory.
	Files []string
	// DirFiles are default glob patterns (mkosi.<pattern>) in a directory.
	DirFiles []string
	// ReadFile means the default file's contents are the value.
	ReadFile bool
	// Compat are deprecated names that still work.
	Compat []string
	// Default is the static default (nil: the kind's empty value).
	Default any
	// DefaultFn computes the default from other settings.
	DefaultFn func(c *pctx) (any, error)
	// Neutral are raw values of a gap setting that mean "off".
	Neutral []string
	// Hidden settings are not printed by the summary (mkosi prints a
	// random default for them).
	Hidden bool
	// FirstBoot settings are what mkosi hands to systemd-firstboot, which
	// it never runs for an extension or an Overlay=yes image: there they
	// have no effect.
	FirstBoot bool
}

var (
	tString   = &kind{name: "string", parse: parseString, nullable: true, match: matchString}
	tStringNN = &kind{name: "string", parse: parseString, match: matchString}
	tBool     = &kind{name: "bool", parse: parseBool, empty: false}
	tFeature  = &kind{name: "feature", parse: parseFeature, empty: "auto", match: matchFeature}
	tList     = &kind{name: "list", parse: listParser(listOpts{}), nullable: true, empty: []string{}, match: matchList}
	tPackages = &kind{name: "list", parse: listParser(listOpts{sortPkgs: true}), nullable: true, empty: []string{}}
	tSpaced   = &kind{name: "list", parse: listParser(listOpts{delim: " "}), nullable: true, empty: []string{}}
	tProfiles = &kind{name: "list", parse: listParser(listOpts{item: parseProfile}), nullable: true, empty: []string{}, match: matchList}
	tPaths    = &kind{name: "list", parse: listParser(listOpts{item: itemPath(true)}), nullable: true, empty: []string{}}
	tPathsOpt = &kind{name: "list", parse: listParser(listOpts{item: itemPath(false)}), nullable: true, empty: []string{}}
	tScripts  = &kind{name: "list", parse: listParser(listOpts{item: itemPath(true), glob: true}), nullable: true, empty: []string{}}
	tTrees    = &kind{name: "trees", parse: treesParser(treeOpts{}), nullable: true, empty: []Tree{}}
	tTreesReq = &kind{name: "trees", parse: treesParser(treeOpts{required: true}), nullable: true, empty: []Tree{}}
	tSources  = &kind{name: "trees", parse: treesParser(treeOpts{required: true, directory: true, relTarget: true}),
		nullable: true, empty: []Tree{}, match: matchBuildSources}
	tInclude  = &kind{name: "list", parse: listParser(listOpts{item: itemInclude, noReset: true}), nullable: true, empty: []string{}}
	tEnv      = &kind{name: "dict", parse: parseEnvironment, nullable: true, empty: map[string]string{}, match: matchKeyValue}
	tPath     = &kind{name: "path", parse: pathParser(false), nullable: true}
	tKeyPath  = &kind{name: "path", parse: parseKeyPath, nullable: true}
	tBytes    = &kind{name: "int", parse: parseBytesValue, nullable: true}
	tEpoch    = &kind{name: "int", parse: parseEpoch, nullable: true}
	tLevel    = &kind{name: "int", parse: parseLevel}
	tMode     = &kind{name: "int", parse: parseMode, nullable: true}
	tFilename = &kind{name: "string", parse: parseFilename}
	tCompress = &kind{name: "enum", parse: parseCompression}
	tArtifact = &kind{name: "list", parse: parseArtifacts, nullable: true, empty: []string{}}
	tVersion  = &kind{name: "string", parse: parseString, nullable: true, match: matchVersion}
	tImageID  = &kind{name: "string", parse: parseString, nullable: true, match: matchGlob}
	tRaw      = &kind{name: "raw", parse: parseRaw, nullable: true}
	tSeed     = &kind{name: "uuid", parse: parseSeed, nullable: true}
	tManifest = &kind{name: "list", parse: listParser(listOpts{delim: ",", item: parseManifestFormat}), nullable: true, empty: []string{}}

	tDistribution = enumKind("Distribution", distributions, nil, "")
	tArch         = enumKind("Architecture", architectures, nil, "")
	tFormat       = enumKind("OutputFormat", formats, nil, "")
	tVerity       = enumKind("Verity", []string{"disabled", "hash", "signed", "defer", "auto"}, []string{"signed", "disabled"}, "")
)

var (
	distributions = []string{"fedora", "debian", "kali", "ubuntu", "postmarketos", "arch", "opensuse", "mageia",
		"centos", "rhel", "rhel-ubi", "openmandriva", "rocky", "alma", "azure", "custom"}
	architectures = mkosiArchitectures()
	formats       = []string{"confext", "cpio", "directory", "disk", "esp", "none", "portable", "sysext", "tar", "uki", "oci", "addon"}
)

// settings is the table of every setting mkosi knows. Settings sxb does not
// model are still listed so that they are recognised (no "unknown setting"
// warning) and scoped correctly.
var settings = []*setting{
	{Name: "Include", Section: "Include", Kind: tInclude},
	{Name: "Profiles", Section: "Config", Scope: scInherit, Kind: tProfiles, Compat: []string{"Profile"}},
	{Name: "Dependencies", Section: "Config", Kind: tList},
	{Name: "MinimumVersion", Section: "Config", Scope: scMain, Kind: tRaw, How: hIgnore},
	{Name: "ConfigureScripts", Section: "Config", Kind: tScripts, How: hGap, Files: []string{"configure"}},
	{Name: "PassEnvironment", Section: "Config", Scope: scMain, Kind: tSpaced},

	{Name: "Distribution", Section: "Distribution", Scope: scUniversal, Kind: tDistribution, Spec: 'd', DefaultFn: defaultDistribution},
	{Name: "Release", Section: "Distribution", Scope: scUniversal, Kind: tStringNN, Spec: 'r', DefaultFn: defaultRelease},
	{Name: "Architecture", Section: "Distribution", Scope: scUniversal, Kind: tArch, Spec: 'a', DefaultFn: defaultArchitecture},
	{Name: "Mirror", Section: "Distribution", Scope: scUniversal, Kind: tString},
	{Name: "Snapshot", Section: "Distribution", Scope: scUniversal, Kind: tRaw, How: hGap, Files: []string{"snapshot"}, ReadFile: true},
	{Name: "LocalMirror", Section: "Distribution", Scope: scUniversal, Kind: tString},
	{Name: "RepositoryKeyCheck", Section: "Distribution", Scope: scMultiversal, Kind: tRaw, How: hIgnore},
	{Name: "RepositoryKeyFetch", Section: "Distribution", Scope: scUniversal, Kind: tRaw, How: hIgnore},
	{Name: "Repositories", Section: "Distribution", Scope: scUniversal, Kind: tList},

	{Name: "Format", Section: "Output", Kind: tFormat, Spec: 't', Default: "disk"},
	{Name: "ManifestFormat", Section: "Output", Kind: tManifest},
	{Name: "Output", Section: "Output", Kind: tFilename, Spec: 'o', DefaultFn: defaultOutput},
	{Name: "OutputExtension", Section: "Output", Kind: tFilename, DefaultFn: defaultExtension},
	{Name: "OutputSize", Section: "Output", Kind: tBytes, How: hGap},
	{Name: "CompressOutput", Section: "Output", Kind: tCompress, DefaultFn: defaultCompression},
	{Name: "CompressLevel", Section: "Output", Scope: scInherit, Kind: tLevel, Default: int64(3)},
	{Name: "OutputDirectory", Section: "Output", Scope: scUniversal, Kind: tPath, Spec: 'O', Files: []string{"output"}},
	{Name: "OutputMode", Section: "Output", Scope: scUniversal, Kind: tMode},
	{Name: "ImageVersion", Section: "Output", Scope: scInherit, Kind: tVersion, Spec: 'v', Files: []string{"version"}, ReadFile: true},
	{Name: "ImageId", Section: "Output", Scope: scInherit, Kind: tImageID, Spec: 'i'},
	{Name: "OciLabels", Section: "Output", Kind: tRaw, How: hIgnore},
	{Name: "OciAnnotations", Section: "Output", Kind: tRaw, How: hIgnore},
	{Name: "SplitArtifacts", Section: "Output", Kind: tArtifact, Default: []string{"uki", "kernel", "initrd"}},
	{Name: "RepartDirectories", Section: "Output", Kind: tPaths, Files: []string{"repart"}},
	{Name: "SectorSize", Section: "Output", Scope: scInherit, Kind: tRaw, How: hGap},
	{Name: "Overlay", Section: "Output", Kind: tBool},
	{Name: "Seed", Section: "Output", Kind: tSeed, Files: []string{"seed"}, ReadFile: true, Hidden: true},
	{Name: "ElTorito", Section: "Output", Kind: tRaw, How: hGap, Neutral: neutralFeature},
	{Name: "ElToritoSystem", Section: "Output", Kind: tRaw, How: hIgnore},
	{Name: "ElToritoVolume", Section: "Output", Kind: tRaw, How: hIgnore},
	{Name: "ElToritoPublisher", Section: "Output", Kind: tRaw, How: hIgnore},
	{Name: "CleanScripts", Section: "Output", Kind: tScripts, Files: []string{"clean"}, DirFiles: []string{"clean.d/*"}},

	{Name: "Packages", Section: "Content", Kind: tPackages},
	{Name: "BuildPackages", Section: "Content", Kind: tPackages},
	{Name: "VolatilePackages", Section: "Content", Kind: tPackages},
	{Name: "PackageDirectories", Section: "Content", Scope: scUniversal, Kind: tPaths, How: hGap, Files: []string{"packages"}},
	{Name: "VolatilePackageDirectories", Section: "Content", Scope: scUniversal, Kind: tPaths, How: hGap},
	{Name: "WithRecommends", Section: "Content", Kind: tBool},
	{Name: "WithDocs", Section: "Content", Kind: tBool, Default: true},
	{Name: "BaseTrees", Section: "Content", Kind: tPathsOpt},
	{Name: "SkeletonTrees", Section: "Content", Kind: tTreesReq, Files: []string{"skeleton", "skeleton.tar"}},
	{Name: "ExtraTrees", Section: "Content", Kind: tTrees, Files: []string{"extra", "extra.tar"}},
	{Name: "RemovePackages", Section: "Content", Kind: tList, How: hGap},
	{Name: "RemoveFiles", Section: "Content", Kind: tList},
	{Name: "CleanPackageMetadata", Section: "Content", Kind: tFeature, How: hIgnore},
	{Name: "SourceDateEpoch", Section: "Content", Scope: scMultiversal, Kind: tEpoch, DefaultFn: defaultEpoch},
	{Name: "SyncScripts", Section: "Content", Kind: tScripts, Files: []string{"sync"}, DirFiles: []string{"sync.d/*"}},
	{Name: "PrepareScripts", Section: "Content", Kind: tScripts, Files: []string{"prepare", "prepare.chroot"}, DirFiles: []string{"prepare.d/*"}, Compat: []string{"PrepareScript"}},
	{Name: "BuildScripts", Section: "Content", Kind: tScripts, Files: []string{"build", "build.chroot"}, DirFiles: []string{"build.d/*"}, Compat: []string{"BuildScript"}},
	{Name: "PostInstallationScripts", Section: "Content", Kind: tScripts, Files: []string{"postinst", "postinst.chroot"}, DirFiles: []string{"postinst.d/*"}, Compat: []string{"PostInstallationScript"}},
	{Name: "FinalizeScripts", Section: "Content", Kind: tScripts, Files: []string{"finalize", "finalize.chroot"}, DirFiles: []string{"finalize.d/*"}, Compat: []string{"FinalizeScript"}},
	{Name: "PostOutputScripts", Section: "Content", Kind: tScripts, Files: []string{"postoutput"}, DirFiles: []string{"postoutput.d/*"}},
	{Name: "Bootable", Section: "Content", Kind: tFeature},
	{Name: "Bootloader", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "BiosBootloader", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "ShimBootloader", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "UnifiedKernelImages", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "UnifiedKernelImageFormat", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "UnifiedKernelImageProfiles", Section: "Content", Kind: tRaw, How: hIgnore, DirFiles: []string{"uki-profiles/*.conf"}},
	{Name: "Initrds", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "MicrocodeHost", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "InitrdProfiles", Section: "Content", Scope: scInitrd, Kind: tList, How: hIgnore},
	{Name: "InitrdPackages", Section: "Content", Scope: scInitrd, Kind: tList, How: hIgnore},
	{Name: "InitrdVolatilePackages", Section: "Content", Scope: scInitrd, Kind: tList, How: hIgnore},
	{Name: "Devicetrees", Section: "Content", Kind: tRaw, How: hIgnore, Compat: []string{"Devicetree"}},
	{Name: "Splash", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "KernelCommandLine", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "KernelModulesInclude", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "KernelModulesExclude", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "KernelModules", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "KernelModulesIncludeHost", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "KernelModulesInitrd", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "KernelModulesInitrdInclude", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "KernelModulesInitrdExclude", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "KernelInitrdModules", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "KernelModulesInitrdIncludeHost", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "FirmwareInclude", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "FirmwareExclude", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "FirmwareFiles", Section: "Content", Kind: tRaw, How: hIgnore},
	{Name: "Locale", Section: "Content", Kind: tRaw, How: hModel, FirstBoot: true},
	{Name: "LocaleMessages", Section: "Content", Kind: tRaw, How: hModel, FirstBoot: true},
	{Name: "Keymap", Section: "Content", Scope: scInitrdInherit, Kind: tRaw, How: hModel, FirstBoot: true},
	{Name: "Timezone", Section: "Content", Scope: scInitrdInherit, Kind: tRaw, How: hModel, FirstBoot: true},
	{Name: "Hostname", Section: "Content", Scope: scInitrdInherit, Kind: tRaw, How: hModel, FirstBoot: true},
	{Name: "RootPassword", Section: "Content", Scope: scInitrdInherit, Kind: tRaw, How: hGap, Files: []string{"rootpw"}, ReadFile: true, FirstBoot: true},
	{Name: "RootShell", Section: "Content", Kind: tRaw, How: hGap, FirstBoot: true},
	{Name: "MachineId", Section: "Content", Kind: tRaw, How: hGap, Files: []string{"machine-id"}, ReadFile: true},
	{Name: "Autologin", Section: "Content", Kind: tRaw, How: hGap, Neutral: neutralBool},
	{Name: "MakeInitrd", Section: "Content", Kind: tRaw, How: hGap, Neutral: neutralBool},
	{Name: "Ssh", Section: "Content", Kind: tRaw, How: hGap, Neutral: append([]string{"auto"}, neutralBool...)},
	{Name: "SELinuxRelabel", Section: "Content", Kind: tRaw, How: hGap, Neutral: neutralFeature},

	{Name: "SecureBoot", Section: "Validation", Kind: tRaw, How: hGap, Neutral: neutralBool},
	{Name: "SecureBootAutoEnroll", Section: "Validation", Kind: tRaw, How: hIgnore},
	{Name: "SecureBootKey", Section: "Validation", Scope: scUniversal, Kind: tKeyPath, Files: []string{"key"}},
	{Name: "SecureBootKeySource", Section: "Validation", Scope: scUniversal, Kind: tRaw, How: hGap, Neutral: []string{"file"}},
	{Name: "SecureBootCertificate", Section: "Validation", Scope: scUniversal, Kind: tKeyPath, Files: []string{"crt"}},
	{Name: "SecureBootCertificateSource", Section: "Validation", Scope: scUniversal, Kind: tRaw, How: hGap, Neutral: []string{"file"}},
	{Name: "SecureBootSignTool", Section: "Validation", Kind: tRaw, How: hIgnore},
	{Name: "Verity", Section: "Validation", Kind: tVerity, Default: "auto"},
	{Name: "VerityKey", Section: "Validation", Scope: scUniversal, Kind: tKeyPath, Files: []string{"key"}},
	{Name: "VerityKeySource", Section: "Validation", Scope: scUniversal, Kind: tRaw, How: hGap, Neutral: []string{"file"}},
	{Name: "VerityCertificate", Section: "Validation", Scope: scUniversal, Kind: tKeyPath, Files: []string{"crt"}},
	{Name: "VerityCertificateSource", Section: "Validation", Scope: scUniversal, Kind: tRaw, How: hGap, Neutral: []string{"file"}},
	{Name: "SignExpectedPcr", Section: "Validation", Kind: tRaw, How: hIgnore},
	{Name: "SignExpectedPcrKey", Section: "Validation", Scope: scInherit, Kind: tRaw, How: hIgnore, Files: []string{"key"}},
	{Name: "SignExpectedPcrKeySource", Section: "Validation", Scope: scInherit, Kind: tRaw, How: hIgnore},
	{Name: "SignExpectedPcrCertificate", Section: "Validation", Scope: scInherit, Kind: tRaw, How: hIgnore, Files: []string{"crt"}},
	{Name: "SignExpectedPcrCertificateSource", Section: "Validation", Scope: scInherit, Kind: tRaw, How: hIgnore},
	{Name: "Passphrase", Section: "Validation", Kind: tRaw, How: hGap, Files: []string{"passphrase"}},
	{Name: "Checksum", Section: "Validation", Kind: tBool},
	{Name: "Sign", Section: "Validation", Kind: tRaw, How: hGap, Neutral: neutralBool},
	{Name: "Key", Section: "Validation", Kind: tRaw, How: hIgnore},
	{Name: "OpenPGPTool", Section: "Validation", Kind: tRaw, How: hIgnore},

	{Name: "ToolsTree", Section: "Build", Scope: scUniversal, Kind: tRaw, How: hIgnore, Files: []string{"tools"}},
	{Name: "ToolsTreeDistribution", Section: "Build", Scope: scTools, Kind: tRaw, How: hIgnore},
	{Name: "ToolsTreeRelease", Section: "Build", Scope: scTools, Kind: tRaw, How: hIgnore},
	{Name: "ToolsTreeProfiles", Section: "Build", Scope: scTools, Kind: tRaw, How: hIgnore},
	{Name: "ToolsTreeMirror", Section: "Build", Scope: scTools, Kind: tRaw, How: hIgnore},
	{Name: "ToolsTreeRepositories", Section: "Build", Scope: scTools, Kind: tRaw, How: hIgnore},
	{Name: "ToolsTreeSandboxTrees", Section: "Build", Scope: scTools, Kind: tRaw, How: hIgnore, Compat: []string{"ToolsTreePackageManagerTrees"}},
	{Name: "ToolsTreePackages", Section: "Build", Scope: scTools, Kind: tRaw, How: hIgnore},
	{Name: "ToolsTreePackageDirectories", Section: "Build", Scope: scTools, Kind: tRaw, How: hIgnore},
	{Name: "ToolsTreeCertificates", Section: "Build", Scope: scUniversal, Kind: tRaw, How: hIgnore},
	{Name: "ExtraSearchPaths", Section: "Build", Scope: scUniversal, Kind: tRaw, How: hIgnore},
	{Name: "Incremental", Section: "Build", Scope: scUniversal, Kind: tRaw, How: hIgnore},
	{Name: "CacheOnly", Section: "Build", Scope: scInherit, Kind: tRaw, How: hIgnore},
	{Name: "SandboxTrees", Section: "Build", Scope: scUniversal, Kind: tTreesReq, Files: []string{"sandbox", "sandbox.tar", "pkgmngr", "pkgmngr.tar"}, Compat: []string{"PackageManagerTrees"}},
	{Name: "WorkspaceDirectory", Section: "Build", Scope: scMultiversal, Kind: tRaw, How: hIgnore},
	{Name: "CacheDirectory", Section: "Build", Scope: scUniversal, Kind: tPath, Files: []string{"cache"}},
	{Name: "CacheKey", Section: "Build", Scope: scInherit, Kind: tRaw, How: hIgnore},
	{Name: "PackageCacheDirectory", Section: "Build", Scope: scMultiversal, Kind: tRaw, How: hIgnore, Files: []string{"pkgcache"}},
	{Name: "BuildDirectory", Section: "Build", Scope: scUniversal, Kind: tRaw, Files: []string{"builddir"}},
	{Name: "BuildKey", Section: "Build", Scope: scInherit, Kind: tRaw, How: hIgnore},
	{Name: "UseSubvolumes", Section: "Build", Scope: scUniversal, Kind: tRaw, How: hIgnore},
	{Name: "RepartOffline", Section: "Build", Scope: scUniversal, Kind: tRaw, How: hIgnore},
	{Name: "History", Section: "Build", Scope: scMain, Kind: tRaw, How: hIgnore},
	{Name: "BuildSources", Section: "Build", Scope: scMultiversal, Kind: tSources, DefaultFn: defaultBuildSources},
	{Name: "BuildSourcesEphemeral", Section: "Build", Scope: scMultiversal, Kind: tRaw, How: hIgnore},
	{Name: "Environment", Section: "Build", Kind: tEnv},
	{Name: "EnvironmentFiles", Section: "Build", Kind: tPaths, Files: []string{"env"}},
	{Name: "WithTests", Section: "Build", Scope: scUniversal, Kind: tRaw, How: hIgnore},
	{Name: "WithNetwork", Section: "Build", Scope: scUniversal, Kind: tRaw},
	{Name: "ProxyUrl", Section: "Build", Scope: scMultiversal, Kind: tRaw, How: hIgnore},
	{Name: "ProxyExclude", Section: "Build", Scope: scMultiversal, Kind: tRaw, How: hIgnore},
	{Name: "ProxyPeerCertificate", Section: "Build", Scope: scMultiversal, Kind: tRaw, How: hIgnore},
	{Name: "ProxyClientCertificate", Section: "Build", Scope: scMultiversal, Kind: tRaw, How: hIgnore},
	{Name: "ProxyClientKey", Section: "Build", Scope: scMultiversal, Kind: tRaw, How: hIgnore},
	{Name: "MakeScriptsExecutable", Section: "Build", Scope: scMultiversal, Kind: tRaw, How: hIgnore},
	{Name: "ForeignUIDRange", Section: "Build", Scope: scMain, Kind: tRaw, How: hIgnore},
}

var (
	neutralBool    = []string{"0", "false", "no", "n", "f", "off", "never"}
	neutralFeature = append([]string{"auto", "disabled"}, neutralBool...)
)

// runtimeSettings are main-image [Runtime] settings: they only affect
// "mkosi boot/vm", never the image.
var runtimeSettings = []string{"NSpawnSettings", "Ephemeral", "Credentials", "KernelCommandLineExtra", "RuntimeTrees",
	"RuntimeSize", "RuntimeNetwork", "RuntimeBuildSources", "BindUser", "SshKey", "SshCertificate",
	"VirtualMachineMonitor", "Machine", "ForwardJournal", "SysupdateDirectory", "Console", "CPUs", "RAM", "MaxMem",
	"KVM", "CXL", "VSock", "VSockCID", "TPM", "Removable", "DiskType", "Firmware", "FirmwareVariables", "Linux",
	"Drives", "QemuArgs", "Register", "StorageTargetMode"}

var runtimeCompat = map[string][]string{"CPUs": {"QemuSmp"}, "RAM": {"QemuMem"}, "KVM": {"QemuKvm"},
	"VSock": {"QemuVsock"}, "VSockCID": {"QemuVsockConnectionId"}, "TPM": {"QemuSwtpm"}, "Removable": {"QemuRemovable"},
	"Firmware": {"QemuFirmware"}, "FirmwareVariables": {"QemuFirmwareVariables"}, "Linux": {"QemuKernel"}, "Drives": {"QemuDrives"}}

var (
	settingByName = map[string]*setting{}
	settingBySpec = map[byte]*setting{}
	sectionsKnown = map[string]bool{"Host": true}
)

func init() {
	for _, n := range runtimeSettings {
		s := &setting{Name: n, Section: "Runtime", Scope: scMain, Kind: tRaw, How: hIgnore, Compat: runtimeCompat[n]}
		switch n {
		case "SshKey":
			s.Files = []string{"key"}
		case "SshCertificate":
			s.Files = []string{"crt"}
		case "NSpawnSettings":
			s.Files = []string{"nspawn"}
		case "Credentials":
			s.Files = []string{"credentials"}
		case "SysupdateDirectory":
			s.Files = []string{"sysupdate"}
		}
		settings = append(settings, s)
	}
	for _, s := range settings {
		settingByName[s.Name] = s
		for _, c := range s.Compat {
			settingByName[c] = s
		}
		if s.Spec != 0 {
			settingBySpec[s.Spec] = s
		}
		sectionsKnown[s.Section] = true
	}
}

// SettingNames lists the canonical names of every setting mkosi knows,
// sorted.
func SettingNames() []string {
	var out []string
	for _, s := range settings {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}

func isTrigger(section string) bool { return strings.HasPrefix(section, "Trigger") }

// mkosiArchitectures are the values of mkosi's Architecture enum, spelt as
// mkosi writes them.
func mkosiArchitectures() []string {
	var out []string
	for _, a := range arch.All() {
		if m := a.Mkosi(); m != "" {
			out = append(out, m)
		}
	}
	return out
}
