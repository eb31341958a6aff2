// Package pebblelog sends Pebble's logs to slog, for the packages that
// keep a Pebble database (userdata, mta/queue).
package pebblelog

import (
	"fmt"
	"log/slog"
)

// Logger is a pebble.Logger over a slog.Logger: Pebble's information at
// Debug, its errors at Error, and its fatal errors at Error followed by
// a panic (which userdata's mirror recovers from), each with
// source=pebble.
type Logger struct{ Log *slog.Logger }

// Infof implements pebble.Logger.
func (l Logger) Infof(format string, args ...any) {
	l.Log.Debug(fmt.Sprintf(format, args...), "source", "pebble")
}

// Errorf implements pebble.Logger.
func (l Logger) Errorf(format string, args ...any) {
	l.Log.Error(fmt.Sprintf(format, args...), "source", "pebble")
}

// Fatalf implements pebble.Logger: it logs, then panics.
func (l Logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.Log.Error(msg, "source", "pebble", "fatal", true)
	panic("pebble: " + msg)
}
