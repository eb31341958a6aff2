-- The cluster Directory: the node registry, users' placements, their
-- addresses, domain aliases and id sequences. Every registry change bumps
-- dir_registry.version in its own transaction and notifies
-- mailsys_registry with the new version.

-- The registry's version: one row, bumped by every change to dir_nodes.
CREATE TABLE dir_registry (
	one     boolean PRIMARY KEY DEFAULT true CHECK (one),
	version bigint  NOT NULL CHECK (version >= 0)
);
INSERT INTO dir_registry (one, version) VALUES (true, 0);

-- The registered nodes (cluster.Node).
CREATE TABLE dir_nodes (
	id     text     COLLATE "C" PRIMARY KEY,
	num    bigint   NOT NULL UNIQUE CHECK (num > 0 AND num <= 4294967295),
	roles  smallint NOT NULL CHECK (roles > 0),
	addr   text     NOT NULL DEFAULT '',
	weight integer  NOT NULL CHECK (weight >= 0 AND weight <= 10000),
	masked boolean  NOT NULL DEFAULT false
);

-- Users' placements. id is the userdata.UserID's 64 bits, as a signed
-- bigint (ids from 2^63 up are negative here). address is the primary
-- address, also in dir_addresses.
CREATE TABLE dir_users (
	id      bigint PRIMARY KEY CHECK (id <> 0),
	node    text   COLLATE "C" NOT NULL,
	address text   COLLATE "C" NOT NULL
);

-- Every address that leads to a user, in normal form (lower case): the
-- primary one (is_primary) and aliases. An address belongs to one user.
CREATE TABLE dir_addresses (
	address    text    COLLATE "C" PRIMARY KEY,
	user_id    bigint  NOT NULL REFERENCES dir_users (id) ON DELETE CASCADE,
	is_primary boolean NOT NULL
);
CREATE INDEX dir_addresses_user ON dir_addresses (user_id);

-- Domain aliases: alias is another name of domain.
CREATE TABLE dir_domain_aliases (
	alias  text COLLATE "C" PRIMARY KEY,
	domain text COLLATE "C" NOT NULL CHECK (domain <> alias)
);

-- Named sequences (NextID): last is the number handed out last.
CREATE TABLE dir_sequences (
	name text   COLLATE "C" PRIMARY KEY,
	last bigint NOT NULL CHECK (last > 0)
);
