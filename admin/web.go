package admin

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The web administration under /admin/: server-rendered pages (no
// JavaScript) that are a client of the JSON API, in process (webapi.go).
// A form carries the session's CSRF token in the hidden field csrf, checked
// here before the API is called; every change is followed by a redirect
// (POST-redirect-GET).

//go:embed web
var webFS embed.FS

// contentSecurityPolicy is every page's: no script at all, styles and
// images from the server only, forms posting back to it.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// webPage is what a page's template gets.
type webPage struct {
	Title  string
	Me     *webMe
	CSRF   string
	Done   string     // what the last change did, after its redirect
	Err    *apiError  // the error of the form re-rendered
	Form   url.Values // the input of the form re-rendered
	Status int
	D      any // the page's own data
}

// FormErr returns the error to show in form name: the form re-rendered
// names itself in its hidden field "form"; name "" is the page's top,
// for an error of a form without a name.
func (v *webPage) FormErr(name string) string {
	if v.Err == nil || v.Form.Get("form") != name {
		return ""
	}
	return v.Err.Msg
}

// FieldErr returns the error of field in form name.
func (v *webPage) FieldErr(name, field string) string {
	if v.Err == nil || v.Form.Get("form") != name || v.Err.Field != field {
		return ""
	}
	return v.Err.Msg
}

// Val returns the re-rendered form name's value of field, or def for a
// form shown afresh.
func (v *webPage) Val(name, field string, def any) string {
	if v.Form != nil && v.Form.Get("form") == name && v.Form.Has(field) {
		return v.Form.Get(field)
	}
	if v.Form != nil && v.Form.Get("form") == name && def != nil {
		if _, isBool := def.(bool); isBool {
			return "" // an unticked box is absent
		}
	}
	switch d := def.(type) {
	case nil:
		return ""
	case string:
		return d
	case bool:
		if d {
			return "on"
		}
		return ""
	default:
		return fmt.Sprint(d)
	}
}

// Size is the size input field of form name: the re-rendered input, or
// def split into a number and its unit.
func (v *webPage) Size(name, field string, def int64) sizeInput {
	in := sizeInput{Name: field, ID: name + "-" + field, Units: []string{"B", "KiB", "MiB", "GiB"}}
	if v.Form != nil && v.Form.Get("form") == name && v.Form.Has(field) {
		in.N, in.Unit = v.Form.Get(field), v.Form.Get(field+"_unit")
		return in
	}
	q := splitQuota(def)
	in.N, in.Unit = strconv.FormatInt(q.N, 10), q.Unit
	if def == 0 {
		in.N = ""
	}
	return in
}

// sizeInput is a size's input: a number and a unit.
type sizeInput struct {
	Name, ID, N, Unit string
	Units             []string
}

// webMe is who is logged in.
type webMe struct {
	Address  string
	Name     string
	Grant    *Grant
	UnitName string // a unit administrator's unit
}

func (m *webMe) System() bool { return m != nil && m.Grant != nil && m.Grant.Role == RoleSystem }
func (m *webMe) Admin() bool  { return m != nil && m.Grant != nil }

// DomainAdmin reports whether m administers a whole domain (as a domain
// or system administrator): its settings, its unit tree.
func (m *webMe) DomainAdmin() bool {
	return m.Admin() && (m.Grant.Role == RoleSystem || m.Grant.Role == RoleDomain)
}

// Role describes m's role for the nav bar.
func (m *webMe) Role() string {
	switch {
	case m == nil:
		return ""
	case m.Grant == nil:
		return "user"
	case m.Grant.Role == RoleSystem:
		return "system administrator"
	case m.Grant.Role == RoleDomain:
		return "administrator of " + m.Grant.Domain
	case m.Grant.Role == RoleUnit:
		name := m.UnitName
		if name == "" {
			name = "#" + strconv.FormatUint(m.Grant.Unit, 10)
		}
		return "administrator of unit " + name + " (" + m.Grant.Domain + ")"
	}
	return string(m.Grant.Role)
}

// webTemplates are the pages, each parsed with the layout.
var webTemplates = func() map[string]*template.Template {
	funcs := template.FuncMap{
		"bytes":    humanBytes,
		"when":     func(t time.Time) string { return fmtTime(t) },
		"whenp":    func(t *time.Time) string { return fmtTimeP(t) },
		"pathq":    url.PathEscape,
		"split":    splitQuota,
		"selector": func(name string) string { sel, _, _ := strings.Cut(name, "._domainkey."); return sel },
		"domainof": domainOf,
		"protocols": func() []string {
			out := make([]string, len(protocolNames))
			for i, pn := range protocolNames {
				out[i] = pn.name
			}
			return out
		},
		"seq": func(n int) []int { return make([]int, n) },
		"unitform": func(p *webPage, domain string, units []*unitNode, classes []classJSON, parent string) unitFormData {
			return unitFormData{P: p, Domain: domain, Units: units, Classes: classes, Parent: parent}
		},
		"userform": func(p *webPage, domain string, classes []classJSON) userFormData {
			return userFormData{P: p, Domain: domain, Classes: classes}
		},
		"chart": func(days []dayJSON) chart { return makeChart(days) },
		"dur":   func(d time.Duration) string { return d.String() },
		"query": func(kv ...string) template.URL { return queryURL(kv...) },
	}
	out := map[string]*template.Template{}
	names, err := fs.Glob(webFS, "web/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := strings.TrimPrefix(n, "web/")
		if base == "layout.html" {
			continue
		}
		out[strings.TrimSuffix(base, ".html")] = template.Must(template.New("").Funcs(funcs).ParseFS(webFS, "web/layout.html", n))
	}
	return out
}()

// unitFormData and userFormData are what the shared forms get.
type unitFormData struct {
	P       *webPage
	Domain  string
	Units   []*unitNode
	Classes []classJSON
	Parent  string
}

type userFormData struct {
	P       *webPage
	Domain  string
	Classes []classJSON
}

// webHandler serves one page; v has the caller (nil on the login page).
type webHandler func(w http.ResponseWriter, r *http.Request, v *webPage) error

// webRoutes registers the pages under /admin/. They are registered on
// the mux directly, not as API endpoints: the API calls they make are
// what the audit log records.
func (s *Server) webRoutes(m *http.ServeMux) {
	pg := func(pattern string, fn webHandler) { m.Handle(pattern, s.webPage(fn, true)) }
	m.Handle("GET /admin", http.RedirectHandler("/admin/", http.StatusMovedPermanently))
	m.Handle("GET /admin/static/admin.css", http.HandlerFunc(s.webCSS))
	m.Handle("GET /admin/login", s.webPage(s.loginPage, false))
	m.Handle("POST /admin/login", s.webPage(s.loginPost, false))
	pg("POST /admin/logout", s.logoutPost)
	pg("GET /admin/{$}", s.dashboard)
	pg("GET /admin/password", s.passwordPage)
	pg("POST /admin/password", s.passwordPost)
	pg("GET /admin/domains", s.domainsPage)
	pg("POST /admin/domains", s.domainsPost)
	pg("GET /admin/domains/{domain}", s.domainPage)
	pg("POST /admin/domains/{domain}", s.domainPost)
	pg("POST /admin/domains/{domain}/aliases", s.domainAliasPost)
	pg("POST /admin/domains/{domain}/dkim/rotate", s.dkimRotatePost)
	pg("POST /admin/domains/{domain}/dkim/{selector}/retire", s.dkimRetirePost)
	pg("GET /admin/domains/{domain}/units", s.unitsPage)
	pg("POST /admin/domains/{domain}/units", s.unitsPost)
	pg("GET /admin/units/{id}", s.unitPage)
	pg("POST /admin/units/{id}", s.unitPost)
	pg("GET /admin/users", s.usersPage)
	pg("POST /admin/users", s.usersPost)
	pg("GET /admin/users/{address}", s.userPage)
	pg("POST /admin/users/{address}", s.userPost)
	pg("POST /admin/users/{address}/password", s.userPasswordPost)
	pg("POST /admin/users/{address}/delete", s.userDeletePost)
	pg("GET /admin/classes", s.classesPage)
	pg("POST /admin/classes", s.classesPost)
	pg("GET /admin/queue", s.queuePage)
	pg("POST /admin/queue/{id}/{action}", s.queuePost)
	pg("GET /admin/nodes", s.nodesPage)
	pg("POST /admin/nodes/{id}", s.nodePost)
	pg("GET /admin/events", s.eventsPage)
	pg("GET /admin/audit", s.auditPage)
	pg("/admin/", func(w http.ResponseWriter, r *http.Request, v *webPage) error {
		return &apiError{Status: http.StatusNotFound, Msg: "no such page"}
	})
}

func (s *Server) webCSS(w http.ResponseWriter, r *http.Request) {
	b, err := webFS.ReadFile("web/admin.css")
	if err != nil {
		http.Error(w, "no stylesheet", http.StatusInternalServerError)
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Write(b)
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

// webPage wraps a page: security headers, a bounded form, the CSRF check
// of a change, the caller (a page that needs one redirects to the login
// form without), and the error pages.
func (s *Server) webPage(fn webHandler, needLogin bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		w.Header().Set("Cache-Control", "no-store")
		v := &webPage{Status: http.StatusOK}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
			if err := r.ParseForm(); err != nil {
				s.webError(w, r, v, &apiError{Status: http.StatusBadRequest, Msg: "bad form: " + err.Error()})
				return
			}
		}
		if needLogin {
			t, ok := s.session(r)
			if !ok {
				if r.Method == http.MethodGet {
					http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
					return
				}
				s.webError(w, r, v, &apiError{Status: http.StatusUnauthorized, Msg: "log in first"})
				return
			}
			v.CSRF = t.CSRF
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				if got := r.PostForm.Get("csrf"); t.CSRF == "" || subtle.ConstantTimeCompare([]byte(got), []byte(t.CSRF)) != 1 {
					s.webError(w, r, v, &apiError{Status: http.StatusForbidden, Msg: "missing or wrong CSRF token: reload the page and try again"})
					return
				}
			}
			me, err := s.webWho(r)
			if e, ok := asAPIError(err); ok && e.Status == http.StatusUnauthorized {
				http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
				return
			}
			if err != nil {
				s.webError(w, r, v, err)
				return
			}
			v.Me = me
		}
		if d := r.URL.Query().Get("done"); d != "" {
			v.Done = doneMessages[d]
		}
		if err := fn(w, r, v); err != nil {
			s.webError(w, r, v, err)
		}
	})
}

