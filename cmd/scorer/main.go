// Command scorer will continuously score data products for health and trust
// (DESIGN §5). It is not implemented yet.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "scorer: not yet implemented")
	os.Exit(1)
}
