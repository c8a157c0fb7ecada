// Command codex-bootstrap validates, plans and reconciles a services.yaml
// stack, and installs a clean server over SSH by running the stack's
// bootstrap steps there before the first deploy.
package main

import (
	"os"

	"github.com/codex-k8s/codex-bootstrap/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
