//go:build linux

// Package ansible holds prepull's end-to-end tests of one area (see package
// e2e): the Ansible role in ansible/roles/prepull, run by ansible-playbook
// from a Debian root against two booted Cloud Proxies over SSH.
package ansible

import (
	"testing"

	"github.com/prepull/prepull/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }
