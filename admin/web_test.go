package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/mta/resolve"
	"github.com/mailsys/mailsys/userdata"
)

// webClient is a browser without JavaScript: a cookie jar, redirects not
// followed (each is checked), the last page's CSRF token sent with forms.
type webClient struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

func (f *fixture) web() *webClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return &webClient{t: f.t, base: f.url, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// webLogin logs in through the login form and checks the redirect to the
// start page.
func (f *fixture) webLogin(addr, password string) *webClient {
	f.t.Helper()
	c := f.web()
	c.get("/admin/login", 200)
	resp, _ := c.postRaw("/admin/login", url.Values{"user": {addr}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/" {
		f.t.Fatalf("login as %s: %d to %q", addr, resp.StatusCode, resp.Header.Get("Location"))
	}
	c.get("/admin/", 200)
	return c
}

func (c *webClient) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	body := string(b)
	if m := csrfField.FindStringSubmatch(body); m != nil {
		c.csrf = m[1]
	}
	return resp, body
}

// get fetches path and checks its status (0: any).
func (c *webClient) get(path string, want int) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest("GET", c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, body := c.do(req)
	if want != 0 && resp.StatusCode != want {
		c.t.Fatalf("GET %s: %d, want %d: %s", path, resp.StatusCode, want, excerpt(body))
	}
	return resp, body
}

// postRaw posts form as it is; post adds the CSRF token of the last page.
func (c *webClient) postRaw(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	if form.Get("csrf") == "" && c.csrf != "" && !form.Has("csrf") {
		form.Set("csrf", c.csrf)
	}
	req, err := http.NewRequest("POST", c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

func (c *webClient) post(path string, form url.Values, want int) (*http.Response, string) {
	c.t.Helper()
	resp, body := c.postRaw(path, form)
	if want != 0 && resp.StatusCode != want {
		c.t.Fatalf("POST %s: %d, want %d: %s", path, resp.StatusCode, want, excerpt(body))
	}
	return resp, body
}

// excerpt is a page's main part, for failure messages.
func excerpt(body string) string {
	if i := strings.Index(body, "<main>"); i >= 0 {
		body = body[i:]
	}
	if len(body) > 1500 {
		body = body[:1500]
	}
	return body
}

func mustContain(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Fatalf("page lacks %q: %s", w, excerpt(body))
		}
	}
}

// TestWebLogin: the pages need a login; the login form sets the session
// cookie; a wrong password is said; the pages carry the security headers;
// logout ends the session.
func TestWebLogin(t *testing.T) {
	f := newFixture(t)
	c := f.web()
	resp, _ := c.get("/admin/", http.StatusSeeOther)
	if resp.Header.Get("Location") != "/admin/login" {
		t.Fatalf("not logged in: redirected to %q", resp.Header.Get("Location"))
	}
	resp, body := c.get("/admin/login", 200)
	if got := resp.Header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
		t.Fatalf("CSP %q", got)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("headers %v", resp.Header)
	}
	if strings.Contains(body, "<script") {
		t.Fatal("a page with a script")
	}
	// A login form posted without its token (from another site) is
	// refused.
	_, body = c.post("/admin/login", url.Values{"user": {"sys@a.test"}, "password": {"pw-sys@a.test"}, "csrf": {""}}, http.StatusForbidden)
	mustContain(t, body, "the login form expired")
	_, body = c.post("/admin/login", url.Values{"user": {"sys@a.test"}, "password": {"wrong"}}, http.StatusUnauthorized)
	mustContain(t, body, "wrong user or password", `value="sys@a.test"`)
	if strings.Contains(body, `value="wrong"`) {
		t.Fatal("the password echoed")
	}

	c = f.webLogin("sys@a.test", "pw-sys@a.test")
	_, body = c.get("/admin/", 200)
	mustContain(t, body, "sys@a.test", "system administrator", `href="/admin/queue"`)
	resp, _ = c.get("/admin/static/admin.css", 200)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("CSS served as %q", resp.Header.Get("Content-Type"))
	}
	u, _ := url.Parse(f.url)
	var secret string
	for _, ck := range c.c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			secret = ck.Value
		}
	}
	if secret == "" {
		t.Fatal("no session cookie after login")
	}
	f.must(f.do(secret, "GET", "/api/v1/me", nil, nil), 200)

	resp, _ = c.post("/admin/logout", url.Values{}, http.StatusSeeOther)
	if resp.Header.Get("Location") != "/admin/login" {
		t.Fatalf("logout redirects to %q", resp.Header.Get("Location"))
	}
	c.get("/admin/", http.StatusSeeOther)
	f.must(f.do(secret, "GET", "/api/v1/me", nil, nil), 401)

	// The roles as the nav bar names them.
	for addr, role := range map[string]string{"dom@a.test": "administrator of a.test", "boss@a.test": "administrator of unit E (a.test)", "ann@a.test": "Your limits"} {
		_, body := f.webLogin(addr, "pw-"+addr).get("/admin/", 200)
		mustContain(t, body, role)
	}
}

