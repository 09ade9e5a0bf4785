module github.com/sxb-build/sxb

go 1.26.8

require github.com/rogpeppe/go-internal v1.16.0

require (
	github.com/fatih/color v1.19.0 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sys v0.43.0 // indirect
	golang.org/x/tools v0.26.0 // indirect
)