// doneMessages are what ?done= may say after a change: fixed texts, so a
// link cannot make a page say something else.
var doneMessages = map[string]string{
	"password": "Password changed.",
	"created":  "Created.",
	"saved":    "Saved.",
	"deleted":  "Deleted.",
	"queue":    "Done.",
	"rotated":  "A new DKIM key signs the domain's mail; publish its record.",
	"retired":  "The DKIM key is removed.",
}

// webWho asks the API who the caller is.
func (s *Server) webWho(r *http.Request) (*webMe, error) {
	var me meResponse
	if err := s.call(r, http.MethodGet, "/api/v1/me", nil, &me); err != nil {
		return nil, err
	}
	out := &webMe{Address: me.Address, Name: me.Name, Grant: me.Grant}
	if me.Grant != nil && me.Grant.Role == RoleUnit {
		var u unitJSON
		if err := s.call(r, http.MethodGet, apiPath(nil, "units", strconv.FormatUint(me.Grant.Unit, 10)), nil, &u); err == nil {
			out.UnitName = u.Name
		}
	}
	return out, nil
}

// webError shows err as a page with its status: the API's 403 as
// "outside your administration", a feature's 404 as "not configured".
func (s *Server) webError(w http.ResponseWriter, r *http.Request, v *webPage, err error) {
	e, ok := asAPIError(err)
	if !ok {
		s.log.Error("page failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &apiError{Status: http.StatusInternalServerError, Msg: "internal error"}
	}
	type errData struct {
		Heading, Detail string
	}
	d := errData{Heading: http.StatusText(e.Status), Detail: e.Msg}
	switch {
	case e.Status == http.StatusForbidden && e.Msg == errForbidden.Msg:
		d.Heading, d.Detail = "Outside your administration", "This object is not in what you administer."
	case e.Status == http.StatusForbidden:
		d.Heading = "Forbidden"
	case e.notConfigured():
		d.Heading, d.Detail = "Not configured on this server", e.Msg
	case e.Status == http.StatusNotFound:
		d.Heading = "Not found"
	}
	v.Status, v.Title, v.D, v.Err = e.Status, d.Heading, d, nil
	if err := s.render(w, "error", v); err != nil {
		s.log.Error("error page failed", "err", err)
	}
}

// render writes page name with v.
func (s *Server) render(w http.ResponseWriter, name string, v *webPage) error {
	t, ok := webTemplates[name]
	if !ok {
		return fmt.Errorf("admin: no page template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("admin: page %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if v.Status == 0 {
		v.Status = http.StatusOK
	}
	w.WriteHeader(v.Status)
	_, err := w.Write(buf.Bytes())
	return err
}

// formFailed re-renders a form's page with the API's complaint next to it
// and the user's input when the API refused the input (4xx but 401, 403
// and 404, which are pages of their own); any other error is the
// caller's error page.
func (s *Server) formFailed(w http.ResponseWriter, r *http.Request, v *webPage, err error, again webHandler) error {
	e, ok := asAPIError(err)
	if !ok || e.Status < 400 || e.Status > 499 || e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Status == http.StatusNotFound {
		return err
	}
	v.Err, v.Form, v.Status = e, r.PostForm, e.Status
	return again(w, r, v)
}

// formError is a refusal of the pages' own (before any API call).
func formError(field, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Field: field, Msg: field + ": " + msg}
}

func redirect(w http.ResponseWriter, r *http.Request, to, done string) error {
	if done != "" {
		sep := "?"
		if strings.Contains(to, "?") {
			sep = "&"
		}
		to += sep + "done=" + done
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// Login, logout and one's own password.

// loginCookie carries the login form's CSRF token (double submit): a
// login cannot be forged from another site.
const loginCookie = "mailsys_login"

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	tok := ""
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) == 64 {
		tok = c.Value
	} else {
		tok = newSecret()
		http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/admin/login", HttpOnly: true,
			Secure: s.cfg.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	}
	v.CSRF, v.Title = tok, "Log in"
	return s.render(w, "login", v)
}

func (s *Server) loginPost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	c, err := r.Cookie(loginCookie)
	if err != nil || len(c.Value) != 64 || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(c.Value)) != 1 {
		v.Err, v.Form, v.Status = &apiError{Status: http.StatusForbidden, Msg: "the login form expired: try again"}, r.PostForm, http.StatusForbidden
		return s.loginPage(w, r, v)
	}
	// The inner login goes without the browser's old session.
	r2 := r.Clone(r.Context())
	r2.Header.Del("Cookie")
	rec, err := s.roundTrip(r2, http.MethodPost, "/api/v1/login", loginRequest{User: r.PostForm.Get("user"), Password: r.PostForm.Get("password")})
	if err != nil {
		return err
	}
	if err := decodeAnswer(rec, http.MethodPost, "/api/v1/login", nil); err != nil {
		e, ok := asAPIError(err)
		if !ok {
			return err
		}
		v.Err, v.Form, v.Status = e, r.PostForm, e.Status
		v.Form.Del("password")
		v.Form.Set("form", "login")
		return s.loginPage(w, r, v)
	}
	for _, c := range rec.header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", c)
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/admin/login", MaxAge: -1, HttpOnly: true, Secure: s.cfg.TLS != nil, SameSite: http.SameSiteStrictMode})
	return redirect(w, r, "/admin/", "")
}

