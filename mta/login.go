package mta

import (
	"errors"

	"github.com/emersion/go-sasl"
)

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login), which go-sasl offers only as a client. The
// server asks for the user name and the password, each in a challenge.
type loginServer struct {
	step      int
	username  string
	authorize func(username, password string) error
}

func newLoginServer(authorize func(username, password string) error) sasl.Server {
	return &loginServer{authorize: authorize}
}

var errLoginSequence = errors.New("LOGIN: unexpected client response")

func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.step {
	case 0:
		s.step = 1
		if response == nil { // no initial response: ask for the name
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		if len(response) == 0 || len(response) > 1024 {
			return nil, true, errLoginSequence
		}
		s.username = string(response)
		s.step = 2
		return []byte("Password:"), false, nil
	case 2:
		s.step = 3
		if len(response) > 1024 {
			return nil, true, errLoginSequence
		}
		return nil, true, s.authorize(s.username, string(response))
	}
	return nil, true, errLoginSequence
}