// TestWebCSRF: a change without the session's CSRF token, or with a wrong
// one, is refused and changes nothing; with it, the change is made and
// audited once.
func TestWebCSRF(t *testing.T) {
	f := newFixture(t)
	c := f.webLogin("sys@a.test", "pw-sys@a.test")
	c.get("/admin/domains", 200)
	for _, tok := range []string{"", "0123456789abcdef", c.csrf + "x"} {
		_, body := c.post("/admin/domains", url.Values{"name": {"forged.test"}, "csrf": {tok}}, http.StatusForbidden)
		mustContain(t, body, "CSRF")
	}
	if _, err := f.users.Domain(t.Context(), "forged.test"); !errors.Is(err, userdata.ErrNotFound) {
		t.Fatalf("a forged form made a domain: %v", err)
	}
	resp, _ := c.post("/admin/domains", url.Values{"name": {"made.test"}, "quota": {"5"}, "quota_unit": {"GiB"}}, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/admin/domains/made.test?done=created" {
		t.Fatalf("created, redirected to %q", loc)
	}
	d, err := f.users.Domain(t.Context(), "made.test")
	if err != nil || d.Quota != 5<<30 {
		t.Fatalf("domain made: %+v, %v", d, err)
	}
	_, body := c.get("/admin/domains/made.test?done=created", 200)
	mustContain(t, body, "Created.", "5 GiB", "<svg")
	var log []AuditEntry
	f.must(f.do(f.tok["system"], "GET", "/api/v1/audit?limit=1000", nil, &log), 200)
	n := 0
	for _, e := range log {
		if strings.HasPrefix(e.Action, "POST /admin") {
			t.Fatalf("a page audited: %+v", e)
		}
		if e.Action == "POST /api/v1/domains" {
			n++
			if e.User != "sys@a.test" || e.Status != 201 {
				t.Fatalf("audit entry %+v", e)
			}
		}
	}
	if n != 1 {
		t.Fatalf("the domain's creation audited %d times", n)
	}
}