func (s *Server) logoutPost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	rec, err := s.roundTrip(r, http.MethodPost, "/api/v1/logout", nil)
	if err != nil {
		return err
	}
	if err := decodeAnswer(rec, http.MethodPost, "/api/v1/logout", nil); err != nil {
		return err
	}
	for _, c := range rec.header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", c)
	}
	return redirect(w, r, "/admin/login", "")
}

func (s *Server) passwordPage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	v.Title = "Your password"
	return s.render(w, "password", v)
}

func (s *Server) passwordPost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	f := r.PostForm
	if f.Get("password") != f.Get("password2") {
		return s.formFailed(w, r, v, formError("password2", "the two new passwords differ"), s.passwordPage)
	}
	if err := s.call(r, http.MethodPost, "/api/v1/me/password", passwordRequest{Old: f.Get("old"), Password: f.Get("password")}, nil); err != nil {
		r.PostForm = url.Values{} // never echo passwords
		return s.formFailed(w, r, v, err, s.passwordPage)
	}
	return redirect(w, r, "/admin/password", "password")
}

// The dashboard.

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, v *webPage) error {
	v.Title = "Administration"
	return s.render(w, "dashboard", v)
}

// Domains.

type domainsData struct {
	Domains []domainJSON
	Next    string
}

func (s *Server) domainsPage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	q := url.Values{"limit": {"101"}}
	if a := r.URL.Query().Get("after"); a != "" {
		q.Set("after", a)
	}
	var ds []domainJSON
	if err := s.call(r, http.MethodGet, apiPath(q, "domains"), nil, &ds); err != nil {
		return err
	}
	d := domainsData{Domains: ds}
	if len(ds) > 100 {
		d.Domains = ds[:100]
		d.Next = ds[99].Name
	}
	v.Title, v.D = "Domains", d
	return s.render(w, "domains", v)
}

