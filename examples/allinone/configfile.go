package main

import (
	"fmt"
	"os"

	"github.com/mailsys/mailsys/msstore"
)

// fileKeys is the configuration file's layout (mailsys.toml is the
// annotated sample): each key is bound to the variable of the options it
// sets, the one its flag sets if it has one. The flags' defaults are in
// the options first, the file's values replace them, and the flags given
// on the command line replace those (see parseFlags).
type fileKeys struct {
	DataDir      str          `toml:"data_dir"`
	Hostname     str          `toml:"hostname"`
	InsecureAuth boolean      `toml:"insecure_auth"`
	RunAs        str          `toml:"run_as"`
	AllowRoot    boolean      `toml:"allow_root"`
	Listen       listenKeys   `toml:"listen"`
	TLS          tlsKeys      `toml:"tls"`
	Store        storeKeys    `toml:"store"`
	UserDB       userDBKeys   `toml:"userdb"`
	TxLog        txlogKeys    `toml:"txlog"`
	Access       accessKeys   `toml:"access"`
	Passwords    passwordKeys `toml:"passwords"`
	SMTP         smtpKeys     `toml:"smtp"`
	IMAP         imapKeys     `toml:"imap"`
	POP3         pop3Keys     `toml:"pop3"`
	Outbound     outboundKeys `toml:"outbound"`
	DKIM         dkimKeys     `toml:"dkim"`
	Verify       verifyKeys   `toml:"verify"`

	Domains tableArray[domainEntry] `toml:"domains"`
	Users   tableArray[userEntry]   `toml:"users"`
}

type listenKeys struct {
	SMTP        str `toml:"smtp"`
	Submission  str `toml:"submission"`
	Submissions str `toml:"submissions"`
	IMAP        str `toml:"imap"`
	IMAPS       str `toml:"imaps"`
	POP3        str `toml:"pop3"`
	POP3S       str `toml:"pop3s"`
	Admin       str `toml:"admin"`
}

type tlsKeys struct {
	Cert str `toml:"cert"`
	Key  str `toml:"key"`
}

type storeKeys struct {
	Dirs         tableArray[msstore.Dir] `toml:"dirs"`
	Node         integer[uint32]         `toml:"node"`
	VolumeSize   size[int64]             `toml:"volume_size"`
	MaxBodySize  size[int64]             `toml:"max_body_size"`
	SpoolMemory  size[int]               `toml:"spool_memory"`
	NoSync       boolean                 `toml:"no_sync"`
	CompactRatio float                   `toml:"compact_ratio"`
}

type dirKeys struct {
	Path   str          `toml:"path"`
	Weight integer[int] `toml:"weight"`
	Masked boolean      `toml:"masked"`
}

type userDBKeys struct {
	Dir           str          `toml:"dir"`
	Node          str          `toml:"node"`
	CacheSize     size[int64]  `toml:"cache_size"`
	MemTableSize  size[uint64] `toml:"memtable_size"`
	LoginCache    integer[int] `toml:"login_cache"`
	LoginCacheTTL duration     `toml:"login_cache_ttl"`
	Argon2        argon2Keys   `toml:"argon2"`
	NoSync        boolean      `toml:"no_sync"`
	Mirror        str          `toml:"mirror"`
	DiskReserve   size[int64]  `toml:"disk_reserve"`
}

type argon2Keys struct {
	Time    integer[uint32] `toml:"time"`
	Memory  size[uint32]    `toml:"memory"` // in KiB in userdata.Argon2Params
	Threads integer[uint8]  `toml:"threads"`
}

type txlogKeys struct {
	Dir         str         `toml:"dir"`
	SegmentSize size[int64] `toml:"segment_size"`
	MaxBodySize size[int64] `toml:"max_body_size"`
}

type accessKeys struct {
	Allow               networks     `toml:"allow"`
	Deny                networks     `toml:"deny"`
	MaxConns            integer[int] `toml:"max_conns"`
	MaxConnsPerListener integer[int] `toml:"max_conns_per_listener"`
	MaxConnsPerIP       integer[int] `toml:"max_conns_per_ip"`
	AuthFailures        integer[int] `toml:"auth_failures"`
	AddrAuthFailures    integer[int] `toml:"addr_auth_failures"`
	AccountFailures     integer[int] `toml:"account_failures"`
	AccountDelay        duration     `toml:"account_delay"`
	AuthWindow          duration     `toml:"auth_window"`
	Lockout             duration     `toml:"lockout"`
	MaxTracked          integer[int] `toml:"max_tracked"`
}

type passwordKeys struct {
	MaxChecks  integer[int] `toml:"max_checks"`
	MaxMemory  size[int64]  `toml:"max_memory"`
	MaxWaiting integer[int] `toml:"max_waiting"`
	MaxWait    duration     `toml:"max_wait"`
}

