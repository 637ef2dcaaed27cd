//go:build tools

// Package tools pins the Ory Kratos server used by Warden's integration tests.
package tools

import _ "github.com/ory/kratos"