// TestWebScope: the pages show what the API lets the caller see; outside
// it, the 403 page; a feature not configured says so.
func TestWebScope(t *testing.T) {
	f := newFixture(t)
	unit := f.webLogin("boss@a.test", "pw-boss@a.test")
	_, body := unit.get(fmt.Sprintf("/admin/units/%d", f.units["F"]), http.StatusForbidden)
	mustContain(t, body, "Outside your administration")
	_, body = unit.get(fmt.Sprintf("/admin/units/%d", f.units["D1"]), 200)
	mustContain(t, body, "Unit D1", "ann@a.test")
	unit.get("/admin/domains/a.test", http.StatusForbidden)
	unit.get("/admin/domains/a.test/units", 200)
	unit.get("/admin/queue", http.StatusForbidden)
	unit.get("/admin/users/sys@a.test", http.StatusForbidden)
	// A unit administrator's users page lists its unit, not the domain.
	_, body = unit.get("/admin/users", 200)
	if strings.Contains(body, "sys@a.test") {
		t.Fatal("a unit administrator sees a user outside the unit")
	}
	_, body = unit.get("/admin/users?domain=a.test&unit="+fmt.Sprint(f.units["D1"]), 200)
	mustContain(t, body, "ann@a.test")
	unit.get("/admin/users?domain=a.test&unit="+fmt.Sprint(f.units["F"]), http.StatusForbidden)
	// Making a user in a unit outside its own: the API's 403.
	unit.get("/admin/users", 200)
	unit.post("/admin/users", url.Values{"address": {"x@a.test"}, "password": {"long enough"}, "unit": {fmt.Sprint(f.units["F"])}}, http.StatusForbidden)
	if _, err := f.users.LookupAddress(t.Context(), "x@a.test"); !errors.Is(err, userdata.ErrNotFound) {
		t.Fatalf("user made outside the unit: %v", err)
	}

	dom := f.webLogin("dom@a.test", "pw-dom@a.test")
	dom.get("/admin/domains/b.test", http.StatusForbidden)
	_, body = dom.get("/admin/domains/a.test", 200)
	mustContain(t, body, "The domain's settings are the system administrators'.", "_domainkey.a.test")
	dom.get("/admin/nodes", http.StatusForbidden)

	user := f.webLogin("ann@a.test", "pw-ann@a.test")
	_, body = user.get("/admin/", 200)
	mustContain(t, body, `href="/admin/password"`)
	if strings.Contains(body, `href="/admin/users"`) || strings.Contains(body, `href="/admin/domains"`) {
		t.Fatal("a plain user is shown administration links")
	}
	user.get("/admin/domains", http.StatusForbidden)
	user.get("/admin/audit", http.StatusForbidden)

	sys := f.webLogin("sys@a.test", "pw-sys@a.test")
	for _, p := range []string{"/admin/queue", "/admin/nodes", "/admin/events"} {
		_, body := sys.get(p, http.StatusNotFound)
		mustContain(t, body, "Not configured on this server")
	}
	_, body = sys.get("/admin/no-such-page", http.StatusNotFound)
	mustContain(t, body, "no such page")
	sys.get("/admin/users/nobody@a.test", http.StatusNotFound)
}

