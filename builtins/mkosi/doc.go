// Package mkosi reads mkosi project configuration the way mkosi 25/26 does
// (mkosi.conf, mkosi.local.conf, mkosi.conf.d/, the mkosi/ subdirectory
// layout, mkosi.images/, mkosi.profiles/, [Include], [Match]/[Assert],
// specifiers, default files such as mkosi.extra/ and mkosi.repart/) and
// exposes the result as a typed model that sxb builds and converts to
// Starlark.
//
// Load parses a project directory into a Project whose Images are in
// mkosi's build order (dependencies first, the main image last). Each
// Image holds the final values of the settings sxb understands, with
// mkosi's defaults and scope rules applied (universal settings forced from
// the main image, ImageId/ImageVersion inherited, Environment passed only
// through PassEnvironment), positions of where each setting was set, the
// comments attached to them, and the settings sxb cannot honour yet
// (Unsupported; CheckSupported turns them into an error naming setting,
// file and line).
//
// The parser is table driven: every mkosi setting is one line in the
// settings table (name, section, scope, kind, default files, whether sxb
// honours it), so supporting another setting is one line plus a field.
//
// Project.SummaryJSON prints the shape of "mkosi --json summary";
// testdata/parity.sh compares it with a real mkosi. Convert turns a
// Project into BUILD.star.
package mkosi