func (s *Server) domainsPost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	f := r.PostForm
	quota, err := parseSize(f, "quota")
	if err != nil {
		return s.formFailed(w, r, v, err, s.domainsPage)
	}
	req := domainJSON{Name: strings.TrimSpace(f.Get("name")), Class: f.Get("class"), Quota: quota, Disabled: f.Get("disabled") != ""}
	if err := s.call(r, http.MethodPost, "/api/v1/domains", req, nil); err != nil {
		return s.formFailed(w, r, v, err, s.domainsPage)
	}
	return redirect(w, r, "/admin/domains/"+url.PathEscape(strings.ToLower(req.Name)), "created")
}

type domainData struct {
	Domain  domainJSON
	Stats   statsJSON
	DKIM    *dkimJSON
	DKIMErr string
	Units   int
	Classes []classJSON
}

func (s *Server) domainPage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	name := r.PathValue("domain")
	var d domainData
	if err := s.call(r, http.MethodGet, apiPath(nil, "domains", name), nil, &d.Domain); err != nil {
		return err
	}
	if err := s.call(r, http.MethodGet, apiPath(nil, "domains", name, "stats"), nil, &d.Stats); err != nil {
		return err
	}
	var dk dkimJSON
	if err := s.call(r, http.MethodGet, apiPath(nil, "domains", name, "dkim"), nil, &dk); err == nil {
		d.DKIM = &dk
	} else if e, ok := asAPIError(err); ok && !e.notConfigured() {
		d.DKIMErr = e.Msg
	} else if !ok {
		return err
	}
	var units []unitJSON
	if err := s.call(r, http.MethodGet, apiPath(nil, "domains", name, "units"), nil, &units); err != nil {
		return err
	}
	d.Units = len(units)
	if v.Me.System() {
		if err := s.call(r, http.MethodGet, "/api/v1/classes", nil, &d.Classes); err != nil {
			return err
		}
	}
	v.Title, v.D = d.Domain.Name, d
	return s.render(w, "domain", v)
}

// domainPost changes a domain's settings (the system administrator's).
func (s *Server) domainPost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	name := r.PathValue("domain")
	f := r.PostForm
	quota, err := parseSize(f, "quota")
	if err != nil {
		return s.formFailed(w, r, v, err, s.domainPage)
	}
	class, disabled := f.Get("class"), f.Get("disabled") != ""
	req := domainUpdate{Class: &class, Quota: &quota, Disabled: &disabled}
	if err := s.call(r, http.MethodPatch, apiPath(nil, "domains", name), req, nil); err != nil {
		return s.formFailed(w, r, v, err, s.domainPage)
	}
	return redirect(w, r, "/admin/domains/"+url.PathEscape(name), "saved")
}

func (s *Server) domainAliasPost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	name := r.PathValue("domain")
	if err := s.call(r, http.MethodPost, apiPath(nil, "domains", name, "aliases"), aliasRequest{Alias: strings.TrimSpace(r.PostForm.Get("alias"))}, nil); err != nil {
		return s.formFailed(w, r, v, err, s.domainPage)
	}
	return redirect(w, r, "/admin/domains/"+url.PathEscape(name), "created")
}

func (s *Server) dkimRotatePost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	name := r.PathValue("domain")
	if err := s.call(r, http.MethodPost, apiPath(nil, "domains", name, "dkim", "rotate"), nil, nil); err != nil {
		return s.formFailed(w, r, v, err, s.domainPage)
	}
	return redirect(w, r, "/admin/domains/"+url.PathEscape(name), "rotated")
}

