package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The web pages are a client of the JSON API, in process: every read and
// every change goes through s.mux as an inner request carrying the
// browser's session cookie (and, for a change, the session's CSRF token),
// so the pages see and do exactly what the API lets the caller see and do,
// and each change is audited once, by the API.

// apiError is an error status the API answered.
type apiError struct {
	Status int    `json:"-"`
	Msg    string `json:"error"`
	Field  string `json:"field,omitempty"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("admin API: %d %s", e.Status, e.Msg)
}

// notConfigured reports whether e is the API's 404 of a feature this
// server does not have.
func (e *apiError) notConfigured() bool {
	return e.Status == http.StatusNotFound && strings.HasPrefix(e.Msg, "not configured")
}

// recorder is an in-memory http.ResponseWriter for an inner call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// maxInnerAnswer bounds an inner answer the pages decode: the API's
// largest (a page of 1000 users, the queue's page) is well below it.
const maxInnerAnswer = 64 << 20

// roundTrip runs one inner request through the API with the caller's
// session. body, if not nil, is sent as JSON.
func (s *Server) roundTrip(r *http.Request, method, path string, body any) (*recorder, error) {
	var buf *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("admin: inner %s %s: %w", method, path, err)
		}
		buf = bytes.NewReader(b)
	}
	var in *http.Request
	var err error
	if buf != nil {
		in, err = http.NewRequestWithContext(r.Context(), method, path, buf)
	} else {
		in, err = http.NewRequestWithContext(r.Context(), method, path, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("admin: inner %s %s: %w", method, path, err)
	}
	in.RemoteAddr = r.RemoteAddr
	in.Host = r.Host
	in.TLS = r.TLS
	if buf != nil {
		in.Header.Set("Content-Type", "application/json")
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		in.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		if method != http.MethodGet && method != http.MethodHead {
			if t, ok := s.session(r); ok {
				in.Header.Set(csrfHeader, t.CSRF)
			}
		}
	}
	rec := &recorder{header: http.Header{}}
	s.mux.ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec, nil
}

// call runs method path through the API as the caller, body as JSON, and
// decodes a 2xx answer into out (if not nil). An error status is returned
// as an *apiError with the API's message and field.
func (s *Server) call(r *http.Request, method, path string, body, out any) error {
	rec, err := s.roundTrip(r, method, path, body)
	if err != nil {
		return err
	}
	return decodeAnswer(rec, method, path, out)
}

func decodeAnswer(rec *recorder, method, path string, out any) error {
	if rec.status < 200 || rec.status > 299 {
		e := &apiError{Status: rec.status}
		if err := json.Unmarshal(rec.body.Bytes(), e); err != nil || e.Msg == "" {
			e.Msg = http.StatusText(rec.status)
		}
		return e
	}
	if out == nil || rec.status == http.StatusNoContent {
		return nil
	}
	if rec.body.Len() > maxInnerAnswer {
		return fmt.Errorf("admin: inner %s %s: answer of %d bytes", method, path, rec.body.Len())
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("admin: inner %s %s: %w", method, path, err)
	}
	return nil
}

// session returns the caller's session token record, if its cookie names
// a live one.
func (s *Server) session(r *http.Request) (token, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 256 {
		return token{}, false
	}
	t, err := s.st.token(c.Value)
	if err != nil || s.now().After(t.Expires) {
		return token{}, false
	}
	return t, true
}

// apiPath builds an API path from segments, each escaped, and a query.
func apiPath(q url.Values, segs ...string) string {
	var b strings.Builder
	b.WriteString("/api/v1")
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	if len(q) > 0 {
		b.WriteByte('?')
		b.WriteString(q.Encode())
	}
	return b.String()
}

// asAPIError returns err's *apiError, if it is one.
func asAPIError(err error) (*apiError, bool) {
	var e *apiError
	ok := errors.As(err, &e)
	return e, ok
}