type smtpKeys struct {
	MaxMessageSize       size[int64]  `toml:"max_message_size"`
	MaxRecipients        integer[int] `toml:"max_recipients"`
	MaxUnknownRecipients integer[int] `toml:"max_unknown_recipients"`
	ReadTimeout          duration     `toml:"read_timeout"`
	DataTimeout          duration     `toml:"data_timeout"`
	LoginTimeout         duration     `toml:"login_timeout"`
	MaxSession           duration     `toml:"max_session"`
	WriteTimeout         duration     `toml:"write_timeout"`
	AnyFrom              strs         `toml:"any_from"`
}

type imapKeys struct {
	MaxAppendSize      size[int64] `toml:"max_append_size"`
	PreAuthTimeout     duration    `toml:"preauth_timeout"`
	PreAuthBytes       size[int64] `toml:"preauth_bytes"`
	IdleTimeout        duration    `toml:"idle_timeout"`
	IdleCommandTimeout duration    `toml:"idle_command_timeout"`
}

type pop3Keys struct {
	LoginTimeout   duration `toml:"login_timeout"`
	CommandTimeout duration `toml:"command_timeout"`
	MaxSession     duration `toml:"max_session"`
	WriteTimeout   duration `toml:"write_timeout"`
}

type outboundKeys struct {
	Enabled    boolean       `toml:"enabled"`
	Dir        str           `toml:"dir"`
	Transports routes        `toml:"transports"`
	SmartHost  smartHostKeys `toml:"smarthost"`
}

type smartHostKeys struct {
	Address      hostPort   `toml:"address"`
	User         str        `toml:"user"`
	PasswordFile str        `toml:"password_file"`
	TLS          tlsMode    `toml:"tls"`
	Domains      domainList `toml:"domains"`
}

type dkimKeys struct {
	Enabled boolean `toml:"enabled"`
	Dir     str     `toml:"dir"`
}

type verifyKeys struct {
	Enabled boolean `toml:"enabled"`
}

// domainEntry is a [[domains]] table: a domain to create, or to give
// this quota if it exists.
type domainEntry struct {
	Name  string
	Quota int64 // bytes for all its users together, 0 for no limit
}

type domainKeys struct {
	Name  str         `toml:"name"`
	Quota size[int64] `toml:"quota"`
}

// userEntry is a [[users]] table or a -user flag: a user to create, or to
// give this password if it exists.
type userEntry struct{ Address, Password string }

type userKeys struct {
	Address  str `toml:"address"`
	Password str `toml:"password"`
}

