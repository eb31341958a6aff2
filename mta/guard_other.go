//go:build !unix

package mta

func defaultMaxConns() int { return fallbackMaxConns }
