package repart

import "strings"

// FSTypeOverride returns the file system systemd-repart would give p
// under the environment getenv reads, or "" when it keeps p's Format=:
// SYSTEMD_REPART_OVERRIDE_FSTYPE replaces any Format= as it is parsed,
// then SYSTEMD_REPART_OVERRIDE_FSTYPE_<DESIGNATOR> (ROOT, USR, ESP,
// LINUX_GENERIC, ...) replaces the file system of a partition whose type
// carries one, set or not (systemd 257's partition_finalize_fstype).
func FSTypeOverride(p *Partition, getenv func(string) (string, bool)) string {
	fs := ""
	if v, ok := getenv("SYSTEMD_REPART_OVERRIDE_FSTYPE"); ok && v != "" && p.Format != "" && v != p.Format {
		fs = v
	}
	if d := fsDesignator(p.Type); d != "" {
		if v, ok := getenv("SYSTEMD_REPART_OVERRIDE_FSTYPE_" + strings.ToUpper(strings.ReplaceAll(d, "-", "_"))); ok && v != "" && v != p.Format {
			fs = v
		}
	}
	return fs
}

// fsDesignator is the designator systemd names t by when t holds a file
// system, or "" (verity, signature and swap partitions, unknown types).
func fsDesignator(t Type) string {
	switch t.Designator {
	case RootVerity, RootVeritySig, UsrVerity, UsrVeritySig, Swap:
		return ""
	case "":
		if t.Name == "user-home" || t.Name == "linux-generic" {
			return t.Name
		}
		return ""
	}
	return t.Designator
}
