// Command codex-bootstrap validates, plans and reconciles a services.yaml
// stack. It renders and checks the stack's bootstrap steps for a clean
// server; running them there is not part of it yet.
package main

import (
	"os"

	"github.com/codex-k8s/codex-bootstrap/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