// TestWebUsers: users are made through the form (errors shown next to it
// with the input kept), searched, paged by address 100 at a time; user
// data is escaped; an over-long search shows the API's 400.
func TestWebUsers(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for i := range 250 {
		if _, err := f.users.CreateUser(ctx, userdata.NewUser{Address: fmt.Sprintf("p%03d@a.test", i), Name: fmt.Sprint("Person ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	c := f.webLogin("sys@a.test", "pw-sys@a.test")
	// Paging: 100, 100, then the rest (the fixture's four users sort
	// after p…), each user once and in order.
	var seen []string
	addr := regexp.MustCompile(`<td><a href="/admin/users/[^"]+">([^<]+)</a>`)
	next := "/admin/users?domain=a.test"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("more pages than users")
		}
		_, body := c.get(next, 200)
		ms := addr.FindAllStringSubmatch(body, -1)
		if len(ms) > 100 {
			t.Fatalf("a page of %d users", len(ms))
		}
		for _, m := range ms {
			seen = append(seen, m[1])
		}
		next = ""
		if m := regexp.MustCompile(`id="next-page" href="([^"]+)"`).FindStringSubmatch(body); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
			if want := url.QueryEscape(ms[len(ms)-1][1]); !strings.Contains(next, "after="+want) {
				t.Fatalf("next page %q not after %s", next, want)
			}
		}
	}
	if len(seen) != 254 {
		t.Fatalf("paged through %d users, want 254", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i-1] >= seen[i] {
			t.Fatalf("out of order: %s then %s", seen[i-1], seen[i])
		}
	}
	_, body := c.get("/admin/users?domain=a.test&search=person+17", 200)
	mustContain(t, body, "p017@a.test", "p170@a.test")
	if strings.Contains(body, "p018@a.test") {
		t.Fatal("search shows a user it does not match")
	}
	_, body = c.get("/admin/users?domain=a.test&search="+strings.Repeat("x", 300), http.StatusBadRequest)
	mustContain(t, body, "search: too long")

	// A refused form: the API's message by the form, the input kept,
	// never the password.
	_, body = c.post("/admin/users", url.Values{"form": {"user"}, "address": {"new@a.test"}, "password": {"short"}, "name": {"Kept Name"}, "quota": {"100"}, "quota_unit": {"MiB"}}, http.StatusBadRequest)
	mustContain(t, body, "password: at least 8 characters", `value="new@a.test"`, `value="Kept Name"`, `value="100"`)
	if strings.Contains(body, `value="short"`) {
		t.Fatal("the password echoed")
	}
	_, body = c.post("/admin/users", url.Values{"form": {"user"}, "address": {"new@a.test"}, "password": {"long enough"}, "quota": {"-1"}}, http.StatusBadRequest)
	mustContain(t, body, "quota: a whole number of MiB")

	// A name with markup is shown as text.
	evil := `<script>alert("x")</script>`
	resp, _ := c.post("/admin/users", url.Values{"form": {"user"}, "address": {"new@a.test"}, "password": {"long enough"}, "name": {evil}, "unit": {fmt.Sprint(f.units["E"])}, "quota": {"100"}, "quota_unit": {"MiB"}}, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/admin/users/new@a.test?done=created" {
		t.Fatalf("created, redirected to %q", loc)
	}
	u, err := f.users.LookupAddress(ctx, "new@a.test")
	if err != nil || u.Quota != 100<<20 || u.Unit != f.units["E"] || u.Name != evil {
		t.Fatalf("user made: %+v, %v", u, err)
	}
	_, body = c.get("/admin/users/new@a.test", 200)
	if strings.Contains(body, "<script") {
		t.Fatal("user data not escaped")
	}
	mustContain(t, body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "100 MiB (104857600 bytes)")

	// Change the quota and disable; only what changed is sent.
	c.post("/admin/users/new@a.test", url.Values{"form": {"settings"}, "name": {evil}, "quota": {"2"}, "quota_unit": {"GiB"}, "unit": {fmt.Sprint(f.units["E"])}, "disabled": {"on"}}, http.StatusSeeOther)
	u, _ = f.users.LookupAddress(ctx, "new@a.test")
	if u.Quota != 2<<30 || !u.Disabled || u.Name != evil {
		t.Fatalf("user changed: %+v", u)
	}
	// Deletion needs the box ticked.
	c.get("/admin/users/new@a.test", 200)
	_, body = c.post("/admin/users/new@a.test/delete", url.Values{"form": {"delete"}}, http.StatusBadRequest)
	mustContain(t, body, "tick the box")
	c.post("/admin/users/new@a.test/delete", url.Values{"form": {"delete"}, "confirm": {"on"}}, http.StatusSeeOther)
	if _, err := f.users.LookupAddress(ctx, "new@a.test"); !errors.Is(err, userdata.ErrNotFound) {
		t.Fatalf("deleted user still there: %v", err)
	}
}

// TestWebPassword: a user changes their own password (the old one checked)
// and logs in with the new one.
func TestWebPassword(t *testing.T) {
	f := newFixture(t)
	c := f.webLogin("ann@a.test", "pw-ann@a.test")
	c.get("/admin/password", 200)
	_, body := c.post("/admin/password", url.Values{"form": {"password"}, "old": {"not it"}, "password": {"a new password"}, "password2": {"a new password"}}, http.StatusBadRequest)
	mustContain(t, body, "not the current password")
	_, body = c.post("/admin/password", url.Values{"form": {"password"}, "old": {"pw-ann@a.test"}, "password": {"a new password"}, "password2": {"another"}}, http.StatusBadRequest)
	mustContain(t, body, "differ")
	resp, _ := c.post("/admin/password", url.Values{"form": {"password"}, "old": {"pw-ann@a.test"}, "password": {"a new password"}, "password2": {"a new password"}}, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/admin/password?done=password" {
		t.Fatalf("redirected to %q", loc)
	}
	f.webLogin("ann@a.test", "a new password")
}

// TestWebStats: the chart shows each day's counts, a bar and a title per
// day and series.
func TestWebStats(t *testing.T) {
	f := newFixture(t)
	ann, err := f.users.LookupAddress(t.Context(), "ann@a.test")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.srv.Delivered(ann, 10)
	}
	f.srv.Submitted(ann, 1)
	today := time.Now().UTC().Format(time.DateOnly)
	c := f.webLogin("sys@a.test", "pw-sys@a.test")
	for _, p := range []string{"/admin/domains/a.test", fmt.Sprintf("/admin/units/%d", f.units["D1"])} {
		_, body := c.get(p, 200)
		if n := strings.Count(body, "<rect class="); n != 2*statsDays {
			t.Fatalf("%s: %d bars, want %d", p, n, 2*statsDays)
		}
		mustContain(t, body, "<title>"+today+": 3 received</title>", "<title>"+today+": 1 sent</title>", "received (3)")
	}
}

