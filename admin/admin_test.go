package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/mta/mailauth"
	"github.com/mailsys/mailsys/userdata"
)

// fixture is an API over an in-memory UserDB, served over loopback HTTP:
// two domains, a unit tree in a.test (E > D1, and F beside E), and one
// user of each role.
type fixture struct {
	t     *testing.T
	srv   *Server
	url   string
	users *userdata.Memory
	units map[string]userdata.UnitID
	tok   map[string]string // bearer token by role: system, domain, unit, user
}

// newFixture serves an API over a Memory UserDB with domains a.test and
// b.test, units E (with D1 below) and F in a.test, a logged-in user per
// role, and a DKIM signer for both domains; opts change the Config.
func newFixture(t *testing.T, opts ...func(*Config)) *fixture {
	t.Helper()
	ctx := t.Context()
	mem, err := userdata.NewMemory(userdata.MemoryConfig{Argon2: userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	f := &fixture{t: t, users: mem, units: map[string]userdata.UnitID{}, tok: map[string]string{}}
	for _, d := range []string{"a.test", "b.test"} {
		if err := mem.CreateDomain(ctx, userdata.Domain{Name: d}); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(name string, parent userdata.UnitID) {
		u, err := mem.CreateUnit(ctx, userdata.OrgUnit{Domain: "a.test", Parent: parent, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		f.units[name] = u.ID
	}
	mk("E", 0)
	mk("D1", f.units["E"])
	mk("F", 0)
	cfg := DefaultConfig(t.TempDir(), mem)
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	signer, err := mailauth.NewSigner(mailauth.SignerConfig{Dir: t.TempDir(), Logger: cfg.Logger,
		Domains: func(ctx context.Context, d string) (bool, error) { return d == "a.test" || d == "b.test", nil }})
	if err != nil {
		t.Fatal(err)
	}
	cfg.DKIM = signer
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	f.url = "http://" + l.Addr().String()
	roles := []struct {
		role, addr string
		g          *Grant
		unit       userdata.UnitID
	}{
		{"system", "sys@a.test", &Grant{Role: RoleSystem}, 0},
		{"domain", "dom@a.test", &Grant{Role: RoleDomain, Domain: "a.test"}, 0},
		{"unit", "boss@a.test", &Grant{Role: RoleUnit, Domain: "a.test", Unit: uint64(f.units["E"])}, f.units["E"]},
		{"user", "ann@a.test", nil, f.units["D1"]},
	}
	for _, r := range roles {
		if _, err := mem.CreateUser(ctx, userdata.NewUser{Address: r.addr, Password: "pw-" + r.addr, Unit: r.unit}); err != nil {
			t.Fatal(err)
		}
		if r.g != nil {
			r.g.User = r.addr
			if err := srv.SetGrant(ctx, *r.g); err != nil {
				t.Fatal(err)
			}
		}
		var lr loginResponse
		f.must(f.do("", "POST", "/api/v1/login", loginRequest{User: r.addr, Password: "pw-" + r.addr}, &lr), 200)
		f.tok[r.role] = lr.Token
	}
	return f
}

// do makes a request with token (none if ""), body marshalled as JSON
// (a string or []byte as it is), decoding a JSON answer into out. It
// returns the status.
func (f *fixture) do(token, method, path string, body, out any) int {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			f.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	if resp.StatusCode >= 400 && !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		f.t.Errorf("%s %s: error %d not in JSON: %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

func (f *fixture) must(got, want int) {
	f.t.Helper()
	if got != want {
		f.t.Fatalf("status %d, want %d", got, want)
	}
}

// TestProvision: a system administrator makes a domain, a unit, a user
// with a quota and reads them back, the way the README's curl examples
// do.
func TestProvision(t *testing.T) {
	f := newFixture(t)
	sys := f.tok["system"]
	f.must(f.do(sys, "POST", "/api/v1/domains", map[string]any{"name": "example.org"}, nil), 201)
	var unit unitJSON
	f.must(f.do(sys, "POST", "/api/v1/units", map[string]any{"domain": "example.org", "name": "Sales"}, &unit), 201)
	var u userJSON
	f.must(f.do(sys, "POST", "/api/v1/users", map[string]any{"address": "ann@example.org", "password": "a long password", "unit": unit.ID, "quota": 1 << 20}, &u), 201)
	if u.Address != "ann@example.org" || u.Unit != unit.ID || u.Quota != 1<<20 {
		t.Fatalf("created %+v", u)
	}
	var list []userJSON
	f.must(f.do(sys, "GET", "/api/v1/users?domain=example.org", nil, &list), 200)
	if len(list) != 1 || list[0].Address != "ann@example.org" {
		t.Fatalf("users of example.org: %+v", list)
	}
	var st statsJSON
	f.must(f.do(sys, "GET", "/api/v1/domains/example.org/stats", nil, &st), 200)
	if st.Users != 1 || len(st.Days) != statsDays {
		t.Fatalf("stats %+v", st)
	}
	got, err := f.users.Authenticate(t.Context(), "ann@example.org", "a long password", userdata.ProtoIMAP)
	if err != nil || got.Unit != userdata.UnitID(unit.ID) {
		t.Fatalf("the new user logs in: %+v, %v", got, err)
	}
	if st.Active != 0 {
		t.Fatalf("active users before any login: %d", st.Active)
	}
	// Counted deliveries and logins show in the statistics.
	f.srv.Delivered(got, 100)
	f.srv.Submitted(got, 2)
	f.srv.LoggedIn(got, userdata.ProtoIMAP)
	f.srv.LoggedIn(got, userdata.ProtoPOP3)
	f.must(f.do(sys, "GET", "/api/v1/domains/example.org/stats", nil, &st), 200)
	today := st.Days[len(st.Days)-1]
	if today.Received != 1 || today.Sent != 1 || st.Active != 1 {
		t.Fatalf("stats %+v, today %+v: want 1 received, 1 sent, 1 active", st, today)
	}
	var ust statsJSON
	f.must(f.do(sys, "GET", fmt.Sprintf("/api/v1/units/%d/stats", unit.ID), nil, &ust), 200)
	if ust.Users != 1 || ust.Days[len(ust.Days)-1].Received != 1 || ust.Active != 1 {
		t.Fatalf("unit stats %+v", ust)
	}
	// A last login 30 days ago is not active.
	if err := f.srv.st.markSeen("example.org", uint64(got.ID), uint64(got.Unit), day(time.Now())-statsDays); err != nil {
		t.Fatal(err)
	}
	f.must(f.do(sys, "GET", "/api/v1/domains/example.org/stats", nil, &st), 200)
	if st.Active != 0 {
		t.Fatalf("last login 30 days ago: %d active, want 0", st.Active)
	}
	// Moved, disabled, deleted.
	var moved userJSON
	f.must(f.do(sys, "PATCH", "/api/v1/users/ann@example.org", map[string]any{"unit": 0, "disabled": true}, &moved), 200)
	if moved.Unit != 0 || !moved.Disabled {
		t.Fatalf("after PATCH: %+v", moved)
	}
	f.must(f.do(sys, "DELETE", "/api/v1/users/ann@example.org", nil, nil), 204)
	f.must(f.do(sys, "GET", "/api/v1/users/ann@example.org", nil, nil), 404)
	f.must(f.do(sys, "GET", "/api/v1/domains/example.org/stats", nil, &st), 200)
	if st.Active != 0 || st.Users != 0 {
		t.Fatalf("after deleting the only user: %+v", st)
	}
}

// TestRoles tries every endpoint with every role on an object outside
// the role's scope, and expects 403; and checks that each role can do what
// its scope allows.
func TestRoles(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	// Objects out of reach: of b.test for the domain administrator, of
	// unit F for the unit administrator (E's), of anything for a user.
	if _, err := f.users.CreateUser(ctx, userdata.NewUser{Address: "bob@b.test", Password: "pw-bob-long"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.users.CreateUser(ctx, userdata.NewUser{Address: "fay@a.test", Password: "pw-fay-long", Unit: f.units["F"]}); err != nil {
		t.Fatal(err)
	}
	fID := f.units["F"]
	type call struct {
		method, path string
		body         any
	}
	// For each role, calls on objects outside its scope.
	outside := map[string][]call{}
	common := func(domain, user string, unit userdata.UnitID) []call {
		return []call{
			{"GET", "/api/v1/domains/" + domain, nil},
			{"PATCH", "/api/v1/domains/" + domain, map[string]any{"quota": 5}},
			{"POST", "/api/v1/domains/" + domain + "/aliases", map[string]any{"alias": "x-" + domain}},
			{"GET", "/api/v1/domains/" + domain + "/stats", nil},
			{"GET", "/api/v1/domains/" + domain + "/units", nil},
			{"POST", "/api/v1/units", map[string]any{"domain": domain, "name": "X", "parent": uint64(unit)}},
			{"GET", fmt.Sprintf("/api/v1/units/%d", unit), nil},
			{"PATCH", fmt.Sprintf("/api/v1/units/%d", unit), map[string]any{"name": "Y"}},
			{"GET", fmt.Sprintf("/api/v1/units/%d/stats", unit), nil},
			{"GET", "/api/v1/users?domain=" + domain, nil},
			{"POST", "/api/v1/users", map[string]any{"address": "new@" + domain, "password": "long enough pw"}},
			{"GET", "/api/v1/users/" + user, nil},
			{"PATCH", "/api/v1/users/" + user, map[string]any{"name": "Z"}},
			{"DELETE", "/api/v1/users/" + user, nil},
			{"POST", "/api/v1/users/" + user + "/password", map[string]any{"password": "long enough pw"}},
			{"POST", "/api/v1/users/" + user + "/aliases", map[string]any{"alias": "al@" + domain}},
			{"DELETE", "/api/v1/users/" + user + "/aliases/al@" + domain, nil},
			{"POST", "/api/v1/admins", map[string]any{"user": user, "role": "domain", "domain": domain}},
			{"DELETE", "/api/v1/admins/sys@a.test", nil},
			{"POST", "/api/v1/domains", map[string]any{"name": "new.test"}},
			{"PUT", "/api/v1/classes/gold", map[string]any{"quota": 1}},
			{"GET", "/api/v1/domains/" + domain + "/dkim", nil},
			{"POST", "/api/v1/domains/" + domain + "/dkim/rotate", nil},
			{"DELETE", "/api/v1/domains/" + domain + "/dkim/ms20260101e", nil},
			{"GET", "/api/v1/queue", nil},
			{"POST", "/api/v1/queue/q1/retry", nil},
			{"POST", "/api/v1/queue/q1/hold", nil},
			{"POST", "/api/v1/queue/q1/release", nil},
			{"DELETE", "/api/v1/queue/q1", nil},
			{"GET", "/api/v1/nodes", nil},
			{"PATCH", "/api/v1/nodes/ms1", map[string]any{"weight": 1}},
			{"GET", "/api/v1/events", nil},
			{"GET", "/metrics", nil},
			{"GET", "/debug/pprof/", nil},
		}
	}
	// A unit of b.test, out of the domain administrator's reach.
	bu, err := f.users.CreateUnit(ctx, userdata.OrgUnit{Domain: "b.test", Name: "B"})
	if err != nil {
		t.Fatal(err)
	}
	outside["domain"] = common("b.test", "bob@b.test", bu.ID)
	outside["unit"] = common("a.test", "fay@a.test", fID)
	outside["user"] = append(common("a.test", "fay@a.test", fID),
		call{"GET", "/api/v1/domains", nil}, call{"GET", "/api/v1/classes", nil}, call{"GET", "/api/v1/admins", nil},
		call{"GET", "/api/v1/audit", nil}, call{"GET", "/api/v1/tokens", nil}, call{"POST", "/api/v1/tokens", map[string]any{"name": "t"}},
		call{"GET", "/api/v1/users/ann@a.test", nil})
	for role, calls := range outside {
		for _, c := range calls {
			if c.path == "/metrics" {
				continue // not served without Config.Metrics
			}
			if role == "unit" && c.path == "/api/v1/domains/a.test/units" {
				continue // its own units are in a.test: it sees them (checked below)
			}
			if got := f.do(f.tok[role], c.method, c.path, c.body, nil); got != 403 {
				t.Errorf("%s: %s %s: %d, want 403", role, c.method, c.path, got)
			}
		}
	}
	// Not logged in: 401 everywhere but login.
	for _, pattern := range f.srv.patterns {
		method, path, _ := strings.Cut(pattern, " ")
		if path == "/api/v1/login" || path == "/api/v1/openapi.json" {
			continue
		}
		path = strings.NewReplacer("{domain}", "a.test", "{id}", "1", "{name}", "gold", "{address}", "ann@a.test", "{alias}", "x@a.test", "{selector}", "ms20260101e").Replace(path)
		if got := f.do("", method, path, nil, nil); got != 401 {
			t.Errorf("anonymous %s %s: %d, want 401", method, path, got)
		}
	}

	// Inside the scope: the unit administrator of E manages D1's users
	// and makes units below E; the domain administrator all of a.test.
	f.must(f.do(f.tok["unit"], "GET", "/api/v1/users/ann@a.test", nil, nil), 200)
	f.must(f.do(f.tok["unit"], "POST", "/api/v1/users", map[string]any{"address": "dee@a.test", "password": "long enough pw", "unit": f.units["D1"]}, nil), 201)
	f.must(f.do(f.tok["unit"], "POST", "/api/v1/users", map[string]any{"address": "top@a.test", "password": "long enough pw"}, nil), 403)
	var sub unitJSON
	f.must(f.do(f.tok["unit"], "POST", "/api/v1/units", map[string]any{"domain": "a.test", "parent": f.units["D1"], "name": "D2"}, &sub), 201)
	var units []unitJSON
	f.must(f.do(f.tok["unit"], "GET", "/api/v1/domains/a.test/units", nil, &units), 200)
	if len(units) != 3 { // E, D1, D2: not F
		t.Errorf("the unit administrator sees units %+v, want E, D1 and D2", units)
	}
	f.must(f.do(f.tok["unit"], "PATCH", "/api/v1/users/ann@a.test", map[string]any{"unit": sub.ID}, nil), 200)
	f.must(f.do(f.tok["unit"], "PATCH", "/api/v1/users/ann@a.test", map[string]any{"unit": fID}, nil), 403)
	f.must(f.do(f.tok["unit"], "POST", "/api/v1/admins", map[string]any{"user": "dee@a.test", "role": "unit", "unit": f.units["D1"]}, nil), 201)
	f.must(f.do(f.tok["unit"], "POST", "/api/v1/admins", map[string]any{"user": "dee@a.test", "role": "unit", "unit": f.units["E"]}, nil), 403)
	f.must(f.do(f.tok["domain"], "PATCH", "/api/v1/users/fay@a.test", map[string]any{"name": "Fay"}, nil), 200)
	f.must(f.do(f.tok["domain"], "POST", "/api/v1/admins", map[string]any{"user": "fay@a.test", "role": "domain", "domain": "a.test"}, nil), 201)
	f.must(f.do(f.tok["domain"], "POST", "/api/v1/admins", map[string]any{"user": "fay@a.test", "role": "system"}, nil), 403)
	// The domain administrator publishes its domain's DKIM keys.
	var dk dkimJSON
	f.must(f.do(f.tok["domain"], "GET", "/api/v1/domains/a.test/dkim", nil, &dk), 200)
	if len(dk.Records) != 2 || !strings.HasSuffix(dk.Records[0].Name, "._domainkey.a.test") {
		t.Errorf("a.test's DKIM records: %+v", dk)
	}
	// Without a queue, a cluster or a supervisor: 404, not configured.
	for _, path := range []string{"/api/v1/queue", "/api/v1/nodes", "/api/v1/events"} {
		f.must(f.do(f.tok["system"], "GET", path, nil, nil), 404)
	}
	// A user: its own password only.
	f.must(f.do(f.tok["user"], "POST", "/api/v1/me/password", map[string]any{"old": "wrong", "password": "a new password"}, nil), 400)
	f.must(f.do(f.tok["user"], "POST", "/api/v1/me/password", map[string]any{"old": "pw-ann@a.test", "password": "a new password"}, nil), 204)
	if _, err := f.users.Authenticate(ctx, "ann@a.test", "a new password", userdata.ProtoIMAP); err != nil {
		t.Fatalf("the new password: %v", err)
	}
}

// TestBadInput: malformed bodies and values are 400 with the field named;
// nothing is half-created.
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	sys := f.tok["system"]
	cases := []struct {
		method, path string
		body         any
		status       int
		field        string
	}{
		{"POST", "/api/v1/domains", `{"name": "ok.test", "colour": "red"}`, 400, "colour"},
		{"POST", "/api/v1/domains", `{"name": 7}`, 400, "name"},
		{"POST", "/api/v1/domains", `{"name": "bad domain"}`, 400, "name"},
		{"POST", "/api/v1/domains", `{"name": "` + strings.Repeat("a", 300) + `.test"}`, 400, "name"},
		{"POST", "/api/v1/domains", `{"name": "x.test"} {}`, 400, "body"},
		{"POST", "/api/v1/domains", `not json`, 400, "body"},
		{"POST", "/api/v1/domains", ``, 400, "body"},
		{"POST", "/api/v1/domains", `{"name": "q.test", "quota": -1}`, 400, "quota"},
		{"POST", "/api/v1/users", `{"address": "nobody", "password": "long enough pw"}`, 400, "address"},
		{"POST", "/api/v1/users", `{"address": "x@a.test", "password": "short"}`, 400, "password"},
		{"POST", "/api/v1/users", `{"address": "x@a.test", "password": "long enough pw", "unit": 999}`, 400, "unit"},
		{"POST", "/api/v1/users", `{"address": "x@a.test", "password": "long enough pw", "quota": "lots"}`, 400, "quota"},
		{"POST", "/api/v1/users", `{"address": "x@a.test", "password": "long enough pw", "name": "` + strings.Repeat("n", 300) + `"}`, 400, "name"},
		{"GET", "/api/v1/users?domain=a.test&limit=0", nil, 400, "limit"},
		{"GET", "/api/v1/users?domain=a.test&limit=100000", nil, 400, "limit"},
		{"GET", "/api/v1/users", nil, 400, "domain"},
		{"PUT", "/api/v1/classes/gold", `{"protocols": ["gopher"]}`, 400, "protocols"},
		{"POST", "/api/v1/admins", `{"user": "ann@a.test", "role": "emperor"}`, 400, "role"},
		{"POST", "/api/v1/units", `{"domain": "a.test", "name": "X", "id": 5}`, 400, "id"},
	}
	for _, c := range cases {
		var e errorBody
		if got := f.do(sys, c.method, c.path, c.body, &e); got != c.status || e.Field != c.field || e.Error == "" {
			t.Errorf("%s %s %v: %d %+v, want %d naming %q", c.method, c.path, c.body, got, e, c.status, c.field)
		}
	}
	// A body over 1 MiB.
	big := `{"name": "` + strings.Repeat("a", 1<<20) + `"}`
	if got := f.do(sys, "POST", "/api/v1/domains", big, nil); got != 413 {
		t.Errorf("a 1 MiB body: %d, want 413", got)
	}
	// Nothing half-created: the user with the bad unit is not there.
	if _, err := f.users.LookupAddress(t.Context(), "x@a.test"); err == nil {
		t.Error("a refused user was created")
	}
}

// TestSession: the login's cookie works for the pages with its CSRF token
// on changes, not without; logout ends it; failed logins are limited.
func TestSession(t *testing.T) {
	f := newFixture(t)
	var lr loginResponse
	body, _ := json.Marshal(loginRequest{User: "sys@a.test", Password: "pw-sys@a.test"})
	resp, err := http.Post(f.url+"/api/v1/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&lr)
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v", cookie)
	}
	send := func(method, path, csrf string, body string) int {
		req, _ := http.NewRequest(method, f.url+path, strings.NewReader(body))
		req.AddCookie(cookie)
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set(csrfHeader, csrf)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send("GET", "/api/v1/me", "", ""); got != 200 {
		t.Errorf("GET with the cookie: %d", got)
	}
	if got := send("POST", "/api/v1/domains", "", `{"name": "c.test"}`); got != 403 {
		t.Errorf("a change with the cookie and no CSRF token: %d, want 403", got)
	}
	if got := send("POST", "/api/v1/domains", "wrong", `{"name": "c.test"}`); got != 403 {
		t.Errorf("a change with a wrong CSRF token: %d, want 403", got)
	}
	if got := send("POST", "/api/v1/domains", lr.CSRF, `{"name": "c.test"}`); got != 201 {
		t.Errorf("a change with the CSRF token: %d, want 201", got)
	}
	if got := send("POST", "/api/v1/logout", lr.CSRF, ""); got != 204 {
		t.Errorf("logout: %d", got)
	}
	if got := send("GET", "/api/v1/me", "", ""); got != 401 {
		t.Errorf("after logout: %d, want 401", got)
	}
	// An API token works until it is revoked.
	var tok tokenResponse
	f.must(f.do(f.tok["system"], "POST", "/api/v1/tokens", map[string]any{"name": "provisioning", "ttl": "24h"}, &tok), 201)
	f.must(f.do(tok.Token, "GET", "/api/v1/domains", nil, nil), 200)
	var toks []tokenResponse
	f.must(f.do(f.tok["system"], "GET", "/api/v1/tokens", nil, &toks), 200)
	if len(toks) != 1 || toks[0].Token != "" || toks[0].Name != "provisioning" {
		t.Fatalf("tokens %+v (the secret must not be listed)", toks)
	}
	f.must(f.do(f.tok["system"], "DELETE", "/api/v1/tokens/"+tok.ID, nil, nil), 204)
	f.must(f.do(tok.Token, "GET", "/api/v1/domains", nil, nil), 401)
	// Password guessing from one address: 429 after the budget.
	codes := map[int]int{}
	for range 12 {
		codes[f.do("", "POST", "/api/v1/login", loginRequest{User: "sys@a.test", Password: "guess"}, nil)]++
	}
	if codes[401] != 10 || codes[429] != 2 {
		t.Errorf("12 wrong passwords: %v, want 10 × 401 then 429", codes)
	}
}

// TestAudit: every change is in the audit log with who, what, when and
// from where; a domain administrator sees its own.
func TestAudit(t *testing.T) {
	f := newFixture(t)
	start := time.Now().Add(-time.Second)
	f.must(f.do(f.tok["system"], "POST", "/api/v1/domains", map[string]any{"name": "c.test"}, nil), 201)
	f.must(f.do(f.tok["domain"], "PATCH", "/api/v1/users/ann@a.test", map[string]any{"name": "Ann"}, nil), 200)
	f.must(f.do(f.tok["domain"], "POST", "/api/v1/domains", map[string]any{"name": "d.test"}, nil), 403)
	var all []AuditEntry
	f.must(f.do(f.tok["system"], "GET", "/api/v1/audit?limit=1000", nil, &all), 200)
	find := func(es []AuditEntry, user, action string, status int) *AuditEntry {
		for i := range es {
			if es[i].User == user && es[i].Action == action && es[i].Status == status {
				return &es[i]
			}
		}
		return nil
	}
	e := find(all, "sys@a.test", "POST /api/v1/domains", 201)
	if e == nil || e.Time.Before(start) || !strings.HasPrefix(e.Remote, "127.0.0.1:") {
		t.Fatalf("no entry of the domain made: %+v", all)
	}
	if find(all, "dom@a.test", "PATCH /api/v1/users/{address}", 200) == nil || find(all, "dom@a.test", "POST /api/v1/domains", 403) == nil {
		t.Fatalf("the domain administrator's changes, refused ones included, are not logged: %+v", all)
	}
	var mine []AuditEntry
	f.must(f.do(f.tok["domain"], "GET", "/api/v1/audit", nil, &mine), 200)
	for _, e := range mine {
		if e.User != "dom@a.test" {
			t.Errorf("a domain administrator sees %+v", e)
		}
	}
	// Paging.
	var first, next []AuditEntry
	f.must(f.do(f.tok["system"], "GET", "/api/v1/audit?limit=2", nil, &first), 200)
	f.must(f.do(f.tok["system"], "GET", "/api/v1/audit?limit=2&after="+first[1].ID, nil, &next), 200)
	if len(first) != 2 || len(next) == 0 || next[0].ID <= first[1].ID {
		t.Fatalf("pages %+v then %+v", first, next)
	}
}

// TestOpenAPI: openapi.json documents exactly the routes the server
// serves, and each request body schema has exactly the fields of the Go
// type its handler decodes.
func TestOpenAPI(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody *struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties           map[string]any `json:"properties"`
				AdditionalProperties *bool          `json:"additionalProperties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	mem, _ := userdata.NewMemory(userdata.MemoryConfig{})
	defer mem.Close()
	cfg := DefaultConfig(t.TempDir(), mem)
	cfg.Metrics = http.NotFoundHandler()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var served, documented []string
	served = append(served, s.patterns...)
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(served)
	sort.Strings(documented)
	if !slices.Equal(served, documented) {
		t.Errorf("served routes:\n%s\ndocumented:\n%s", strings.Join(served, "\n"), strings.Join(documented, "\n"))
	}
	bodies := map[string]any{
		"POST /api/v1/login": loginRequest{}, "POST /api/v1/me/password": passwordRequest{}, "POST /api/v1/tokens": tokenRequest{},
		"POST /api/v1/domains": domainJSON{}, "PATCH /api/v1/domains/{domain}": domainUpdate{}, "POST /api/v1/domains/{domain}/aliases": aliasRequest{},
		"POST /api/v1/units": unitJSON{}, "PATCH /api/v1/units/{id}": unitUpdate{}, "PUT /api/v1/classes/{name}": classJSON{},
		"POST /api/v1/users": newUserJSON{}, "PATCH /api/v1/users/{address}": userUpdateJSON{}, "POST /api/v1/users/{address}/password": passwordRequest{},
		"POST /api/v1/users/{address}/aliases": aliasRequest{}, "POST /api/v1/admins": Grant{}, "PATCH /api/v1/nodes/{id}": nodeUpdate{},
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			pattern := strings.ToUpper(method) + " " + path
			goType, decodes := bodies[pattern]
			if (op.RequestBody != nil) != decodes {
				t.Errorf("%s: documented body %v, handler decodes one %v", pattern, op.RequestBody != nil, decodes)
				continue
			}
			if !decodes {
				continue
			}
			ref := op.RequestBody.Content["application/json"].Schema.Ref
			sc, ok := doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
			if !ok {
				t.Errorf("%s: schema %q missing", pattern, ref)
				continue
			}
			if sc.AdditionalProperties == nil || *sc.AdditionalProperties {
				t.Errorf("%s: schema %s allows unknown fields; the handler refuses them", pattern, ref)
			}
			var want, got []string
			rt := reflect.TypeOf(goType)
			for i := range rt.NumField() {
				name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
				want = append(want, name)
			}
			for p := range sc.Properties {
				got = append(got, p)
			}
			sort.Strings(want)
			sort.Strings(got)
			if !slices.Equal(want, got) {
				t.Errorf("%s: schema %s has %v, the Go type %s %v", pattern, ref, got, rt.Name(), want)
			}
		}
	}
}
