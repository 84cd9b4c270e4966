//go:build tools

// Pins the KWOK commands `scripts/k8s-env build` compiles.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
	_ "sigs.k8s.io/kwok/cmd/kwokctl"
)
