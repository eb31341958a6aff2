//go:build !unix

package mailsys

import (
	"errors"
	"log/slog"
)

func dropPrivileges(runAs, dataDir string, log *slog.Logger) error {
	return errors.New("mailsys: RunAs is supported on Unix only")
}