// keys binds the file's keys to o's variables.
func (o *options) keys() *fileKeys {
	c := &o.cfg
	sc, uc, a, ic, pc, sh := &c.StoreConfig, &c.UserDBConfig, &c.Access, &c.IMAP, &c.POP3, &o.smartHost
	return &fileKeys{
		DataDir:      str{&c.DataDir},
		Hostname:     str{&c.Hostname},
		InsecureAuth: boolean{&c.InsecureAuth},
		RunAs:        str{&c.RunAs},
		AllowRoot:    boolean{&c.AllowRoot},
		Listen: listenKeys{
			SMTP:        str{&c.SMTPAddr},
			Submission:  str{&c.SubmissionAddr},
			Submissions: str{&c.SubmissionTLSAddr},
			IMAP:        str{&c.IMAPAddr},
			IMAPS:       str{&c.IMAPTLSAddr},
			POP3:        str{&c.POP3Addr},
			POP3S:       str{&c.POP3TLSAddr},
			Admin:       str{&c.AdminAddr},
		},
		TLS: tlsKeys{Cert: str{&o.certFile}, Key: str{&o.keyFile}},
		Store: storeKeys{
			Dirs: tableArray[msstore.Dir]{&sc.Dirs, func(d *msstore.Dir) any {
				return &dirKeys{str{&d.Path}, integer[int]{&d.Weight}, boolean{&d.Masked}}
			}},
			Node:         integer[uint32]{&sc.Node},
			VolumeSize:   size[int64]{p: &sc.VolumeSize},
			MaxBodySize:  size[int64]{p: &sc.MaxBodySize},
			SpoolMemory:  size[int]{p: &sc.SpoolMemory},
			NoSync:       boolean{&sc.NoSync},
			CompactRatio: float{&sc.CompactRatio},
		},
		UserDB: userDBKeys{
			Dir:           str{&uc.Dir},
			Node:          str{&uc.Node},
			CacheSize:     size[int64]{p: &uc.CacheSize},
			MemTableSize:  size[uint64]{p: &uc.MemTableSize},
			LoginCache:    integer[int]{&uc.LoginCache},
			LoginCacheTTL: duration{&uc.LoginCacheTTL},
			Argon2: argon2Keys{
				Time:    integer[uint32]{&uc.Argon2.Time},
				Memory:  size[uint32]{&uc.Argon2.Memory, 1 << 10},
				Threads: integer[uint8]{&uc.Argon2.Threads},
			},
			NoSync:      boolean{&uc.NoSync},
			Mirror:      str{&uc.Mirror},
			DiskReserve: size[int64]{p: &uc.DiskReserve},
		},
		TxLog: txlogKeys{
			Dir:         str{&c.TxLogConfig.Dir},
			SegmentSize: size[int64]{p: &c.TxLogConfig.SegmentSize},
			MaxBodySize: size[int64]{p: &c.TxLogConfig.MaxBodySize},
		},
		Access: accessKeys{
			Allow:               networks{&a.Allow},
			Deny:                networks{&a.Deny},
			MaxConns:            integer[int]{&a.MaxConns},
			MaxConnsPerListener: integer[int]{&a.MaxConnsPerListener},
			MaxConnsPerIP:       integer[int]{&a.MaxConnsPerIP},
			AuthFailures:        integer[int]{&a.AuthFailures},
			AddrAuthFailures:    integer[int]{&a.AddrAuthFailures},
			AccountFailures:     integer[int]{&a.AccountFailures},
			AccountDelay:        duration{&a.AccountDelay},
			AuthWindow:          duration{&a.AuthWindow},
			Lockout:             duration{&a.Lockout},
			MaxTracked:          integer[int]{&a.MaxTracked},
		},
		Passwords: passwordKeys{
			MaxChecks:  integer[int]{&c.Passwords.MaxChecks},
			MaxMemory:  size[int64]{p: &c.Passwords.MaxMemory},
			MaxWaiting: integer[int]{&c.Passwords.MaxWaiting},
			MaxWait:    duration{&c.Passwords.MaxWait},
		},
		SMTP: smtpKeys{
			MaxMessageSize:       size[int64]{p: &c.SMTP.MaxMessageSize},
			MaxRecipients:        integer[int]{&c.SMTP.MaxRecipients},
			MaxUnknownRecipients: integer[int]{&c.SMTP.MaxUnknownRecipients},
			ReadTimeout:          duration{&c.SMTP.ReadTimeout},
			DataTimeout:          duration{&c.SMTP.DataTimeout},
			LoginTimeout:         duration{&c.SMTP.LoginTimeout},
			MaxSession:           duration{&c.SMTP.MaxSession},
			WriteTimeout:         duration{&c.SMTP.WriteTimeout},
			AnyFrom:              strs{&c.SMTP.AnyFrom},
		},
		IMAP: imapKeys{
			MaxAppendSize:      size[int64]{p: &ic.MaxAppendSize},
			PreAuthTimeout:     duration{&ic.PreAuthTimeout},
			PreAuthBytes:       size[int64]{p: &ic.PreAuthBytes},
			IdleTimeout:        duration{&ic.IdleTimeout},
			IdleCommandTimeout: duration{&ic.IdleCommandTimeout},
		},
		POP3: pop3Keys{
			LoginTimeout:   duration{&pc.LoginTimeout},
			CommandTimeout: duration{&pc.CommandTimeout},
			MaxSession:     duration{&pc.MaxSession},
			WriteTimeout:   duration{&pc.WriteTimeout},
		},
		Outbound: outboundKeys{
			Enabled:    boolean{&o.outbound},
			Dir:        str{&c.Outbound.Dir},
			Transports: routes{&c.Outbound.Transports},
			SmartHost: smartHostKeys{
				Address:      hostPort{&sh.addr},
				User:         str{&sh.user},
				PasswordFile: str{&sh.passwordFile},
				TLS:          tlsMode{&sh.tls},
				Domains:      domainList{&sh.domains},
			},
		},
		DKIM:   dkimKeys{Enabled: boolean{&o.dkim}, Dir: str{&c.DKIM.Dir}},
		Verify: verifyKeys{Enabled: boolean{&o.verify}},
		Domains: tableArray[domainEntry]{&o.domains, func(d *domainEntry) any {
			return &domainKeys{str{&d.Name}, size[int64]{p: &d.Quota}}
		}},
		Users: tableArray[userEntry]{&o.fileUsers, func(u *userEntry) any {
			return &userKeys{str{&u.Address}, str{&u.Password}}
		}},
	}
}

// loadFile reads the configuration file onto o's variables and returns
// every problem it has, or nil.
func (o *options) loadFile(file string) []string {
	data, err := os.ReadFile(file)
	if err != nil {
		return []string{fmt.Sprint(err)}
	}
	d := decodeFile(file, data, o.keys())
	o.inFile, o.refused = d.keys, d.refused
	return d.problems
}
