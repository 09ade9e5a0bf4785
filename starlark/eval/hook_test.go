package eval_test

// The repository's examples include mkosi project directories: the tests
// of this package load them with the real hook, as cmd/sxb does.
import _ "github.com/sxb-build/sxb/rules/mkosiproject"
