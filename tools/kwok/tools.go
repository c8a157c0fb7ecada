//go:build tools

// Package tools pins the kwok controller (simulated nodes and pods) that
// test/cluster/cluster.sh builds from source (see ../build.sh). kwokctl is not
// built: cluster.sh starts every component itself.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