func (s *Server) dkimRetirePost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	name := r.PathValue("domain")
	if err := s.call(r, http.MethodDelete, apiPath(nil, "domains", name, "dkim", r.PathValue("selector")), nil, nil); err != nil {
		return s.formFailed(w, r, v, err, s.domainPage)
	}
	return redirect(w, r, "/admin/domains/"+url.PathEscape(name), "retired")
}

// Units.

// unitNode is a unit in the tree, with the units below it.
type unitNode struct {
	unitJSON
	Depth    int
	Children []*unitNode
}

// unitTree arranges units as a tree: a unit whose parent is not among
// them (a unit administrator's own unit) is a root.
func unitTree(units []unitJSON) (roots []*unitNode, flat []*unitNode) {
	byID := map[uint64]*unitNode{}
	for _, u := range units {
		byID[u.ID] = &unitNode{unitJSON: u}
	}
	for _, u := range units {
		n := byID[u.ID]
		if p, ok := byID[u.Parent]; ok && u.Parent != u.ID {
			p.Children = append(p.Children, n)
		} else {
			roots = append(roots, n)
		}
	}
	var walk func(ns []*unitNode, depth int)
	walk = func(ns []*unitNode, depth int) {
		sort.Slice(ns, func(i, j int) bool { return ns[i].Name < ns[j].Name })
		for _, n := range ns {
			if depth > 64 {
				return
			}
			n.Depth = depth
			flat = append(flat, n)
			walk(n.Children, depth+1)
		}
	}
	walk(roots, 0)
	return roots, flat
}

type unitsData struct {
	Domain  string
	Roots   []*unitNode
	Flat    []*unitNode
	Classes []classJSON
}

func (s *Server) unitsPage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	name := r.PathValue("domain")
	var units []unitJSON
	if err := s.call(r, http.MethodGet, apiPath(nil, "domains", name, "units"), nil, &units); err != nil {
		return err
	}
	d := unitsData{Domain: strings.ToLower(name)}
	d.Roots, d.Flat = unitTree(units)
	if err := s.call(r, http.MethodGet, "/api/v1/classes", nil, &d.Classes); err != nil {
		return err
	}
	v.Title, v.D = "Units of "+d.Domain, d
	return s.render(w, "units", v)
}

func (s *Server) unitsPost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	name := r.PathValue("domain")
	f := r.PostForm
	req := unitJSON{Domain: name, Name: strings.TrimSpace(f.Get("name")), Class: f.Get("class")}
	if p := f.Get("parent"); p != "" && p != "0" {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return s.formFailed(w, r, v, formError("parent", "not a unit id"), s.unitsPage)
		}
		req.Parent = n
	}
	var made unitJSON
	if err := s.call(r, http.MethodPost, "/api/v1/units", req, &made); err != nil {
		back := s.unitsPage
		if f.Get("from") == "unit" && req.Parent != 0 {
			back = func(w http.ResponseWriter, r *http.Request, v *webPage) error {
				r.SetPathValue("id", strconv.FormatUint(req.Parent, 10))
				return s.unitPage(w, r, v)
			}
		}
		return s.formFailed(w, r, v, err, back)
	}
	return redirect(w, r, "/admin/units/"+strconv.FormatUint(made.ID, 10), "created")
}

type unitData struct {
	Unit     unitJSON
	Parent   *unitJSON
	Stats    statsJSON
	Children []*unitNode
	Users    []userJSON
	More     bool
	Classes  []classJSON
}

func (s *Server) unitPage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	id := r.PathValue("id")
	var d unitData
	if err := s.call(r, http.MethodGet, apiPath(nil, "units", id), nil, &d.Unit); err != nil {
		return err
	}
	if err := s.call(r, http.MethodGet, apiPath(nil, "units", id, "stats"), nil, &d.Stats); err != nil {
		return err
	}
	var units []unitJSON
	if err := s.call(r, http.MethodGet, apiPath(nil, "domains", d.Unit.Domain, "units"), nil, &units); err != nil {
		return err
	}
	for _, u := range units {
		if u.ID == d.Unit.Parent && d.Unit.Parent != 0 {
			p := u
			d.Parent = &p
		}
		if u.Parent == d.Unit.ID {
			d.Children = append(d.Children, &unitNode{unitJSON: u})
		}
	}
	q := url.Values{"domain": {d.Unit.Domain}, "unit": {id}, "limit": {"101"}}
	if err := s.call(r, http.MethodGet, apiPath(q, "users"), nil, &d.Users); err != nil {
		return err
	}
	if len(d.Users) > 100 {
		d.Users, d.More = d.Users[:100], true
	}
	if err := s.call(r, http.MethodGet, "/api/v1/classes", nil, &d.Classes); err != nil {
		return err
	}
	v.Title, v.D = "Unit "+d.Unit.Name, d
	return s.render(w, "unit", v)
}

func (s *Server) unitPost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	id := r.PathValue("id")
	f := r.PostForm
	name, class, disabled := strings.TrimSpace(f.Get("name")), f.Get("class"), f.Get("disabled") != ""
	if err := s.call(r, http.MethodPatch, apiPath(nil, "units", id), unitUpdate{Name: &name, Class: &class, Disabled: &disabled}, nil); err != nil {
		return s.formFailed(w, r, v, err, s.unitPage)
	}
	return redirect(w, r, "/admin/units/"+url.PathEscape(id), "saved")
}

