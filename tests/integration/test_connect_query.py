"""connect_query (per database, PgBouncer's): run on every new server connection after login,
before any client gets it; an error in it is logged and the server is still used."""


def test_connect_query_settings_reach_every_client(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres",
                                "connect_query": "'set enable_seqscan=off; "
                                                 "set enable_nestloop=off'"},
                         "plain": {"dbname": "postgres"}},
              settings={"pool_mode": "transaction"})
    c = s.connect("db", role)
    assert c.execute("SHOW enable_seqscan").fetchone()[0] == "off"
    assert c.execute("SHOW enable_nestloop").fetchone()[0] == "off"
    assert s.connect("plain", role).execute("SHOW enable_seqscan").fetchone()[0] == "on"


def test_failing_connect_query_is_logged_and_the_server_kept(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres",
                                "connect_query": "'select no_such_column'"}},
              settings={"pool_mode": "transaction"})
    c = s.connect("db", role)
    assert c.execute("SELECT 1").fetchone()[0] == 1
    assert "connect_query failed: column \"no_such_column\" does not exist" in s.log()
