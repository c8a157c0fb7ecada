//go:build !(linux || darwin)

package clustertest

import (
	"context"
	"errors"
)

func lockFile(context.Context, string) (func(), error) {
	return nil, errors.New("the test cluster runs on Linux (and macOS) only")
}
