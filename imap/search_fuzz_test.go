package imap

import (
	"bytes"
	"io"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

// FuzzSearchText searches arbitrary messages for header and text terms:
// matchSearch parses and decodes them (MIME structure, transfer encodings,
// charsets), so whatever the message it must answer, without a panic, a
// hang or an error (a message it cannot parse simply does not match).
func FuzzSearchText(f *testing.F) {
	for _, msg := range corpus(f) {
		f.Add(msg, "hello")
	}
	f.Add([]byte("Subject: x\r\n\r\nfind me here\r\n"), "find me")
	f.Add([]byte("From: <user (c)@ (c) domain.org>\r\nTo: g: =?utf-8?b?5byg5LiJ?= <a@b>;\r\n\r\n"), "张三")
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Transfer-Encoding: base64\r\n\r\n5L2g5aW9\r\n--a--\r\n"), "你好")
	f.Fuzz(func(t *testing.T, msg []byte, term string) {
		if len(msg) > 1<<16 || len(term) > 64 || term == "" {
			return
		}
		m := &searchMessage{SeqNum: 1, UID: 1, InternalDate: time.Unix(0, 0).UTC(), Size: int64(len(msg)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg)), nil }}
		for _, c := range []*goimap.SearchCriteria{
			{Body: []string{term}},
			{Text: []string{term}},
			{Header: []goimap.SearchCriteriaHeaderField{{Key: "Subject", Value: term}}},
			{Header: []goimap.SearchCriteriaHeaderField{{Key: "From", Value: term}, {Key: "To", Value: term}}},
			{Not: []goimap.SearchCriteria{{Body: []string{term}}}},
		} {
			if _, err := matchSearch(m, c); err != nil {
				t.Fatalf("matchSearch(%+v): %v", c, err)
			}
		}
	})
}
