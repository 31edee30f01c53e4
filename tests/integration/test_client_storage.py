"""A client's own storage (names, parameters, its login copy) and its reuse after close."""
from admin_helpers import admin, show
from wire import Wire


def test_long_names_and_many_parameters_outgrow_the_clients_own_storage(shoal, pg, role):
    """A client keeps names of up to 31 bytes, two parameters and a small login copy in
    storage of its own; longer names and more parameters are allocated and still seen whole."""
    mid_db = "m" * 40  # past the client's own 32 bytes, within PostgreSQL's 63
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1},
                         mid_db: {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    w = Wire(s.host, s.port)
    assert w.startup(role, mid_db, application_name="m" * 40) is None
    rows, err, _ = w.query("SELECT current_setting('application_name')")
    assert err is None and rows == [("m" * 40,)], (rows, err)
    seen = [(r["database"], r["application_name"]) for r in show(admin(s), "CLIENTS")[1]]
    assert (mid_db, "m" * 40) in seen, seen  # the login's value, as SHOW CLIENTS gives it
    w.close()
    long_db = "d" * 100
    w = Wire(s.host, s.port)
    err = w.startup(role, long_db)
    assert err is not None and long_db in err.get("M", ""), err
    w.close()
    many = {"application_name": "a" * 80, "search_path": "sc", "statement_timeout": "1234",
            "lock_timeout": "4321", "work_mem": "5MB", "DateStyle": "ISO, YMD"}
    for _ in range(3):  # the client objects are reused: nothing of the last one may remain
        w = Wire(s.host, s.port)
        assert w.startup(role, "db", **many) is None
        rows, err, _ = w.query("SHOW work_mem")
        assert err is None and rows == [("5MB",)], (rows, err)
        rows, err, _ = w.query("SELECT current_setting('lock_timeout'), "
                               "current_setting('application_name')")
        assert err is None and rows == [("4321ms", "a" * 63)], (rows, err)
        w.close()
        w = Wire(s.host, s.port)
        assert w.startup(role, "db") is None
        rows, err, _ = w.query("SHOW work_mem")
        assert err is None and rows == [("4MB",)], (rows, err)
        w.close()
