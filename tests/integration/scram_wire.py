"""A SCRAM-SHA-256 client over wire.Wire, step by step, so tests can see (and break) each message,
and a helper that builds PostgreSQL's stored SCRAM secret from a password."""
import base64
import hashlib
import hmac
import os
import struct

from wire import Closed, message, parse_fields, startup_packet


def b64(b):
    return base64.b64encode(b).decode()


def scram_secret(password, salt=None, iterations=4096):
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    ckey = hmac.new(salted, b"Client Key", "sha256").digest()
    skey = hmac.new(salted, b"Server Key", "sha256").digest()
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, b64(salt), b64(hashlib.sha256(ckey).digest()),
                                          b64(skey))


def sasl_initial(mech, data):
    return message(b"p", mech.encode() + b"\0" + struct.pack("!i", len(data)) + data)


class ScramLogin:
    """Drive one login: start() up to AuthenticationSASL, first() to server-first, final()."""

    def __init__(self, w, user, database):
        self.w, self.user, self.database = w, user, database
        self.cnonce = b64(os.urandom(18))

    def read_auth(self):
        """Next Authentication message as (code, data), or ('E', fields) on an error."""
        mtype, body = self.w.read_msg()
        if mtype == b"E":
            return "E", parse_fields(body)
        assert mtype == b"R", mtype
        (code,) = struct.unpack("!i", body[:4])
        return code, body[4:]

    def start(self):
        self.w.send(startup_packet({"user": self.user, "database": self.database}))
        code, data = self.read_auth()
        assert code == 10, (code, data)
        return [m.decode() for m in data.split(b"\0") if m]

    def first(self, raw=None, mech="SCRAM-SHA-256"):
        self.client_first_bare = "n=,r=" + self.cnonce
        payload = raw if raw is not None else ("n,," + self.client_first_bare).encode()
        self.w.send(sasl_initial(mech, payload))
        code, data = self.read_auth()
        if code == "E":
            return data
        assert code == 11, (code, data)
        self.server_first = data.decode()
        attrs = dict(kv.split("=", 1) for kv in self.server_first.split(","))
        self.nonce, self.salt, self.iters = attrs["r"], attrs["s"], int(attrs["i"])
        return None

    def final(self, password, raw=None):
        """Send client-final; returns None on success (server signature checked) or the error."""
        without_proof = "c=biws,r=" + self.nonce
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(self.salt),
                                     self.iters)
        ckey = hmac.new(salted, b"Client Key", "sha256").digest()
        am = ",".join([self.client_first_bare, self.server_first, without_proof]).encode()
        sig = hmac.new(hashlib.sha256(ckey).digest(), am, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(ckey, sig))
        payload = raw if raw is not None else (without_proof + ",p=" + b64(proof)).encode()
        self.w.send(message(b"p", payload))
        code, data = self.read_auth()
        if code == "E":
            return data
        assert code == 12, (code, data)
        skey = hmac.new(salted, b"Server Key", "sha256").digest()
        want = "v=" + b64(hmac.new(skey, am, "sha256").digest())
        assert data.decode() == want, "server signature does not verify"
        code, data = self.read_auth()
        assert code == 0, (code, data)
        return None


__all__ = ["Closed", "ScramLogin", "scram_secret", "sasl_initial"]
