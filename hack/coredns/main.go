// Command coredns is CoreDNS with only the plugins the local cluster uses
// (make cluster): in-cluster names from the kubernetes plugin, no forwarding
// to upstream resolvers, since the cluster must send no traffic off the
// machine. Built from Go modules by hack/cluster/build.sh.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The order in which the plugins see a query, as in CoreDNS's plugin.cfg.
var directives = []string{
	"errors",
	"log",
	"health",
	"ready",
	"cache",
	"loadbalance",
	"kubernetes",
}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