func TestMakeChart(t *testing.T) {
	c := makeChart(nil)
	if len(c.Bars) != 0 || c.W <= 0 {
		t.Fatalf("empty chart %+v", c)
	}
	c = makeChart([]dayJSON{{Day: "2025-01-01", Received: 1 << 40}, {Day: "2025-01-02", Received: 1, Sent: 0}})
	for _, b := range c.Bars {
		if b.H < 0 || b.Y < 0 || b.H > c.Base {
			t.Fatalf("bar out of the plot: %+v", b)
		}
	}
	if c.Bars[2].H != 1 {
		t.Fatalf("a day with 1 of 2^40 has no visible bar: %+v", c.Bars[2])
	}
}

// findChromium returns the path of a Chromium or Chrome.
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browserSession is one role's browser context: its own cookies, the
// problems its pages showed, its screenshots.
type browserSession struct {
	t    *testing.T
	ctx  context.Context
	name string
	base string
	dir  string
	mu   sync.Mutex
	bad  []string // console errors, exceptions, CSP violations, 5xx answers
	n    *int
}

func (b *browserSession) event(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *cdpruntime.EventConsoleAPICalled:
		if ev.Type == cdpruntime.ConsoleAPICalledTypeError {
			msg = "console error"
			for _, a := range ev.Args {
				msg += " " + string(a.Value)
			}
		}
	case *cdpruntime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
	case *cdplog.EventEntryAdded:
		// Network entries are the 403 and 404 pages the test asks
		// for; anything else at error level (a CSP violation, a
		// script's error) is a fault of the pages.
		if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
			msg = fmt.Sprintf("log %s: %s", ev.Entry.Source, ev.Entry.Text)
		}
	case *network.EventResponseReceived:
		if ev.Response.Status >= 500 {
			msg = fmt.Sprintf("HTTP %d for %s", ev.Response.Status, ev.Response.URL)
		}
	}
	if msg != "" {
		b.mu.Lock()
		b.bad = append(b.bad, b.name+": "+msg)
		b.mu.Unlock()
	}
}

func (b *browserSession) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
	b.check()
}

func (b *browserSession) check() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.bad) > 0 {
		b.t.Fatalf("the browser saw: %s", strings.Join(b.bad, "; "))
	}
}

// open navigates to path, checks the page's text has each of want, and
// screenshots it.
func (b *browserSession) open(path, shot string, want ...string) string {
	b.t.Helper()
	b.run("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS("main")))
	return b.expect(shot, want...)
}

// expect checks the current page's text, and screenshots it.
func (b *browserSession) expect(shot string, want ...string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText"))
	if err != nil {
		b.t.Fatalf("%s: page text: %v", b.name, err)
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			b.t.Fatalf("%s: %s lacks %q:\n%s", b.name, loc, w, text)
		}
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("%s: screenshot %s: %v", b.name, shot, err)
	}
	if len(png) < 1000 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		b.t.Fatalf("%s: screenshot %s: %d bytes, not a PNG", b.name, shot, len(png))
	}
	*b.n++
	file := filepath.Join(b.dir, fmt.Sprintf("%02d-%s-%s.png", *b.n, b.name, shot))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.check()
	return text
}

// location is the page's URL.
func (b *browserSession) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

// login types the address and password into the login form.
func (b *browserSession) login(addr, password string, want ...string) {
	b.t.Helper()
	b.open("/admin/login", "login", "Log in")
	b.run("log in as "+addr,
		chromedp.SendKeys(chromedp.ID("login-user"), addr),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("limits")))
	b.expect("dashboard", append([]string{addr}, want...)...)
}

