//go:build tools

// Package tools pins CoreDNS, the cluster DNS of the real node that
// test/cluster/cluster.sh builds from source (see ../build.sh).
package tools

import _ "github.com/coredns/coredns"
