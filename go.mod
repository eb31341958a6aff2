module github.com/mailsys/mailsys

go 1.26
