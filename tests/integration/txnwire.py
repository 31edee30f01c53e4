"""Extended-protocol helpers over wire.Wire for the transaction-pooling tests."""
import struct

from wire import Wire, message, parse_fields


def parse(name, sql, types=()):
    body = name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!h", len(types))
    for t in types:
        body += struct.pack("!i", t)
    return message(b"P", body)


def bind(stmt, params=(), portal=""):
    body = portal.encode() + b"\0" + stmt.encode() + b"\0" + struct.pack("!h", 0)
    body += struct.pack("!h", len(params))
    for p in params:
        if p is None:
            body += struct.pack("!i", -1)
        else:
            v = str(p).encode()
            body += struct.pack("!i", len(v)) + v
    body += struct.pack("!h", 0)
    return message(b"B", body)


def execute(portal="", max_rows=0):
    return message(b"E", portal.encode() + b"\0" + struct.pack("!i", max_rows))


def describe(kind, name):
    return message(b"D", kind + name.encode() + b"\0")


def close(kind, name):
    return message(b"C", kind + name.encode() + b"\0")


def sync():
    return message(b"S")


def flush():
    return message(b"H")


def decode_row(body):
    (n,) = struct.unpack("!h", body[:2])
    pos, row = 2, []
    for _ in range(n):
        (ln,) = struct.unpack("!i", body[pos:pos + 4])
        pos += 4
        row.append(None if ln < 0 else body[pos:pos + ln].decode())
        pos += max(ln, 0)
    return tuple(row)


def read_until_ready(w, count=1):
    """Messages up to and including the count-th ReadyForQuery, as a list of (type, value):
    rows decoded, errors as field dicts (SQLSTATE under 'C'), others raw."""
    out = []
    while count > 0:
        t, body = w.read_msg()
        if t == b"D":
            out.append(("D", decode_row(body)))
        elif t == b"E":
            out.append(("E", parse_fields(body)))
        elif t == b"Z":
            out.append(("Z", body.decode()))
            count -= 1
        elif t in (b"N", b"S"):
            continue  # notices and parameter reports are not part of the reply sequence
        else:
            out.append((t.decode(), body))
    return out


def kinds(msgs):
    """The reply sequence as a string of type letters, e.g. '12DCZ'."""
    return "".join(k for k, _ in msgs)


def rows(msgs):
    return [v for k, v in msgs if k == "D"]


def errors(msgs):
    return [v["C"] for k, v in msgs if k == "E"]


def connect(s, user="postgres", dbname="db"):
    w = Wire(s.host, s.port)
    err = w.startup(user, dbname)
    assert err is None, err
    return w