// Users.

type usersData struct {
	Domain, Search, Unit string
	Domains              []domainJSON // for a system administrator's choice
	Units                []*unitNode
	Classes              []classJSON
	Users                []userJSON
	Listed               bool
	Next                 string
	ListErr              *apiError
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	q := r.URL.Query()
	d := usersData{Domain: strings.ToLower(strings.TrimSpace(q.Get("domain"))), Search: q.Get("search"), Unit: q.Get("unit")}
	if v.Form != nil && d.Domain == "" { // a create form re-rendered
		if _, dom, ok := strings.Cut(v.Form.Get("address"), "@"); ok {
			d.Domain = strings.ToLower(dom)
		}
	}
	if g := v.Me.Grant; g != nil && g.Role != RoleSystem && d.Domain == "" {
		d.Domain = g.Domain
		if g.Role == RoleUnit && d.Unit == "" {
			d.Unit = strconv.FormatUint(g.Unit, 10)
		}
	}
	if v.Me.System() {
		if err := s.call(r, http.MethodGet, apiPath(url.Values{"limit": {strconv.Itoa(maxPage)}}, "domains"), nil, &d.Domains); err != nil {
			return err
		}
		if d.Domain == "" && len(d.Domains) == 1 {
			d.Domain = d.Domains[0].Name
		}
	}
	if d.Domain != "" {
		var units []unitJSON
		if err := s.call(r, http.MethodGet, apiPath(nil, "domains", d.Domain, "units"), nil, &units); err == nil {
			_, d.Units = unitTree(units)
		} else if e, ok := asAPIError(err); !ok || e.Status != http.StatusBadRequest && e.Status != http.StatusNotFound && e.Status != http.StatusForbidden {
			return err
		}
		lq := url.Values{"domain": {d.Domain}, "limit": {"101"}}
		for _, k := range []string{"search", "unit", "after"} {
			if val := q.Get(k); val != "" {
				lq.Set(k, val)
			}
		}
		if d.Unit != "" {
			lq.Set("unit", d.Unit)
		}
		err := s.call(r, http.MethodGet, apiPath(lq, "users"), nil, &d.Users)
		if e, ok := asAPIError(err); ok && e.Status == http.StatusBadRequest {
			// The search form's input refused: shown next to it.
			d.ListErr = e
			if v.Status == http.StatusOK {
				v.Status = e.Status
			}
		} else if err != nil {
			return err
		} else {
			d.Listed = true
		}
		if len(d.Users) > 100 {
			d.Users = d.Users[:100]
			d.Next = d.Users[99].Address
		}
	}
	if err := s.call(r, http.MethodGet, "/api/v1/classes", nil, &d.Classes); err != nil {
		return err
	}
	v.Title, v.D = "Users", d
	return s.render(w, "users", v)
}

func (s *Server) usersPost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	f := r.PostForm
	quota, err := parseSize(f, "quota")
	back := s.usersPage
	if f.Get("from") == "unit" && f.Get("unit") != "" {
		back = func(w http.ResponseWriter, r *http.Request, v *webPage) error {
			r.SetPathValue("id", f.Get("unit"))
			return s.unitPage(w, r, v)
		}
	}
	if err != nil {
		return s.formFailed(w, r, v, err, back)
	}
	req := newUserJSON{Address: strings.TrimSpace(f.Get("address")), Password: f.Get("password"), Name: f.Get("name"), Class: f.Get("class"), Quota: quota}
	if u := f.Get("unit"); u != "" && u != "0" {
		n, err := strconv.ParseUint(u, 10, 64)
		if err != nil {
			return s.formFailed(w, r, v, formError("unit", "not a unit id"), back)
		}
		req.Unit = n
	}
	var made userJSON
	if err := s.call(r, http.MethodPost, "/api/v1/users", req, &made); err != nil {
		f.Del("password")
		return s.formFailed(w, r, v, err, back)
	}
	return redirect(w, r, "/admin/users/"+url.PathEscape(made.Address), "created")
}

type userData struct {
	User    userJSON
	Units   []*unitNode
	Classes []classJSON
}

func (s *Server) userPage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	a := r.PathValue("address")
	var d userData
	if err := s.call(r, http.MethodGet, apiPath(nil, "users", a), nil, &d.User); err != nil {
		return err
	}
	var units []unitJSON
	if err := s.call(r, http.MethodGet, apiPath(nil, "domains", domainOf(d.User.Address), "units"), nil, &units); err == nil {
		_, d.Units = unitTree(units)
	} else if e, ok := asAPIError(err); !ok || e.Status != http.StatusForbidden {
		return err
	}
	if err := s.call(r, http.MethodGet, "/api/v1/classes", nil, &d.Classes); err != nil {
		return err
	}
	v.Title, v.D = d.User.Address, d
	return s.render(w, "user", v)
}

