package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/mailsys/mailsys/admin"
	"github.com/mailsys/mailsys/userdata"
)

// A host program serves the API over its UserDB, makes its first system
// administrator, and provisions a domain and a user as a machine would.
func Example() {
	ctx := context.Background()
	users, err := userdata.NewMemory(userdata.MemoryConfig{Argon2: userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1}})
	if err != nil {
		log.Fatal(err)
	}
	defer users.Close()
	dir, _ := os.MkdirTemp("", "admin-example")
	defer os.RemoveAll(dir)
	cfg := admin.DefaultConfig(dir, users)
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := admin.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	users.CreateDomain(ctx, userdata.Domain{Name: "example.net"})
	users.CreateUser(ctx, userdata.NewUser{Address: "postmaster@example.net", Password: "a long secret"})
	srv.SetGrant(ctx, admin.Grant{User: "postmaster@example.net", Role: admin.RoleSystem})

	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	call := func(method, path, token string, body any) *http.Response {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, ts.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		return resp
	}
	var login struct{ Token string }
	json.NewDecoder(call("POST", "/api/v1/login", "", map[string]string{"user": "postmaster@example.net", "password": "a long secret"}).Body).Decode(&login)
	fmt.Println(call("POST", "/api/v1/domains", login.Token, map[string]string{"name": "example.org"}).Status)
	fmt.Println(call("POST", "/api/v1/users", login.Token, map[string]string{"address": "ann@example.org", "password": "ann's password"}).Status)
	fmt.Println(call("POST", "/api/v1/users", login.Token, map[string]string{"address": "bob@example.org", "pasword": "typo"}).Status)
	// Output:
	// 201 Created
	// 201 Created
	// 400 Bad Request
}
