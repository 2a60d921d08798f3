// Package dewypb is the generated Go code for Dewy's registry protocol,
// dewy.proto: the service dewy.RegistryService with its Current and Report
// methods. The wire names and field numbers are Dewy's, so registry servers
// written for Dewy work unchanged; do not edit the generated files, edit
// dewy.proto and run `go generate` in this folder.
//
// Generating needs protoc (Debian: protobuf-compiler, which also installs the
// google/protobuf/*.proto imports), protoc-gen-go v1.36.12 and
// protoc-gen-go-grpc v1.6.2:
//
//	apt-get install -y protobuf-compiler
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
package dewypb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative dewy.proto