// userPost changes what the form changed of a user (only that: a unit
// administrator may not be able to set the rest).
func (s *Server) userPost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	a := r.PathValue("address")
	var cur userJSON
	if err := s.call(r, http.MethodGet, apiPath(nil, "users", a), nil, &cur); err != nil {
		return err
	}
	f := r.PostForm
	quota, err := parseSize(f, "quota")
	if err != nil {
		return s.formFailed(w, r, v, err, s.userPage)
	}
	var up userUpdateJSON
	if n := f.Get("name"); n != cur.Name {
		up.Name = &n
	}
	if c := f.Get("class"); c != cur.Class {
		up.Class = &c
	}
	if quota != cur.Quota {
		up.Quota = &quota
	}
	if dis := f.Get("disabled") != ""; dis != cur.Disabled {
		up.Disabled = &dis
	}
	if u := f.Get("unit"); u != "" {
		n, err := strconv.ParseUint(u, 10, 64)
		if err != nil {
			return s.formFailed(w, r, v, formError("unit", "not a unit id"), s.userPage)
		}
		if n != cur.Unit {
			up.Unit = &n
		}
	}
	if up == (userUpdateJSON{}) {
		return redirect(w, r, "/admin/users/"+url.PathEscape(cur.Address), "saved")
	}
	if err := s.call(r, http.MethodPatch, apiPath(nil, "users", a), up, nil); err != nil {
		return s.formFailed(w, r, v, err, s.userPage)
	}
	return redirect(w, r, "/admin/users/"+url.PathEscape(cur.Address), "saved")
}

func (s *Server) userPasswordPost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	a := r.PathValue("address")
	f := r.PostForm
	if f.Get("password") != f.Get("password2") {
		r.PostForm = url.Values{}
		return s.formFailed(w, r, v, formError("password2", "the two passwords differ"), s.userPage)
	}
	if err := s.call(r, http.MethodPost, apiPath(nil, "users", a, "password"), passwordRequest{Password: f.Get("password")}, nil); err != nil {
		r.PostForm = url.Values{}
		return s.formFailed(w, r, v, err, s.userPage)
	}
	return redirect(w, r, "/admin/users/"+url.PathEscape(a), "password")
}

func (s *Server) userDeletePost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	a := r.PathValue("address")
	if r.PostForm.Get("confirm") == "" {
		return s.formFailed(w, r, v, formError("confirm", "tick the box to confirm the deletion"), s.userPage)
	}
	if err := s.call(r, http.MethodDelete, apiPath(nil, "users", a), nil, nil); err != nil {
		return s.formFailed(w, r, v, err, s.userPage)
	}
	return redirect(w, r, "/admin/users?domain="+url.QueryEscape(domainOf(a)), "deleted")
}

// Service classes.

func (s *Server) classesPage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	var cs []classJSON
	if err := s.call(r, http.MethodGet, "/api/v1/classes", nil, &cs); err != nil {
		return err
	}
	v.Title, v.D = "Service classes", cs
	return s.render(w, "classes", v)
}

func (s *Server) classesPost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	f := r.PostForm
	quota, err := parseSize(f, "quota")
	if err != nil {
		return s.formFailed(w, r, v, err, s.classesPage)
	}
	maxSize, err := parseSize(f, "max_message_size")
	if err != nil {
		return s.formFailed(w, r, v, err, s.classesPage)
	}
	name := strings.TrimSpace(f.Get("name"))
	if name == "" {
		return s.formFailed(w, r, v, formError("name", "required"), s.classesPage)
	}
	req := classJSON{Name: name, Quota: quota, MaxMessageSize: maxSize}
	for _, pn := range protocolNames {
		if f.Get("proto_"+pn.name) != "" {
			req.Protocols = append(req.Protocols, pn.name)
		}
	}
	if err := s.call(r, http.MethodPut, apiPath(nil, "classes", name), req, nil); err != nil {
		return s.formFailed(w, r, v, err, s.classesPage)
	}
	return redirect(w, r, "/admin/classes", "saved")
}

// The queue, the nodes, the events, the audit log.

func (s *Server) queuePage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	q := url.Values{"limit": {"100"}}
	if a := r.URL.Query().Get("after"); a != "" {
		q.Set("after", a)
	}
	var d queueJSON
	if err := s.call(r, http.MethodGet, apiPath(q, "queue"), nil, &d); err != nil {
		return err
	}
	v.Title, v.D = "Outbound queue", d
	return s.render(w, "queue", v)
}

func (s *Server) queuePost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	id, act := r.PathValue("id"), r.PathValue("action")
	var err error
	switch act {
	case "retry", "hold", "release":
		err = s.call(r, http.MethodPost, apiPath(nil, "queue", id, act), nil, nil)
	case "delete":
		bounce := "false"
		if r.PostForm.Get("bounce") != "" {
			bounce = "true"
		}
		err = s.call(r, http.MethodDelete, apiPath(url.Values{"bounce": {bounce}}, "queue", id), nil, nil)
	default:
		return &apiError{Status: http.StatusNotFound, Msg: "no such queue action"}
	}
	if err != nil {
		return s.formFailed(w, r, v, err, s.queuePage)
	}
	return redirect(w, r, "/admin/queue", "queue")
}

func (s *Server) nodesPage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	var d ClusterStatus
	if err := s.call(r, http.MethodGet, "/api/v1/nodes", nil, &d); err != nil {
		return err
	}
	v.Title, v.D = "Nodes", d
	return s.render(w, "nodes", v)
}

