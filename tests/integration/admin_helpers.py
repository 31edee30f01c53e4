"""Helpers for the admin console tests: a console connection and a SHOW as dict rows."""
from psycopg.rows import dict_row

from pgbouncer_admin_reference import TYPE_CODES

OID_OF = {v[0]: v[1] for v in TYPE_CODES.values()}


def admin(s, user="postgres", host=None):
    """A console connection: over the Unix socket as the pooler's own user (peer admin)."""
    return s.connect("pgbouncer", user, host=host or s.dir)


def show(conn, what):
    cur = conn.cursor(row_factory=dict_row)
    cur.execute("SHOW %s" % what)
    return cur.description, cur.fetchall()


def pool_row(conn, db, user):
    _, rows = show(conn, "POOLS")
    for r in rows:
        if r["database"] == db and r["user"] == user:
            return r
    return None
