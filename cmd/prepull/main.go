// Command prepull pre-pulls the container images that VCF Operations
// management packs reference, so Cloud Proxies never pull them anonymously.
package main

import (
	"os"

	"github.com/prepull/prepull/internal/cli"
)

func main() { os.Exit(cli.Main()) }
