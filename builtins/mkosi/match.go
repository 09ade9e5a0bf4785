package mkosi

import (
	"errors"
	"os"
	"strings"

	"github.com/sxb-build/sxb/internal/diag"
)

var matchSections = map[string]bool{"Match": true, "TriggerMatch": true}
var assertSections = map[string]bool{"Assert": true, "TriggerAssert": true}

// matchConfig evaluates the [Match]/[TriggerMatch] (or, with asserts, the
// [Assert]/[TriggerAssert]) sections of file.
func (c *pctx) matchConfig(file string, asserts bool) (bool, error) {
	data, err := readConfig(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return true, nil
		}
		return false, err
	}
	sections := matchSections
	if asserts {
		sections = assertSections
	}
	entries, err := ParseINI(file, data, func(s string) bool { return sections[s] })
	if err != nil {
		return false, err
	}
	const unset, no, yes = 0, 1, 2
	cond, trig := unset, unset
	skip := false
	for _, e := range entries {
		if e.End() {
			if cond == no {
				if e.Section == "Assert" {
					return false, diag.Errorf(e.Pos, "trigger condition in [Assert] section was not satisfied")
				} else if e.Section == "Match" {
					return false, nil
				}
			}
			if e.Section == "TriggerMatch" || e.Section == "TriggerAssert" {
				if trig == yes || cond != no {
					trig = yes
				} else {
					trig = no
				}
			}
			cond, skip = unset, false
			continue
		}
		if skip {
			continue
		}
		v := e.Value
		trigger := strings.HasPrefix(v, "|")
		v = strings.TrimPrefix(v, "|")
		negate := strings.HasPrefix(v, "!")
		v = strings.TrimPrefix(v, "!")
		if v, err = c.expand(v, file, e.Pos); err != nil {
			return false, err
		}
		var result bool
		if s, ok := settingByName[e.Key]; ok {
			if s.Kind.match == nil {
				return false, diag.Errorf(e.Pos, "%s cannot be used in [%s]", e.Key, e.Section)
			}
			if s.Scope == scMain && c.image != "main" {
				return false, diag.Errorf(e.Pos, "%s cannot be matched on outside of the main image", e.Key)
			}
			if e.Key != s.Name {
				c.warn(diag.Warnf(e.Pos, "setting %s is deprecated, please use %s instead", e.Key, s.Name))
			}
			val, err := c.value(s)
			if err != nil {
				return false, diag.Errorf(e.Pos, "%v", err)
			}
			if val != nil {
				if result, err = s.Kind.match(c, v, val); err != nil {
					return false, diag.Errorf(e.Pos, "%s=%s: %v", e.Key, e.Value, err)
				}
			}
		} else {
			switch e.Key {
			case "PathExists":
				result = v != "" && exists(c.abs(v))
			case "Image":
				result = v == c.image
			case "HostArchitecture":
				if !contains(architectures, v) {
					return false, diag.Errorf(e.Pos, "'%s' is not a valid Architecture", v)
				}
				result = v == c.l.hostArch()
			case "SystemdVersion":
				sv, err := c.l.systemdVersion()
				if err != nil {
					return false, diag.Errorf(e.Pos, "SystemdVersion=: %v", err)
				}
				result, _ = matchVersion(c, v, sv)
				result = result && v != ""
			default:
				return false, diag.Errorf(e.Pos, "%s cannot be used in [%s]", e.Key, e.Section)
			}
		}
		if negate {
			result = !result
		}
		if !trigger && !result {
			if isTrigger(e.Section) {
				skip, cond = true, no
				continue
			}
			if asserts {
				return false, diag.Errorf(e.Pos, "%s=%s in [Assert] section was not satisfied", e.Key, e.Value)
			}
			return false, nil
		}
		if trigger {
			if cond == yes || result {
				cond = yes
			} else {
				cond = no
			}
		}
	}
	if trig == no && asserts {
		return false, diag.Errorf(diag.Pos{File: file}, "none of the [TriggerAssert] sections was satisfied")
	}
	return trig != no, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
