//go:build tools

// Pins the commands `scripts/k8s-env build` compiles, so `go mod tidy` keeps
// their dependencies in go.sum. Build them with `go build <package path>`.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
