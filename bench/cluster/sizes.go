package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/jackc/pgx/v5"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/pgdir"
	"github.com/mailsys/mailsys/userdata"
)

// sizeResult holds the inputs of the sizing model, in bytes on disk.
type sizeResult struct {
	users        int
	dirPerUser   float64 // the embedded directory
	pgPerUser    float64 // the PostgreSQL directory, 0 if not measured
	udPerUser    float64
	messages     int
	udPerMessage float64
	msPerMessage float64 // on top of the body itself
	bodySize     int
}

// sizes takes what the UD and MS nodes grew by per message delivered
// (from rr), and measures, in stores of their own, what a user costs in
// the directory and on a UD node.
func sizes(ctx context.Context, rr *result, o *options) (*sizeResult, error) {
	r := &sizeResult{users: o.dirUsers, messages: o.messages, bodySize: o.size}
	r.udPerMessage = float64(rr.udGrowth) / float64(o.messages)
	r.msPerMessage = float64(rr.msGrowth)/float64(o.messages) - float64(o.size)

	// The embedded directory.
	dd := filepath.Join(o.dir, "sizing", "directory")
	d, err := cluster.OpenLocalDirectory(dd, quiet)
	if err != nil {
		return nil, err
	}
	if err := placeUsers(ctx, d, o.dirUsers); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.Close(); err != nil {
		return nil, err
	}
	n, err := du(dd)
	if err != nil {
		return nil, err
	}
	r.dirPerUser = float64(n) / float64(o.dirUsers)

	// A UD node's accounts: users without a password (the argon2id hash
	// is a fixed 100 or so bytes more).
	udd := filepath.Join(o.dir, "sizing", "userdb")
	db, err := userdata.Open(ctx, userdata.Config{Dir: udd, Logger: quiet})
	if err != nil {
		return nil, err
	}
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "bench.example"}); err != nil {
		db.Close()
		return nil, err
	}
	base, _ := du(udd)
	for i := range o.dirUsers {
		if _, err := db.CreateUser(ctx, userdata.NewUser{Address: userAddr(i)}); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	if n, err = du(udd); err != nil {
		return nil, err
	}
	r.udPerUser = float64(n-base) / float64(o.dirUsers)

	if o.postgres != "" {
		if r.pgPerUser, err = pgSize(ctx, o.postgres, o.dirUsers); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
	}
	return r, nil
}

// placeUsers places n users on two UD nodes, as registrations do.
func placeUsers(ctx context.Context, d cluster.Directory, n int) error {
	for i := range n {
		id, err := d.NextID(ctx, "user")
		if err != nil {
			return err
		}
		if err := d.PlaceUser(ctx, userdata.UserID(id), userAddr(i), fmt.Sprintf("ud%d", 1+i%2)); err != nil {
			return err
		}
	}
	return nil
}

// pgSize places n users in a PostgreSQL directory and returns the growth
// of the database per user.
func pgSize(ctx context.Context, dsn string, n int) (float64, error) {
	d, err := pgdir.Open(ctx, dsn, pgdir.Config{Logger: quiet})
	if err != nil {
		return 0, err
	}
	defer d.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	size := func() (int64, error) {
		var s int64
		if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
			return 0, err
		}
		err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&s)
		return s, err
	}
	before, err := size()
	if err != nil {
		return 0, err
	}
	if err := placeUsers(ctx, d, n); err != nil {
		return 0, err
	}
	after, err := size()
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n), nil
}

// du returns the bytes of the regular files under dir.
func du(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			fi, err := e.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

func (r *sizeResult) print(w io.Writer) {
	fmt.Fprintf(w, "sizes on disk (inputs of the sizing model in docs/cluster.md):\n")
	fmt.Fprintf(w, "  directory, embedded (Pebble): %.0f bytes per user (%d users placed)\n", r.dirPerUser, r.users)
	if r.pgPerUser > 0 {
		fmt.Fprintf(w, "  directory, PostgreSQL:        %.0f bytes per user (%d users placed)\n", r.pgPerUser, r.users)
	}
	fmt.Fprintf(w, "  UD node: %.0f bytes per user (no password), %.0f bytes per message (index entry with its summary, %d messages)\n", r.udPerUser, r.udPerMessage, r.messages)
	fmt.Fprintf(w, "  MS node: %.0f bytes per message on top of its %d-byte body\n", r.msPerMessage, r.bodySize)
}