func (s *Server) nodePost(w http.ResponseWriter, r *http.Request, v *webPage) error {
	id := r.PathValue("id")
	f := r.PostForm
	weight, err := strconv.Atoi(strings.TrimSpace(f.Get("weight")))
	if err != nil {
		return s.formFailed(w, r, v, formError("weight", "a whole number from 0 to "+strconv.Itoa(maxWeight)), s.nodesPage)
	}
	masked := f.Get("masked") != ""
	if err := s.call(r, http.MethodPatch, apiPath(nil, "nodes", id), nodeUpdate{Weight: &weight, Masked: &masked}, nil); err != nil {
		return s.formFailed(w, r, v, err, s.nodesPage)
	}
	return redirect(w, r, "/admin/nodes", "saved")
}

func (s *Server) eventsPage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	var d eventsJSON
	if err := s.call(r, http.MethodGet, apiPath(url.Values{"limit": {"200"}}, "events"), nil, &d); err != nil {
		return err
	}
	// The newest first.
	for i, j := 0, len(d.Events)-1; i < j; i, j = i+1, j-1 {
		d.Events[i], d.Events[j] = d.Events[j], d.Events[i]
	}
	v.Title, v.D = "Supervisor events", d
	return s.render(w, "events", v)
}

type auditData struct {
	Entries []AuditEntry
	Next    string
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, v *webPage) error {
	q := url.Values{"limit": {"100"}}
	if a := r.URL.Query().Get("after"); a != "" {
		q.Set("after", a)
	}
	var d auditData
	if err := s.call(r, http.MethodGet, apiPath(q, "audit"), nil, &d.Entries); err != nil {
		return err
	}
	if len(d.Entries) == 100 {
		d.Next = d.Entries[99].ID
	}
	v.Title, v.D = "Audit log", d
	return s.render(w, "audit", v)
}

// Sizes: a form gives a size as a number and a unit (field and
// field_unit: B, KiB, MiB, GiB); empty is 0.

var sizeUnits = map[string]int64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}

func parseSize(f url.Values, field string) (int64, error) {
	v := strings.TrimSpace(f.Get(field))
	if v == "" {
		return 0, nil
	}
	unit := f.Get(field + "_unit")
	if unit == "" {
		unit = "MiB"
	}
	mul, ok := sizeUnits[unit]
	if !ok {
		return 0, formError(field, "unknown unit "+strconv.Quote(unit)+" (want B, KiB, MiB or GiB)")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mul {
		return 0, formError(field, "a whole number of "+unit+", 0 or more")
	}
	return n * mul, nil
}

// quotaParts is a size as the forms show it: the largest unit that
// divides it.
type quotaParts struct {
	N    int64
	Unit string
}

func splitQuota(b int64) quotaParts {
	for _, u := range []string{"GiB", "MiB", "KiB"} {
		if m := sizeUnits[u]; b != 0 && b%m == 0 {
			return quotaParts{b / m, u}
		}
	}
	if b == 0 {
		return quotaParts{0, "MiB"}
	}
	return quotaParts{b, "B"}
}

// humanBytes writes a size for people, with its exact bytes when rounded.
func humanBytes(b int64) string {
	if b < 1024 {
		return strconv.FormatInt(b, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f := float64(b)
	i := -1
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[i]
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

func fmtTimeP(t *time.Time) string {
	if t == nil {
		return ""
	}
	return fmtTime(*t)
}

// queryURL builds "?k=v&..." from pairs, skipping empty values.
func queryURL(kv ...string) template.URL {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return template.URL("?" + q.Encode())
}

// The chart of messages per day: an inline SVG bar chart, received and
// sent side by side for each day.

type chart struct {
	W, H   int
	Max    int64
	Bars   []chartBar
	Labels []chartLabel
	Total  [2]int64
	Base   int // the y of the axis
}

type chartBar struct {
	X, Y, W, H int
	Class      string
	Title      string
}

type chartLabel struct {
	X, Y   int
	Text   string
	Anchor string
}

func makeChart(days []dayJSON) chart {
	const (
		left, top, bottom = 40, 10, 24
		slot, barW, plotH = 22, 9, 160
	)
	c := chart{W: left + slot*len(days) + 10, H: top + plotH + bottom, Base: top + plotH}
	for _, d := range days {
		c.Max = max(c.Max, d.Received, d.Sent)
		c.Total[0] += d.Received
		c.Total[1] += d.Sent
	}
	scale := max(c.Max, 1)
	height := func(n int64) int {
		h := int(n * plotH / scale)
		if n > 0 && h < 1 {
			h = 1
		}
		return h
	}
	for i, d := range days {
		x := left + i*slot + 2
		hr, hs := height(d.Received), height(d.Sent)
		c.Bars = append(c.Bars,
			chartBar{X: x, Y: c.Base - hr, W: barW, H: hr, Class: "received", Title: fmt.Sprintf("%s: %d received", d.Day, d.Received)},
			chartBar{X: x + barW, Y: c.Base - hs, W: barW, H: hs, Class: "sent", Title: fmt.Sprintf("%s: %d sent", d.Day, d.Sent)})
		if i%5 == 0 || i == len(days)-1 {
			c.Labels = append(c.Labels, chartLabel{X: x + barW, Y: c.Base + 16, Text: d.Day[min(5, len(d.Day)):], Anchor: "middle"})
		}
	}
	c.Labels = append(c.Labels,
		chartLabel{X: left - 4, Y: top + 8, Text: strconv.FormatInt(c.Max, 10), Anchor: "end"},
		chartLabel{X: left - 4, Y: c.Base, Text: "0", Anchor: "end"})
	return c
}
