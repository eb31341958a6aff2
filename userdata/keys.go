package userdata

import "encoding/binary"

// Key schema: the first byte of every key names its table; integers in keys
// are big-endian so that keys sort in numeric order. See doc.go.
const (
	tagCounter     = 'c' // c name                          -> uint64
	tagDomain      = 'd' // d domain                        -> domain record
	tagDomainAlias = 'D' // D alias-domain                  -> target domain name
	tagDomainUsage = 'U' // U domain                        -> int64 bytes (merge operator: sum)
	tagClass       = 'k' // k class-name                    -> class record
	tagUnit        = 'o' // o unit(8)                       -> unit record
	tagUser        = 'u' // u user(8)                       -> user record, password hash included
	tagAddress     = 'a' // a address                       -> user(8) kind(1): primary or alias
	tagMailbox     = 'b' // b user(8)                       -> mailbox record: next folder id, usage
	tagFolder      = 'f' // f user(8) folder(4)             -> folder record: name, counters
	tagFolderName  = 'n' // n user(8) name                  -> folder(4)
	tagMessage     = 'm' // m user(8) folder(4) uid(4)      -> message record
	tagChange      = 'q' // q user(8) folder(4) modseq(8) uid(4) -> uid(4) expunged(1) [body id(8) node(4)]
	tagKeywords    = 'K' // K user(8) folder(4)             -> the folder's keywords, in order of first use
	tagSubscribed  = 's' // s user(8) name                  -> empty: the name is subscribed (IMAP SUBSCRIBE)
)

// Address kinds in the tagAddress table.
const (
	addrPrimary = 1
	addrAlias   = 2
)

func keyString(tag byte, s string) []byte { return append([]byte{tag}, s...) }

func keyID(tag byte, id uint64) []byte { return binary.BigEndian.AppendUint64([]byte{tag}, id) }

func keyFolder(u UserID, f FolderID) []byte {
	return binary.BigEndian.AppendUint32(keyID(tagFolder, uint64(u)), uint32(f))
}

func keyKeywords(u UserID, f FolderID) []byte {
	return binary.BigEndian.AppendUint32(keyID(tagKeywords, uint64(u)), uint32(f))
}

func keyFolderName(u UserID, name string) []byte {
	return append(keyID(tagFolderName, uint64(u)), name...)
}

func keySubscribed(u UserID, name string) []byte {
	return append(keyID(tagSubscribed, uint64(u)), name...)
}

func keyMessage(u UserID, f FolderID, uid UID) []byte {
	k := binary.BigEndian.AppendUint32(keyID(tagMessage, uint64(u)), uint32(f))
	return binary.BigEndian.AppendUint32(k, uint32(uid))
}

func keyChange(u UserID, f FolderID, modseq uint64) []byte {
	k := binary.BigEndian.AppendUint32(keyID(tagChange, uint64(u)), uint32(f))
	return binary.BigEndian.AppendUint64(k, modseq)
}

// prefixEnd returns the smallest key after every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}
