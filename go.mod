module github.com/sxb-build/sxb

go 1.26.8

require (
	github.com/DataDog/zstd v1.5.5
	github.com/ProtonMail/go-crypto v1.5.2
	github.com/bazelbuild/buildtools v0.0.0-20260904073137-eaa4d125b423
	github.com/bazelbuild/remote-apis v0.0.0-20260908115904-76ddd98e1f92
	github.com/diskfs/go-diskfs v1.9.4
	github.com/fatih/color v1.19.0
	github.com/klauspost/compress v1.20.4
	github.com/pierrec/lz4/v4 v4.1.33
	github.com/rogpeppe/go-internal v1.16.0
	github.com/sassoftware/go-rpmutils v0.4.0
	github.com/spdx/tools-golang v0.5.7
	github.com/spf13/pflag v1.1.0
	github.com/ulikunitz/xz v0.5.17
	go.starlark.net v0.0.0-20260908191801-89a6a09411d5
	golang.org/x/net v0.47.0
	golang.org/x/sync v0.25.0
	golang.org/x/sys v0.43.0
	google.golang.org/protobuf v1.36.11
	pault.ag/go/debian v0.19.0
)

require (
	cloud.google.com/go/longrunning v0.8.0 // indirect
	github.com/anchore/go-struct-converter v0.1.0 // indirect
	github.com/cloudflare/circl v1.6.3 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/xi2/xz v0.0.0-20171230120015-48954b6210f8 // indirect
	golang.org/x/crypto v0.44.0 // indirect
	golang.org/x/text v0.31.0 // indirect
	golang.org/x/tools v0.38.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20260203192932-546029d2fa20 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260203192932-546029d2fa20 // indirect
	google.golang.org/grpc v1.76.0 // indirect
)
