package eval

import (
	"regexp"

	"github.com/sxb-build/sxb/builtins/image"
	"github.com/sxb-build/sxb/rules"
)

type attrKind int

const (
	kString attrKind = iota
	kBool
	kStrings
	kLabel
	kTrees
	kDict
	kPartitions
	kPath
	kEnum
	kScope
	kInt
)

type attrSpec struct {
	name     string
	kind     attrKind
	required bool
	enum     []string
}

var baseAttrs = []attrSpec{
	{name: "name", kind: kString, required: true},
	{name: "distribution", kind: kEnum, required: true, enum: rules.Distributions},
	{name: "release", kind: kString, required: true},
	{name: "architecture", kind: kString},
	{name: "mirror", kind: kString},
	{name: "repositories", kind: kStrings},
	{name: "packages", kind: kStrings, required: true},
	{name: "with_recommends", kind: kBool},
	{name: "with_docs", kind: kBool},
	{name: "scripts", kind: kBool},
	{name: "source_date_epoch", kind: kInt},
	{name: "firstboot", kind: kDict},
	{name: "extra_trees", kind: kTrees},
	{name: "skeleton_trees", kind: kTrees},
	{name: "remove_files", kind: kStrings},
	{name: "keyring", kind: kPath},
	{name: "output", kind: kEnum, enum: rules.BaseOutputs},
	{name: "base", kind: kLabel},
}

var extAttrs = []attrSpec{
	{name: "name", kind: kString, required: true},
	{name: "base", kind: kLabel},
	{name: "packages", kind: kStrings},
	{name: "extra_trees", kind: kTrees},
	{name: "remove_files", kind: kStrings},
	{name: "with_recommends", kind: kBool},
	{name: "with_docs", kind: kBool},
	{name: "scripts", kind: kBool},
	{name: "source_date_epoch", kind: kInt},
	{name: "format", kind: kEnum, enum: image.Formats()},
	{name: "compression", kind: kString},
	{name: "verity", kind: kEnum, enum: image.VerityModes},
	{name: "key", kind: kPath},
	{name: "certificate", kind: kPath},
	{name: "version", kind: kString},
	{name: "image_id", kind: kString},
	{name: "extension_release", kind: kDict},
	{name: "scope", kind: kScope},
	{name: "partitions", kind: kPartitions},
	{name: "output", kind: kString},
	{name: "architecture", kind: kString},
	{name: "generate_release", kind: kBool},
	{name: "compress_output", kind: kEnum, enum: []string{"none", "zstd", "xz"}},
	{name: "update_url", kind: kString},
	{name: "sysupdate", kind: kDict},
	{name: "seed", kind: kString},
}

// hookAttrs are the build-script attributes of base_image, sysext and
// confext (rules.Hooks).
var hookAttrs = []attrSpec{
	{name: "sync_scripts", kind: kStrings},
	{name: "prepare_scripts", kind: kStrings},
	{name: "build_scripts", kind: kStrings},
	{name: "postinst_scripts", kind: kStrings},
	{name: "finalize_scripts", kind: kStrings},
	{name: "postoutput_scripts", kind: kStrings},
	{name: "clean_scripts", kind: kStrings},
	{name: "build_packages", kind: kStrings},
	{name: "build_sources", kind: kTrees},
	{name: "sandbox_trees", kind: kTrees},
	{name: "build_dir", kind: kString},
	{name: "with_network", kind: kBool},
	{name: "environment", kind: kDict},
	{name: "environment_files", kind: kStrings},
}

func init() {
	baseAttrs = append(baseAttrs, hookAttrs...)
	extAttrs = append(extAttrs, hookAttrs...)
}

var releaseKeyRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// partition() attributes and their repart.d keys.
type partKind int

const (
	pString partKind = iota
	pStrings
	pBool
	pMinimize
	pIntOrString
	pInt
)

type partAttr struct {
	name, key string
	kind      partKind
	enum      []string
}

var partAttrs = []partAttr{
	{"type", "Type", pString, nil},
	{"format", "Format", pString, []string{"btrfs", "erofs", "ext2", "ext3", "ext4", "f2fs", "squashfs", "swap", "vfat", "xfs"}},
	{"copy_files", "CopyFiles", pStrings, nil},
	{"copy_blocks", "CopyBlocks", pString, nil},
	{"exclude_files", "ExcludeFiles", pStrings, nil},
	{"exclude_files_target", "ExcludeFilesTarget", pStrings, nil},
	{"make_directories", "MakeDirectories", pStrings, nil},
	{"minimize", "Minimize", pMinimize, nil},
	{"label", "Label", pString, nil},
	{"uuid", "UUID", pString, nil},
	{"verity", "Verity", pString, []string{"off", "data", "hash", "signature"}},
	{"verity_match_key", "VerityMatchKey", pString, nil},
	{"split_name", "SplitName", pString, nil},
	{"size_min", "SizeMinBytes", pIntOrString, nil},
	{"size_max", "SizeMaxBytes", pIntOrString, nil},
	{"padding_min", "PaddingMinBytes", pIntOrString, nil},
	{"padding_max", "PaddingMaxBytes", pIntOrString, nil},
	{"priority", "Priority", pInt, nil},
	{"weight", "Weight", pInt, nil},
	{"read_only", "ReadOnly", pBool, nil},
	{"no_auto", "NoAuto", pBool, nil},
	{"grow_file_system", "GrowFileSystem", pBool, nil},
	{"flags", "Flags", pIntOrString, nil},
	{"compression", "Compression", pString, nil},
	{"compression_level", "CompressionLevel", pIntOrString, nil},
}
