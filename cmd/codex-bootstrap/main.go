// Command codex-bootstrap validates, plans and reconciles a services.yaml
// stack, and installs it on a clean server over SSH.
package main

import (
	"os"

	"github.com/codex-k8s/codex-bootstrap/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
