// Command etcd is the etcd server that envtest starts, built from Go modules
// because the test control plane cannot be downloaded as release binaries.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
