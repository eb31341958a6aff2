package wire_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mailsys/mailsys/imap/wire"
)

// printContinuer is a Continuer that prints what a server would write.
type printContinuer struct{}

func (printContinuer) Continue(text string) error {
	fmt.Println("+ " + text)
	return nil
}

func (printContinuer) Refuse(tag string, err *wire.Error) error {
	fmt.Println(tag, err)
	return nil
}

func ExampleReader_ReadCommand() {
	in := "a1 LOGIN alice {6}\r\nsecret\r\n" +
		"a2 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)]) (CHANGEDSINCE 42)\r\n" +
		"a3 SELECT INBOX extra\r\n" +
		"a4 APPEND Drafts (\\Draft) {5+}\r\nHello\r\n"
	r := wire.NewReader(bufio.NewReader(strings.NewReader(in)), wire.Limits{}, printContinuer{})
	for {
		cmd, err := r.ReadCommand()
		var e *wire.Error
		switch {
		case err == io.EOF:
			return
		case errors.As(err, &e):
			fmt.Println(e.Tag, e)
			continue
		case err != nil:
			fmt.Println("BYE", err)
			return
		}
		switch a := cmd.Args.(type) {
		case *wire.LoginArgs:
			fmt.Println(cmd.Tag, cmd.Name, a.User)
		case *wire.FetchArgs:
			fmt.Println(cmd.Tag, cmd.Name, cmd.UID, a.Set, a.Options.Flags, a.Options.BodySection[0].HeaderFields, a.Options.ChangedSince)
		case *wire.MailboxArgs:
			fmt.Println(cmd.Tag, cmd.Name, a.Mailbox)
			for {
				m, err := r.NextAppend()
				if err != nil || m == nil {
					break
				}
				body, _ := io.ReadAll(m.Body)
				fmt.Printf("message %v %q\n", m.Flags, body)
			}
		}
	}
	// Output:
	// + Ready
	// a1 LOGIN alice
	// a2 FETCH true 1:* true [SUBJECT] 42
	// a3 BAD Expected "(" to open the select parameters, got "e"
	// a4 APPEND Drafts
	// message [\Draft] "Hello"
}
