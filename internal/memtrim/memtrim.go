// Package memtrim hands memory that only start-up needed back to the kernel.
//
// Starting the agent runs the initialisation of every package linked in:
// the protobuf descriptors of the Google Cloud Storage, gRPC and etcd
// clients, the AWS SDK's endpoint tables and the like. That touches tens of
// megabytes of the executable's code and constant data, which then stay
// mapped in the agent's memory although an idle agent never reads them again.
// Trim asks the kernel to page out the executable's read-only mappings
// (MADV_PAGEOUT) and the Go runtime to return the heap's free pages; what the
// agent goes on using faults back in, from the page cache or the disk.
package memtrim

// Result is what a Trim did, in bytes of resident memory (VmRSS).
type Result struct {
	Before, After int64
	// Regions is the number of the executable's mappings paged out.
	Regions int
}
