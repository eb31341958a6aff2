// Package dsn makes and reads delivery status notifications: the bounces,
// delay warnings and success reports that the outbound queue (mta/queue)
// sends to a message's envelope sender.
//
// Build makes one notification (RFC 3464) about one message for some of
// its recipients: a multipart/report (RFC 6522) of three parts, the
// human-readable account, the machine-readable message/delivery-status
// fields, and the original message (message/rfc822) or only its header
// (text/rfc822-headers), as the RET parameter of RFC 3461 asked and the
// size allows. When an address or the original's header is not ASCII,
// the notification is an internationalised one (RFC 6533): the parts are
// message/global-delivery-status and message/global (or
// message/global-headers), and addresses that are not ASCII have the
// address type utf-8.
//
// Everything that comes from outside (the remote server's reply, the
// addresses, the envelope identifier) is sanitised before it is written:
// no CR, LF or other control character reaches a header or a field, and
// every line stays well under the 998-octet limit of RFC 5322, so a
// hostile reply cannot add a field or a recipient to a notification.
//
// Parse reads a notification back into its fields, for tests and for
// tools; it bounds what it reads and is safe on hostile input.
package dsn
