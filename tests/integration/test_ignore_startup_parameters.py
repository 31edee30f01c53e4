"""ignore_startup_parameters: the named startup parameters (also as options=-c) are dropped,
not passed to the server, as PgBouncer drops them."""
import psycopg
import pytest

BAD = "-c extra_float_digits=" + "1" * 4096  # a value PostgreSQL refuses


@pytest.mark.parametrize("ignore", ["", "extra_float_digits, geqo"])
def test_listed_parameters_are_dropped(shoal, pg, role, ignore):
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"pool_mode": "session", "ignore_startup_parameters": ignore})
    if not ignore:
        with pytest.raises(psycopg.Error, match="extra_float_digits"):
            s.connect("db", role, options=BAD)
        return
    c = s.connect("db", role, options=BAD + " -c geqo=off -c enable_seqscan=off")
    assert c.execute("SHOW extra_float_digits").fetchone()[0] == "1"  # the server's default
    assert c.execute("SHOW geqo").fetchone()[0] == "on"
    assert c.execute("SHOW enable_seqscan").fetchone()[0] == "off"  # not listed: kept