// TestBrowser drives the pages in headless Chromium: a system
// administrator makes a domain, a unit and a user with a quota through
// the forms and finds the user; a domain and a unit administrator see
// their scope and the 403 page outside it; a user changes their own
// password. Every page is screenshotted (into $MAILSYS_SCREENSHOTS if
// set); a console error, an exception, a CSP violation or a 5xx fails.
func TestBrowser(t *testing.T) {
	chromium := findChromium()
	if chromium == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no chromium, chromium-browser or google-chrome on PATH (CI installs Debian's chromium)")
		}
		t.Skip("no chromium, chromium-browser or google-chrome on PATH")
	}
	dir := os.Getenv("MAILSYS_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	shots := 0
	session := func(name string) *browserSession {
		b := &browserSession{t: t, name: name, base: f.url, dir: dir, n: &shots}
		c, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext(), chromedp.WithListener(b.event))
		t.Cleanup(cancel)
		// The tab lives as long as the context of its first Run: run
		// once without a timeout of its own.
		if err := chromedp.Do(c); err != nil {
			t.Fatalf("%s: new browser context: %v", name, err)
		}
		b.ctx = c
		return b
	}

	// The system administrator.
	sys := session("system")
	sys.login("sys@a.test", "pw-sys@a.test", "system administrator", "You administer everything")
	sys.open("/admin/domains", "domains", "a.test", "New domain")
	sys.run("create a domain",
		chromedp.SendKeys(chromedp.ID("domain-name"), "example.org"),
		chromedp.SendKeys(chromedp.ID("domain-quota"), "10"),
		chromedp.SetValue(chromedp.CSS(`select[name="quota_unit"]`), "GiB"),
		chromedp.Click(chromedp.ID("domain-submit")),
		chromedp.WaitVisible(chromedp.CSS(".done")))
	sys.expect("domain", "Created.", "example.org", "per day (UTC)", "10 GiB")
	sys.run("open the units", chromedp.Click(chromedp.CSS(`main a[href="/admin/domains/example.org/units"]`)), chromedp.WaitVisible(chromedp.ID("unit-create")))
	sys.run("create a unit",
		chromedp.SendKeys(chromedp.ID("unit-name"), "Sales"),
		chromedp.Click(chromedp.ID("unit-submit")),
		chromedp.WaitVisible(chromedp.CSS(".done")))
	sys.expect("unit", "Unit Sales", "Created.")
	m := regexp.MustCompile(`/admin/units/(\d+)`).FindStringSubmatch(sys.location())
	if m == nil {
		t.Fatalf("after creating a unit: at %s", sys.location())
	}
	sales := m[1]
	sys.run("create a user with a quota",
		chromedp.SendKeys(chromedp.ID("user-address"), "carol@example.org"),
		chromedp.SendKeys(chromedp.ID("user-password"), "carol's first password"),
		chromedp.SendKeys(chromedp.ID("user-name"), "Carol <Sales>"),
		chromedp.SendKeys(chromedp.ID("user-quota"), "250"),
		chromedp.Click(chromedp.ID("user-submit")),
		chromedp.WaitVisible(chromedp.ID("user-facts")))
	sys.expect("user", "carol@example.org", "Carol <Sales>", "250 MiB (262144000 bytes)")
	u, err := f.users.LookupAddress(ctx, "carol@example.org")
	if err != nil || u.Quota != 250<<20 || fmt.Sprint(u.Unit) != sales {
		t.Fatalf("the user made through the form: %+v, %v", u, err)
	}
	sys.open("/admin/domains/example.org/units", "units", "Sales")
	sys.open("/admin/users?domain=example.org", "users-all", "carol@example.org")
	sys.run("search for the user",
		chromedp.SetValue(chromedp.ID("search-domain"), "example.org"),
		chromedp.SendKeys(chromedp.ID("search-text"), "carol"),
		chromedp.Click(chromedp.ID("search-submit")),
		chromedp.WaitVisible(chromedp.CSS("table.users")))
	sys.expect("search", "carol@example.org")
	if loc := sys.location(); !strings.Contains(loc, "search=carol") {
		t.Fatalf("search went to %s", loc)
	}
	sys.run("open the user", chromedp.Click(chromedp.CSS(`a[href="/admin/users/carol@example.org"]`)), chromedp.WaitVisible(chromedp.ID("user-facts")))
	sys.expect("user-found", "carol@example.org", "250 MiB")
	sys.open("/admin/classes", "classes", "Define a class")
	sys.open("/admin/queue", "queue", "Not configured on this server")
	sys.open("/admin/nodes", "nodes", "Not configured on this server")
	sys.open("/admin/events", "events", "Not configured on this server")
	sys.open("/admin/audit", "audit", "POST /api/v1/domains", "POST /api/v1/units", "POST /api/v1/users")

	// A domain and a unit administrator of example.org.
	for _, a := range []string{"dave@example.org", "erin@example.org"} {
		if _, err := f.users.CreateUser(ctx, userdata.NewUser{Address: a, Password: "pw-" + a, Unit: u.Unit}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.srv.SetGrant(ctx, Grant{User: "dave@example.org", Role: RoleDomain, Domain: "example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.SetGrant(ctx, Grant{User: "erin@example.org", Role: RoleUnit, Domain: "example.org", Unit: uint64(u.Unit)}); err != nil {
		t.Fatal(err)
	}
	dom := session("domain")
	dom.login("dave@example.org", "pw-dave@example.org", "administrator of example.org", "are the system administrators'")
	dom.open("/admin/domains/example.org", "domain", "The domain's settings are the system administrators'.", "per day (UTC)")
	dom.open("/admin/users", "users", "carol@example.org", "dave@example.org")
	dom.open("/admin/domains/a.test", "other-domain", "Outside your administration")
	dom.open("/admin/queue", "queue", "Outside your administration")

	unit := session("unit")
	unit.login("erin@example.org", "pw-erin@example.org", "administrator of unit Sales (example.org)", "outside your administration")
	unit.open("/admin/units/"+sales, "unit", "Unit Sales", "carol@example.org")
	unit.open("/admin/users", "users", "carol@example.org")
	unit.open(fmt.Sprintf("/admin/units/%d", f.units["E"]), "other-unit", "Outside your administration")
	unit.open("/admin/domains/example.org", "domain", "Outside your administration")

	// The user changes their own password, and logs in with it.
	user := session("user")
	user.login("carol@example.org", "carol's first password", "You are no administrator")
	user.run("change the password",
		chromedp.Click(chromedp.CSS(`main a[href="/admin/password"]`)),
		chromedp.WaitVisible(chromedp.ID("password-form")),
		chromedp.SendKeys(chromedp.ID("pw-old"), "carol's first password"),
		chromedp.SendKeys(chromedp.ID("pw-new"), "carol's new password"),
		chromedp.SendKeys(chromedp.ID("pw-new2"), "carol's new password"),
		chromedp.Click(chromedp.ID("password-submit")),
		chromedp.WaitVisible(chromedp.CSS(".done")))
	user.expect("password-changed", "Password changed.")
	user.run("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-form")))
	user.open("/admin/domains", "logged-out", "Log in")
	user.login("carol@example.org", "carol's new password", "You are no administrator")
	user.open("/admin/users", "users", "Outside your administration")
	t.Logf("%d screenshots in %s", shots, dir)
}

