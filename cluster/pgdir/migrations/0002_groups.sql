-- UD replication groups (cluster.Group): the node serving a group's users
-- now, its hot standby, and the fencing epoch. A change to dir_groups is a
-- registry change: it bumps dir_registry.version in its transaction and
-- notifies mailsys_registry, as a change to dir_nodes does. That a node is
-- in at most one group, and that members are UD nodes, is checked by the
-- Directory under the lock of the dir_registry row (every registry change
-- takes it first); the foreign keys keep a member from being deleted
-- whatever happens.
CREATE TABLE dir_groups (
	id           text    COLLATE "C" PRIMARY KEY,
	primary_node text    COLLATE "C" NOT NULL REFERENCES dir_nodes (id),
	standby_node text    COLLATE "C" REFERENCES dir_nodes (id) CHECK (standby_node <> primary_node),
	epoch        bigint  NOT NULL CHECK (epoch > 0),
	synced       boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX dir_groups_primary ON dir_groups (primary_node);
CREATE UNIQUE INDEX dir_groups_standby ON dir_groups (standby_node);
