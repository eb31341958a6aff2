package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/mailsys/mailsys/mta/mailauth"
	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/userdata"
)

// handlerFunc is an endpoint: it writes its answer, or returns an error
// that endpoint answers as JSON.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *principal) error

// errNotFound is the store's "no such record".
var errNotFound = errors.New("admin: no such record")

// httpError is an answer other than success.
type httpError struct {
	Status int
	Msg    string
}

func (e *httpError) Error() string { return e.Msg }

// fieldError is a 400 naming the field at fault.
type fieldError struct {
	Field string
	Msg   string
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Msg }

// errorBody is every error's JSON.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// statusWriter remembers the status written, for the audit log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// endpoint wraps fn: it authenticates the caller as need says, bounds the
// body, answers errors as JSON, and writes every change (any method but
// GET, login included) to the audit log.
func (s *Server) endpoint(pattern string, need access, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		var p *principal
		err := error(nil)
		if need != public {
			p, err = s.authenticate(r)
			switch {
			case err != nil:
			case need == anyAdmin && p.grant == nil, need == systemOnly && !p.system():
				err = errForbidden
			}
		}
		if err == nil {
			err = fn(w, r, p)
		}
		if err != nil {
			s.fail(w, r, err)
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.record(r, p, w.status, pattern)
		}
	})
}

// fail answers err.
func (s *Server) fail(w *statusWriter, r *http.Request, err error) {
	status, body := http.StatusInternalServerError, errorBody{Error: "internal error"}
	var he *httpError
	var fe *fieldError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		status, body.Error = he.Status, he.Msg
	case errors.As(err, &fe):
		status, body = http.StatusBadRequest, errorBody{Error: fe.Error(), Field: fe.Field}
	case errors.As(err, &mbe):
		status, body.Error = http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", mbe.Limit)
	case errors.Is(err, userdata.ErrNotFound):
		status, body.Error = http.StatusNotFound, err.Error()
	case errors.Is(err, userdata.ErrExists):
		status, body.Error = http.StatusConflict, err.Error()
	case errors.Is(err, userdata.ErrInvalid):
		status, body.Error = http.StatusBadRequest, err.Error()
	case errors.Is(err, userdata.ErrNotEmpty):
		status, body.Error = http.StatusConflict, err.Error()
	case errors.Is(err, ErrNotFound), errors.Is(err, queue.ErrNotFound), errors.Is(err, mailauth.ErrUnknownDomain), errors.Is(err, mailauth.ErrUnknownSelector):
		status, body.Error = http.StatusNotFound, err.Error()
	case errors.Is(err, ErrInvalid):
		status, body.Error = http.StatusBadRequest, err.Error()
	case errors.Is(err, mailauth.ErrSigningSelector):
		status, body.Error = http.StatusConflict, err.Error()
	case errors.Is(err, userdata.ErrUnavailable), errors.Is(err, userdata.ErrBusy), errors.Is(err, queue.ErrClosed):
		status, body.Error = http.StatusServiceUnavailable, "temporarily unavailable; try again"
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if w.status != 0 {
		return // the handler had begun its answer
	}
	reply(w, status, body)
}

// record writes a change to the audit log.
func (s *Server) record(r *http.Request, p *principal, status int, pattern string) {
	e := AuditEntry{Time: s.now().UTC(), Remote: r.RemoteAddr, Action: pattern, Object: objectOf(r), Status: status}
	if p != nil {
		e.User = p.user.Address
	}
	if e.Action == "POST /api/v1/login" && status == http.StatusOK {
		e.User = "" // who logged in is in Object
	}
	if err := s.st.audit(e); err != nil {
		s.log.Error("audit log: entry lost", "entry", e, "err", err)
	}
}

// objectOf names what a request changes: its path values.
func objectOf(r *http.Request) string {
	var parts []string
	for _, name := range []string{"domain", "id", "name", "address", "alias", "selector"} {
		if v := r.PathValue(name); v != "" {
			parts = append(parts, name+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// decode reads a JSON body into v: one object, no unknown fields, types
// as declared; each problem a 400 naming the field.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	// The body is JSON whatever the Content-Type says (curl -d sends
	// form's type), but for multipart forms, which are certainly not.
	// Cross-site forms gain nothing: a change through the session cookie
	// needs the X-CSRF-Token header, which no form can send.
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		return &httpError{Status: http.StatusUnsupportedMediaType, Msg: "want a JSON body (Content-Type: application/json)"}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.As(err, &te):
			return &fieldError{Field: te.Field, Msg: "want " + te.Type.String() + ", not " + te.Value}
		case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
			return &fieldError{Field: "body", Msg: "not JSON: " + err.Error()}
		case errors.Is(err, io.EOF):
			return &fieldError{Field: "body", Msg: "empty; want a JSON object"}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &fieldError{Field: f, Msg: "unknown field"}
		}
		return &fieldError{Field: "body", Msg: err.Error()}
	}
	if dec.More() {
		return &fieldError{Field: "body", Msg: "more than one JSON value"}
	}
	return nil
}

// reply writes v as JSON with status.
func reply(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
