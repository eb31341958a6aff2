package userdata

import "context"

// OriginOf returns the origin [WithOrigin] put in ctx, or nil if none. A
// UserDB that forwards its calls elsewhere (a remote client) reads it to
// carry the origin across.
func OriginOf(ctx context.Context) any { return originOf(ctx) }
