"""auth_dbname rules, as PgBouncer applies them: the console and unknown databases cannot be
auth databases ("bouncer config error"), a DISABLEd one refuses lookups, and console users not
in auth_file are looked up in the global auth_dbname."""
import psycopg
import pytest

from admin_helpers import admin
from conftest import SCRAM_PW
from helpers import error_text
from test_auth_query import LOOKUP, auth_user  # noqa: F401 (the fixture)


def _shoal(shoal, auth_user, db_extra=None, **settings):
    dbs = {"db": dict({"dbname": "postgres"}, **(db_extra or {})),
           "authdb": {"dbname": "postgres"}}
    s = dict({"auth_type": "scram-sha-256", "auth_user": auth_user, "auth_query": LOOKUP},
             **settings)
    return shoal(databases=dbs, settings=s)


def _refused(s, db, user, text):
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect(db, user, password=SCRAM_PW)
    assert text in error_text(e.value), error_text(e.value)


@pytest.mark.parametrize("name,logged", [
    ("nodb", 'authentication database "nodb" is not configured.'),
    ("pgbouncer", 'cannot use the reserved "pgbouncer" database as an auth_dbname')],
    ids=["unknown", "console"])
def test_bad_auth_dbname_is_a_config_error(shoal, pg, auth_user, name, logged):  # noqa: F811
    s = _shoal(shoal, auth_user, {"auth_dbname": name})
    _refused(s, "db", "scram_user", "bouncer config error")
    assert logged in s.log()


def test_disabled_auth_database_refuses_lookups(shoal, pg, auth_user):  # noqa: F811
    s = _shoal(shoal, auth_user, auth_dbname="authdb")
    console = admin(s)
    console.execute("DISABLE authdb")
    _refused(s, "db", "scram_user", 'authentication database "authdb" is disabled')
    console.execute("ENABLE authdb")
    c = s.connect("db", "scram_user", password=SCRAM_PW)
    assert c.execute("SELECT current_user").fetchone()[0] == "scram_user"


def test_console_user_is_looked_up_in_global_auth_dbname(shoal, pg, auth_user):  # noqa: F811
    s = _shoal(shoal, auth_user, auth_dbname="authdb", stats_users="scram_user")
    c = s.connect("pgbouncer", "scram_user", password=SCRAM_PW)
    assert c.execute("SHOW VERSION").fetchone()[0].startswith("Shoal")
    # Without auth_dbname the lookup would have to run in the console itself: refused.
    s2 = _shoal(shoal, auth_user, stats_users="scram_user")
    _refused(s2, "pgbouncer", "scram_user", "bouncer config error")
    assert 'cannot use the reserved "pgbouncer" database' in s2.log()
