//go:build tools

// Package tools pins the etcd server that test/cluster/cluster.sh builds from
// source (see ../build.sh).
package tools

import _ "go.etcd.io/etcd/server/v3"
