// etcd server built from go.etcd.io/etcd/server/v3 at the version
// k8s.io/kubernetes v1.34.4 requires (v3.6.4). The upstream `etcd` main
// package lives in the root module go.etcd.io/etcd/v3, which would pull a second
// dependency graph; this is the same two lines.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