// BenchmarkUsersPage renders /admin/users of a domain of 100,000 users in
// a userdata.DB: the first page (baseline) against a page deep in
// (after= near the end). The API pages by address over the DB's
// domain-user index, so a deep page costs no more than the first: the
// ratio deep/first stays at or below 1 (0.6 here: the deep page's users,
// made last, are likely still in Pebble's memtable). Making the 100,000
// users (without passwords, NoSync) takes about 4 s of setup, outside the
// timing; a run with -benchtime 200x takes about 5 s in all.
func BenchmarkUsersPage(b *testing.B) {
	ctx := b.Context()
	db, err := userdata.Open(ctx, userdata.Config{Dir: b.TempDir(), Node: "ud1", NoSync: true, DiskReserve: -1,
		CacheSize: 64 << 20, LoginCache: -1, Argon2: userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "big.test"}); err != nil {
		b.Fatal(err)
	}
	const n = 100_000
	for i := range n {
		if _, err := db.CreateUser(ctx, userdata.NewUser{Address: fmt.Sprintf("user%06d@big.test", i), Name: fmt.Sprint("Person ", i)}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.CreateUser(ctx, userdata.NewUser{Address: "admin@big.test", Password: "the admin's password"}); err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig(b.TempDir(), db)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.SetGrant(ctx, Grant{User: "admin@big.test", Role: RoleSystem}); err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"user":"admin@big.test","password":"the admin's password"}`))
	s.Handler().ServeHTTP(rec, req)
	cookies := rec.Result().Cookies()
	if rec.Code != 200 || len(cookies) == 0 {
		b.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	render := func(path string) time.Duration {
		req := httptest.NewRequest("GET", path, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		start := time.Now()
		s.Handler().ServeHTTP(rec, req)
		d := time.Since(start)
		if rec.Code != 200 || strings.Count(rec.Body.String(), `<td><a href="/admin/users/`) != 100 || !strings.Contains(rec.Body.String(), `id="next-page"`) {
			b.Fatalf("GET %s: %d, not a page of 100 with a next page: %s", path, rec.Code, excerpt(rec.Body.String()))
		}
		return d
	}
	var first, deep time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// Alternate the order, so that neither gains from the other's
		// warming of caches.
		if i%2 == 0 {
			first += render("/admin/users?domain=big.test")
			deep += render("/admin/users?domain=big.test&after=user099800%40big.test")
		} else {
			deep += render("/admin/users?domain=big.test&after=user099800%40big.test")
			first += render("/admin/users?domain=big.test")
		}
	}
	b.ReportMetric(float64(first.Microseconds())/float64(b.N), "first_us/op")
	b.ReportMetric(float64(deep.Microseconds())/float64(b.N), "deep_us/op")
	b.ReportMetric(float64(deep)/float64(first), "ratio_deep_to_first")
}

// TestWebQueue: the queue page over a real outbound queue (its one
// message deferred: the destination refuses connections): hold, release
// and delete through the buttons, each audited once by the API.
func TestWebQueue(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // a port that refuses
	zone := &resolve.Static{}
	zone.SetMX("example.net", "10 mx.example.net")
	zone.SetIP("mx.example.net", netip.MustParseAddr("127.0.0.1"))
	qcfg := queue.DefaultConfig(t.TempDir())
	qcfg.Resolver, qcfg.Port, qcfg.DisableSTS = zone, port, true
	qcfg.RetryFirst = time.Hour
	qcfg.Logger = slog.New(slog.DiscardHandler)
	q, err := queue.Open(t.Context(), qcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	body := "From: ann@a.test\r\nSubject: queued\r\n\r\nbody\r\n"
	if err := q.Enqueue(t.Context(), queue.Message{ID: "web-q1", From: "ann@a.test", Rcpts: []queue.Rcpt{{Addr: "bob@example.net"}}}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) { c.Queue = q })
	c := f.webLogin("sys@a.test", "pw-sys@a.test")
	_, page := c.get("/admin/queue", 200)
	mustContain(t, page, "web-q1", "bob@example.net", `action="/admin/queue/web-q1/hold"`)
	c.post("/admin/queue/web-q1/hold", url.Values{}, http.StatusSeeOther)
	_, page = c.get("/admin/queue", 200)
	mustContain(t, page, `<span class="tag">held</span>`, `action="/admin/queue/web-q1/release"`)
	c.post("/admin/queue/web-q1/release", url.Values{}, http.StatusSeeOther)
	c.post("/admin/queue/web-q1/retry", url.Values{}, http.StatusSeeOther)
	c.post("/admin/queue/web-q1/explode", url.Values{}, http.StatusNotFound)
	c.post("/admin/queue/web-q1/delete", url.Values{}, http.StatusSeeOther)
	_, page = c.get("/admin/queue", 200)
	mustContain(t, page, "The queue is empty.")
	if es, err := q.List(t.Context()); err != nil || len(es) != 0 {
		t.Fatalf("queue after delete: %v, %v", es, err)
	}
	c.post("/admin/queue/web-q1/hold", url.Values{}, http.StatusNotFound)
	var log []AuditEntry
	f.must(f.do(f.tok["system"], "GET", "/api/v1/audit?limit=1000", nil, &log), 200)
	n := map[string]int{}
	for _, e := range log {
		n[e.Action]++
	}
	if n["POST /api/v1/queue/{id}/hold"] != 2 || n["POST /api/v1/queue/{id}/release"] != 1 || n["DELETE /api/v1/queue/{id}"] != 1 {
		t.Fatalf("audited: %v", n)
	}
}
