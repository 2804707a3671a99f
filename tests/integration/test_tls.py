#!/usr/bin/env python3
"""TLS listeners (HTTP-CASES.md cases 40-43) with real clients: Python's
ssl module, `openssl s_client`, `curl`, `h2load` and `testssl`.

The test makes its own certificate authority with the openssl command
line: ECDSA P-256 and RSA 2048 server certificates (SAN localhost and
127.0.0.1), a second ECDSA one for a reload, a client certificate, an
expired client certificate and one signed by another authority.

The protocol cases run in `AsyncTls` (2 workers) and `SyncTls`
(`mode = sync`): greetings over s_client and curl, ALPN, both key types,
TLS 1.2 and 1.3, `protocols = TLSv1.3`, session resumption with tickets
(across workers in async), client certificates (`verify_client = on`
and `optional`), a PROXY header before the handshake (whole, split at
every offset, one byte at a time; v1 and v2) and inside the TLS stream,
and bad input (plain HTTP, silent and truncated handshakes, random bytes,
TLS 1.0 and SSLv3 ClientHellos, no shared cipher).  `AsyncTlsScale`:
1,000 idle TLS connections closed at header_timeout, a certificate
replaced and SIGHUP under h2load.  `TestSsl`: testssl against the
default settings."""

import json
import os
import random
import re
import resource
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import hellodtest as ht

HOST = "127.0.0.1"
REQ = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
KEEP = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
PLAIN_400_BODY = b"The plain HTTP request was sent to an HTTPS port\n"
OPENSSL = shutil.which("openssl")
PKI = None


def run(cmd, timeout=30, check=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s" % (
            " ".join(cmd), p.returncode,
            p.stderr.decode("utf-8", "replace")))
    return p


class Pki:
    """A private CA and its certificates in a temporary directory."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="hellod-tls-")
        d = self.dir = self.tmp.name
        self.ca = self.path("ca.pem")
        self.key("ca", "ec")
        run([OPENSSL, "req", "-x509", "-new", "-key", self.path("ca.key"),
             "-out", self.ca, "-days", "730", "-subj",
             "/O=hellod tests/CN=hellod test CA"])
        with open(self.path("san.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                    "extendedKeyUsage=serverAuth\n")
        with open(self.path("client.ext"), "w") as f:
            f.write("extendedKeyUsage=clientAuth\n")
        self.sign("ec", "ec", "/CN=localhost", "san.ext")
        self.sign("rsa", "rsa", "/CN=localhost", "san.ext")
        self.sign("ec2", "ec", "/CN=localhost", "san.ext")
        self.sign("client", "ec", "/O=hellod tests/CN=test client",
                  "client.ext")
        self.sign("expired", "ec", "/O=hellod tests/CN=expired client",
                  "client.ext", days="-1")
        # A client certificate from another authority.
        self.key("other-ca", "ec")
        run([OPENSSL, "req", "-x509", "-new", "-key",
             self.path("other-ca.key"), "-out", self.path("other-ca.pem"),
             "-days", "30", "-subj", "/CN=another CA"])
        self.sign("stranger", "ec", "/CN=stranger", "client.ext",
                  ca="other-ca")

    def path(self, name):
        return os.path.join(self.dir, name)

    def key(self, name, kind):
        if kind == "ec":
            args = ["-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256"]
        else:
            args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        run([OPENSSL, "genpkey"] + args + ["-out", self.path(name + ".key")])

    def sign(self, name, kind, subj, ext, days="365", ca="ca"):
        self.key(name, kind)
        run([OPENSSL, "req", "-new", "-key", self.path(name + ".key"),
             "-out", self.path(name + ".csr"), "-subj", subj])
        run([OPENSSL, "x509", "-req", "-in", self.path(name + ".csr"),
             "-CA", self.path(ca + ".pem"), "-CAkey", self.path(ca + ".key"),
             "-set_serial", str(random.randrange(1 << 127, 1 << 128)),
             "-out", self.path(name + ".pem"), "-days", days,
             "-extfile", self.path(ext)])

    def der(self, name):
        with open(self.path(name + ".pem")) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())


def setUpModule():
    global PKI
    if OPENSSL is None:
        raise unittest.SkipTest("no openssl command")
    PKI = Pki()


def tearDownModule():
    if PKI is not None:
        PKI.tmp.cleanup()


def client_ctx(cert=None, minv=None, maxv=None, ciphers=None):
    ctx = ssl.create_default_context(cafile=PKI.ca)
    ctx.set_alpn_protocols(["http/1.1"])
    if cert:
        ctx.load_cert_chain(PKI.path(cert + ".pem"), PKI.path(cert + ".key"))
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def tls_connect(port, ctx=None, session=None, timeout=5.0):
    s = ht.connect(HOST, port, timeout)
    try:
        return (ctx or client_ctx()).wrap_socket(
            s, server_hostname="localhost", session=session)
    except BaseException:
        s.close()
        raise


def tls_get(port, ctx=None, session=None, req=REQ):
    """One request on a new TLS connection: (response, the SSLSocket's
    facts: version, cipher, alpn, peer certificate, session, reused)."""
    with tls_connect(port, ctx, session) as t:
        t.sendall(req)
        resp = ht.Reader(t).response()
        facts = {"version": t.version(), "cipher": t.cipher()[0],
                 "alpn": t.selected_alpn_protocol(),
                 "cert": t.getpeercert(True), "session": t.session,
                 "reused": t.session_reused,
                 "cport": t.getsockname()[1]}
        return resp, facts


def s_client(port, *args, request=REQ, timeout=20):
    """openssl s_client with the test CA: (exit status, stdout text)."""
    cmd = [OPENSSL, "s_client", "-connect", "%s:%d" % (HOST, port),
           "-servername", "localhost", "-CAfile", PKI.ca,
           "-verify_return_error", "-ign_eof"] + list(args)
    p = subprocess.run(cmd, input=request or b"", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def pem_der(text):
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                  text, re.S)
    return ssl.PEM_cert_to_DER_cert(m.group(0)) if m else None


def conn_owner(server_port, client_port, pids):
    """The pid among pids that holds the server end of the loopback TCP
    connection from client_port to server_port (via /proc)."""
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fl = line.split()
            lport = int(fl[1].split(":")[1], 16)
            rport = int(fl[2].split(":")[1], 16)
            if lport == server_port and rport == client_port:
                inode = fl[9]
    if inode is None:
        return None
    want = "socket:[%s]" % inode
    for pid in pids:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == want:
                    return pid
            except OSError:
                pass
    return None


TLS_METRIC_RE = re.compile(
    r'^hellod_tls_handshake(s|_failures)_total\{listener="([^"]*)",'
    r'(?:result|reason)="([a-z_]+)"\} (\d+)$', re.M)


def tls_counters(status_port, listener):
    """The handshake counters of one TLS listener from /metrics:
    {"full": n, "resumed": n, "protocol": n, "no_shared_cipher": n,
    "certificate": n, "timeout": n}."""
    resp = ht.get(HOST, status_port, "/metrics")
    if resp.status != 200:
        raise AssertionError("/metrics: %r" % resp.raw[:200])
    out = {}
    for _, addr, what, n in TLS_METRIC_RE.findall(resp.body.decode()):
        if addr == listener:
            out[what] = int(n)
    if len(out) != 6:
        raise AssertionError("no TLS counters for %s in:\n%s"
                             % (listener, resp.body.decode()[-3000:]))
    return out


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proxy_v1(src="198.18.0.7", sport=40001, dport=443):
    return ("PROXY TCP4 %s 127.0.0.1 %d %d\r\n" % (src, sport, dport)).encode()


def proxy_v2(src="198.18.0.9", sport=40002, dport=443):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    body = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + \
        struct.pack("!HH", sport, dport)
    return sig + b"\x21\x11" + struct.pack("!H", len(body)) + body


class BioTls:
    """A TLS client over memory BIOs on a plain socket, so that the test
    decides how the first bytes leave (a PROXY header in the same write
    as the ClientHello, or split)."""

    def __init__(self, sock, ctx=None):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = (ctx or client_ctx()).wrap_bio(
            self.inc, self.out, server_hostname="localhost")

    def hello(self):
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.out.read()

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _feed(self):
        data = self.sock.recv(65536)
        if not data:
            self.inc.write_eof()
            return False
        self.inc.write(data)
        return True

    def finish(self):
        """Completes the handshake started by hello()."""
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._feed():
                    raise ConnectionError("EOF during the handshake")

    def request(self, req=REQ):
        """Sends req, reads until the server closes; the bytes."""
        self.obj.write(req)
        self._flush()
        data = b""
        while True:
            try:
                chunk = self.obj.read(65536)
                if not chunk:
                    return data
                data += chunk
            except ssl.SSLWantReadError:
                if not self._feed():
                    return data
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return data


def client_hello(version, legacy_only=True):
    """A ClientHello record offering only `version` (0x0300 SSLv3,
    0x0301 TLS 1.0), without supported_versions, as an old client sends."""
    suites = struct.pack("!4H", 0xc013, 0xc014, 0x002f, 0x0035)
    body = struct.pack("!H", version) + os.urandom(32) + b"\x00" + \
        struct.pack("!H", len(suites)) + suites + b"\x01\x00"
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16" + struct.pack("!HH", version, len(hs)) + hs


def first_flight():
    """The bytes of a ClientHello from client_ctx()."""
    with socket.socket() as s:
        return BioTls(s).hello()


class TlsCases:
    """The protocol cases; mixed into one TestCase per worker model."""

    WORKERS = 2
    MODE = "async"
    HEADER_TIMEOUT = 2.0

    @classmethod
    def server_conf(cls, tls_extra="", server_extra=""):
        cls.tmp_logs = getattr(cls, "tmp_logs", None)
        return ("[server]\nlisten = %s:%%(plain)d\nmode = %s\nworkers = %d\n"
                "tls_listen = %s:%%(tls)d\n"
                "tls_proxy_listen = %s:%%(tproxy)d\n%s"
                "[http]\nheader_timeout = %dms\nkeepalive_timeout = 5s\n"
                "[tls]\ncertificate = %s\ncertificate_key = %s\n"
                "certificate = %s\ncertificate_key = %s\n%s"
                "[log]\naccess_format = json\naccess_log = %%(access)s\n"
                "[status]\nlisten = %s:%%(status)d\n"
                % (HOST, cls.MODE, cls.WORKERS, HOST, HOST, server_extra,
                   int(cls.HEADER_TIMEOUT * 1000),
                   PKI.path("ec.pem"), PKI.path("ec.key"),
                   PKI.path("rsa.pem"), PKI.path("rsa.key"), tls_extra,
                   HOST))

    @classmethod
    def start(cls, tls_extra="", server_extra=""):
        """A server of this class's mode: (Hellod, TLS port, TLS PROXY
        port, access log path)."""
        tls, tproxy, status, plain = (ht.free_port() for _ in range(4))
        logdir = tempfile.mkdtemp(prefix="hellod-tls-log-")
        access = os.path.join(logdir, "access.log")
        conf = cls.server_conf(tls_extra, server_extra) % {
            "tls": tls, "tproxy": tproxy, "access": access,
            "status": status, "plain": plain}
        h = ht.start_hellod(conf, port=plain)
        h.logdir = logdir
        h.status_port = status
        try:
            # Every child forked: the workers and the status server, so
            # that a snapshot of the pids holds them all.
            h.wait_log(r"worker \d+ serving", count=cls.WORKERS)
            h.wait_log(r"#status: status server on")
        except BaseException:
            h.close()
            raise
        return h, tls, tproxy, access

    @classmethod
    def setUpClass(cls):
        cls.srv, cls.tls, cls.tproxy, cls.access = cls.start()
        cls.pids = sorted(cls.srv.worker_pids())

    @classmethod
    def tearDownClass(cls):
        stop(cls.srv)

    def tearDown(self):
        # Every case leaves the same workers serving.
        self.assertEqual(sorted(self.srv.worker_pids()), self.pids)
        resp, _ = tls_get(self.tls)
        self.assertEqual(resp.status, 200)

    def access_lines(self, path, access=None):
        def lines():
            try:
                with open(access or self.access, "rb") as f:
                    text = f.read().decode()
            except FileNotFoundError:
                return None
            out = [json.loads(ln) for ln in text.splitlines()
                   if ('"GET %s HTTP' % path) in ln]
            return out or None
        return ht.wait_for(lines, 5.0, what="access log line of " + path)

    # --- greetings, ALPN, key types, versions (case 40) ---

    def test_s_client_greeting_and_alpn(self):
        rc, out = s_client(self.tls, "-alpn", "http/1.1")
        self.assertEqual(rc, 0, out)
        self.assertIn("ALPN protocol: http/1.1", out)
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertIn(ht.greeting(HOST).decode(), out)

    def test_greeting_alpn_and_access_log(self):
        path = "/py-%s" % self.MODE
        resp, f = tls_get(self.tls, req=REQ.replace(b"GET / ",
                                                    b"GET %s " % path.encode()))
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, ht.greeting(HOST))
        self.assertEqual(f["alpn"], "http/1.1")
        line = self.access_lines(path)[0]
        self.assertEqual(line["tls_protocol"], f["version"])
        self.assertEqual(line["tls_cipher"], f["cipher"])
        self.assertNotIn("tls_client", line)

    def test_close_notify_before_close(self):
        # "Connection: close": close_notify ends the response, so that a
        # client can tell it from a truncation (RFC 8446, 6.1).
        for req in (REQ, b"GET / HTTP/1.0\r\n\r\n"):
            s = ht.connect(HOST, self.tls)
            with client_ctx().wrap_socket(s, server_hostname="localhost",
                                          suppress_ragged_eofs=False) as t:
                t.sendall(req)
                r = ht.Reader(t)
                self.assertEqual(r.response().status, 200)
                self.assertEqual(t.recv(100), b"")   # SSLEOFError if not
        rc, out = s_client(self.tls)
        self.assertNotIn("unexpected eof", out)
        self.assertEqual(rc, 0, out)

    def test_curl(self):
        curl = shutil.which("curl")
        if curl is None:
            self.skipTest("no curl")
        for extra in ([], ["--http1.1", "--tlsv1.2", "--tls-max", "1.2"]):
            p = run([curl, "-sS", "--cacert", PKI.ca, "-w",
                     "\n%{http_code} %{http_version}"] + extra +
                    ["https://localhost:%d/" % self.tls], timeout=20)
            out = p.stdout.decode()
            self.assertIn(ht.greeting(HOST).decode(), out)
            self.assertTrue(out.endswith("200 1.1"), out)

    def test_both_key_types_served(self):
        ec, rsa = PKI.der("ec"), PKI.der("rsa")
        # TLS 1.3: the signature algorithms pick the certificate.
        rc, out = s_client(self.tls, "-tls1_3", "-sigalgs",
                           "ECDSA+SHA256")
        self.assertEqual(rc, 0, out)
        self.assertEqual(pem_der(out), ec)
        self.assertIn("Server public key is 256 bit", out)
        rc, out = s_client(self.tls, "-tls1_3", "-sigalgs",
                           "rsa_pss_rsae_sha256")
        self.assertEqual(rc, 0, out)
        self.assertEqual(pem_der(out), rsa)
        self.assertIn("Server public key is 2048 bit", out)
        # TLS 1.2: the cipher picks it.
        for cipher, der in (("ECDHE-ECDSA-AES128-GCM-SHA256", ec),
                            ("ECDHE-RSA-AES128-GCM-SHA256", rsa),
                            ("ECDHE-RSA-CHACHA20-POLY1305", rsa)):
            resp, f = tls_get(self.tls, client_ctx(
                maxv=ssl.TLSVersion.TLSv1_2, ciphers=cipher))
            self.assertEqual(resp.status, 200)
            self.assertEqual((f["version"], f["cipher"], f["cert"]),
                             ("TLSv1.2", cipher, der))

    def test_tls12_and_tls13(self):
        for v, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                        (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            resp, f = tls_get(self.tls, client_ctx(minv=v, maxv=v))
            self.assertEqual((resp.status, f["version"]), (200, name))
        for flag, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            rc, out = s_client(self.tls, flag)
            self.assertEqual(rc, 0, out)
            self.assertRegex(out, r"(Protocol *: %s|New, %s)"
                             % (name, name))
            self.assertIn(ht.greeting(HOST).decode(), out)

    def test_tls13_only_refuses_tls12(self):
        h, tls, _, _ = self.start("protocols = TLSv1.3\n")
        try:
            resp, f = tls_get(tls)
            self.assertEqual(f["version"], "TLSv1.3")
            with self.assertRaises(ssl.SSLError):
                tls_get(tls, client_ctx(maxv=ssl.TLSVersion.TLSv1_2))
            rc, out = s_client(tls, "-tls1_2")
            self.assertNotEqual(rc, 0, out)
            self.assertIn("protocol version", out)
            resp, _ = tls_get(tls)
            self.assertEqual(resp.status, 200)
        finally:
            stop(h)

    # --- resumption (case 41) ---

    def resume_many(self, ctx, n=40):
        resp, first = tls_get(self.tls, ctx)
        self.assertFalse(first["reused"])
        sess = first["session"]
        self.assertIsNotNone(sess)
        owners = set()
        for _ in range(n):
            with tls_connect(self.tls, ctx, sess) as t:
                self.assertTrue(t.session_reused)
                owners.add(conn_owner(self.tls, t.getsockname()[1],
                                      self.pids))
                t.sendall(REQ)
                resp = ht.Reader(t).response()
                self.assertEqual(resp.status, 200)
        return owners

    def test_resumed_with_tickets_tls13_and_tls12(self):
        for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            owners = self.resume_many(client_ctx(minv=v, maxv=v))
            self.assertNotIn(None, owners)

    def test_ticket_from_one_worker_resumed_by_the_other(self):
        # Tickets are sealed with keys all workers share: a ticket from
        # one worker resumes on every other.  Each worker has its own
        # SO_REUSEPORT socket: the kernel spreads connections by their
        # source port.
        workers = {int(p) for p in re.findall(
            r"(\d+)#worker \d+: worker \d+ serving", self.srv.log())}
        self.assertEqual(len(workers), 2)
        for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = client_ctx(minv=v, maxv=v)
            with tls_connect(self.tls, ctx) as t:
                maker = conn_owner(self.tls, t.getsockname()[1], workers)
                t.sendall(REQ)
                self.assertEqual(ht.Reader(t).response().status, 200)
                sess = t.session
            seen = set()
            for _ in range(200):
                with tls_connect(self.tls, ctx, sess) as t:
                    self.assertTrue(t.session_reused)
                    seen.add(conn_owner(self.tls, t.getsockname()[1],
                                        workers))
                    t.sendall(REQ)
                    self.assertEqual(ht.Reader(t).response().status, 200)
                if seen == workers:
                    break
            self.assertIn(maker, workers)
            self.assertEqual(seen, workers, "%s: made by %d" % (v, maker))

    def test_s_client_sess_out_sess_in(self):
        sess = os.path.join(self.srv.logdir, "sess.pem")
        rc, out = s_client(self.tls, "-sess_out", sess)
        self.assertEqual(rc, 0, out)
        self.assertIn("New, TLSv1.3", out)
        for _ in range(4):
            rc, out = s_client(self.tls, "-sess_in", sess)
            self.assertEqual(rc, 0, out)
            self.assertIn("Reused, TLSv1.3", out)
            self.assertIn(ht.greeting(HOST).decode(), out)

    def test_no_tickets_when_off(self):
        h, tls, _, _ = self.start("session_tickets = off\n")
        try:
            ctx = client_ctx()
            _, f = tls_get(tls, ctx)
            _, g = tls_get(tls, ctx, f["session"])
            self.assertFalse(g["reused"])
        finally:
            stop(h)

    # --- client certificates (case 42) ---

    def test_verify_client_on(self):
        h, tls, _, access = self.start("client_ca = %s\nverify_client = on\n"
                                       % PKI.ca)
        try:
            for who in (None, "expired", "stranger"):
                with self.assertRaises((ssl.SSLError, ConnectionError),
                                       msg=who):
                    resp, _ = tls_get(tls, client_ctx(cert=who))
                    if resp is None:
                        raise ConnectionError("closed")
            resp, f = tls_get(tls, client_ctx(cert="client"),
                              req=REQ.replace(b"GET / ", b"GET /cert "))
            self.assertEqual(resp.status, 200)
            line = self.access_lines("/cert", access)[0]
            self.assertEqual(line["tls_client"],
                             "/O=hellod tests/CN=test client")
            rc, out = s_client(tls, "-cert", PKI.path("client.pem"),
                               "-key", PKI.path("client.key"))
            self.assertEqual(rc, 0, out)
            self.assertIn(ht.greeting(HOST).decode(), out)
            rc, out = s_client(tls)
            self.assertNotIn(ht.greeting(HOST).decode(), out)
            self.assertIn("certificate required", out)
        finally:
            stop(h)

    def test_verify_client_optional(self):
        h, tls, _, access = self.start("client_ca = %s\n"
                                       "verify_client = optional\n" % PKI.ca)
        try:
            resp, _ = tls_get(tls, req=REQ.replace(b"GET / ",
                                                   b"GET /anon "))
            self.assertEqual(resp.status, 200)
            self.assertNotIn("tls_client", self.access_lines("/anon",
                                                             access)[0])
            resp, _ = tls_get(tls, client_ctx(cert="client"),
                              req=REQ.replace(b"GET / ", b"GET /named "))
            self.assertEqual(resp.status, 200)
            self.assertEqual(self.access_lines("/named", access)[0]
                             ["tls_client"], "/O=hellod tests/CN=test client")
            # Given, a certificate is checked.
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                resp, _ = tls_get(tls, client_ctx(cert="stranger"))
                if resp is None:
                    raise ConnectionError("closed")
        finally:
            stop(h)

    # --- counters (the status server's /metrics) ---

    def counted(self, h, port, before, want, timeout=5.0):
        """Until the counters of listener port grew by want exactly."""
        listener = "%s:%d" % (HOST, port)

        def grown():
            now = tls_counters(h.status_port, listener)
            return {k: now[k] - before[k] for k in now} == want and now
        try:
            ht.wait_for(grown, timeout, what="counters %r" % want)
        except AssertionError:
            now = tls_counters(h.status_port, listener)
            self.assertEqual({k: now[k] - before[k] for k in now}, want)

    def test_case41_handshakes_counted_by_reason(self):
        listener = "%s:%d" % (HOST, self.tls)
        zero = dict.fromkeys(("full", "resumed", "protocol",
                              "no_shared_cipher", "certificate",
                              "timeout"), 0)
        before = tls_counters(self.srv.status_port, listener)
        ctx = client_ctx()
        _, f = tls_get(self.tls, ctx)
        tls_get(self.tls, ctx, f["session"])
        tls_get(self.tls, ctx, f["session"])
        ht.exchange(REQ, HOST, self.tls)                    # plain HTTP
        with ht.connect(HOST, self.tls) as s:               # SSLv3
            s.sendall(client_hello(0x0300))
            ht.wait_eof(s, 5)
        with self.assertRaises(ssl.SSLError):
            tls_get(self.tls, client_ctx(maxv=ssl.TLSVersion.TLSv1_2,
                                         ciphers="AES128-SHA"))
        with ht.connect(HOST, self.tls) as s:               # cut, then EOF
            s.sendall(first_flight()[:40])
            s.shutdown(socket.SHUT_WR)
            ht.wait_eof(s, 5)
        with ht.connect(HOST, self.tls) as s:               # too slow
            s.sendall(first_flight()[:40])
            ht.wait_eof(s, self.HEADER_TIMEOUT + 3)
        with ht.connect(HOST, self.tls) as s:               # silent: none
            ht.wait_eof(s, self.HEADER_TIMEOUT + 3)
        want = dict(zero, full=1, resumed=2, protocol=2, no_shared_cipher=1,
                    timeout=2)
        self.counted(self.srv, self.tls, before, want)
        # The PROXY listener counts apart.
        plistener = "%s:%d" % (HOST, self.tproxy)
        pbefore = tls_counters(self.srv.status_port, plistener)
        self.proxied(proxy_v1())
        self.counted(self.srv, self.tproxy, pbefore, dict(zero, full=1))

    def test_case41_client_certificate_failures_counted(self):
        h, tls, _, _ = self.start("client_ca = %s\nverify_client = on\n"
                                  % PKI.ca)
        try:
            listener = "%s:%d" % (HOST, tls)
            before = tls_counters(h.status_port, listener)
            for who in (None, "stranger"):
                try:
                    tls_get(tls, client_ctx(cert=who))
                except (ssl.SSLError, ConnectionError):
                    pass
            tls_get(tls, client_ctx(cert="client"))
            self.counted(h, tls, before, dict(
                dict.fromkeys(before, 0), full=1, certificate=2))
        finally:
            stop(h)

    # --- TLS after a PROXY header (case 43) ---

    def proxied(self, header, chunks=None, pause=0.0):
        """header then a handshake on tls_proxy_listen; the response."""
        with ht.connect(HOST, self.tproxy) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            b = BioTls(s)
            hello = b.hello()
            parts = chunks(header) if chunks else [header]
            parts[-1] += hello
            for i, p in enumerate(parts):
                if i and pause:
                    time.sleep(pause)
                s.sendall(p)
            b.finish()
            return b.request()

    def assert_names(self, raw, addr):
        self.assertTrue(raw.startswith(b"HTTP/1.1 200 "), raw[:200])
        self.assertTrue(raw.endswith(ht.greeting(addr)), raw[-200:])

    def test_case42_proxy_then_tls_one_write(self):
        self.assert_names(self.proxied(proxy_v1()), "198.18.0.7")
        self.assert_names(self.proxied(proxy_v2()), "198.18.0.9")

    def test_case42_proxy_split_at_every_offset(self):
        for header, addr in ((proxy_v1(), "198.18.0.7"),
                             (proxy_v2(), "198.18.0.9")):
            for i in range(1, len(header)):
                raw = self.proxied(header, lambda h: [h[:i], h[i:]],
                                   pause=0.005)
                self.assert_names(raw, addr)

    def test_case42_proxy_one_byte_at_a_time(self):
        for header, addr in ((proxy_v1(), "198.18.0.7"),
                             (proxy_v2(), "198.18.0.9")):
            raw = self.proxied(header, lambda h: [h[i:i + 1]
                                                  for i in range(len(h))],
                               pause=0.002)
            self.assert_names(raw, addr)

    def test_case42_no_proxy_header_closed(self):
        # A handshake straight away on tls_proxy_listen: not a header.
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            tls_get(self.tproxy)

    def test_case42_proxy_header_inside_tls_not_believed(self):
        for port, first in ((self.tls, b""), (self.tproxy, proxy_v1())):
            with ht.connect(HOST, port) as s:
                b = BioTls(s)
                s.sendall(first + b.hello())
                b.finish()
                raw = b.request(proxy_v1("198.18.1.1") + REQ)
            self.assertNotIn(b"198.18.1.1", raw)
            self.assertTrue(raw == b"" or raw.startswith(b"HTTP/1.1 400 "),
                            raw[:200])

    # --- bad input ---

    def test_case40_plain_http_on_tls_port_400(self):
        for port, first in ((self.tls, b""), (self.tproxy, proxy_v1())):
            resp, closed = ht.exchange(first + REQ, HOST, port)
            self.assertEqual(resp.status, 400)
            self.assertEqual(resp.body, PLAIN_400_BODY)
            self.assertTrue(closed)

    def test_case41_silent_and_unfinished_handshakes_closed(self):
        # ... at header_timeout, with or without a PROXY header first.
        hello = first_flight()
        socks = []
        try:
            for port, data in ((self.tls, b""), (self.tls, hello[:20]),
                               (self.tproxy, proxy_v1()),
                               (self.tproxy, proxy_v1() + hello[:30])):
                s = ht.connect(HOST, port)
                s.sendall(data)
                socks.append((s, time.monotonic()))
                if self.MODE == "sync":
                    break       # one blocking worker: one at a time
            for s, t0 in socks:
                data, _ = ht.wait_eof(s, self.HEADER_TIMEOUT + 3)
                took = time.monotonic() - t0
                self.assertEqual(data, b"")
                self.assertGreater(took, self.HEADER_TIMEOUT - 0.3)
                self.assertLess(took, self.HEADER_TIMEOUT + 1.5)
        finally:
            for s, _ in socks:
                s.close()

    def test_case41_truncated_client_hello_then_eof(self):
        hello = first_flight()
        for cut in (1, 5, 6, 40, len(hello) - 1):
            with ht.connect(HOST, self.tls) as s:
                s.sendall(hello[:cut])
                s.shutdown(socket.SHUT_WR)
                data, took = ht.wait_eof(s, 5)
                self.assertLess(took, 1.5)

    def test_case41_random_bytes(self):
        rnd = random.Random(43)
        for n in (1, 5, 100, 5000):
            data = bytes(rnd.randrange(256) for _ in range(n))
            if data[:1] in (b"G", b"H", b"P"):
                data = b"\x00" + data
            with ht.connect(HOST, self.tls) as s:
                s.sendall(data)
                got, took = ht.wait_eof(s, 5)
                self.assertNotIn(b"HTTP/1.1 200", got)

    def test_case41_old_protocols_refused(self):
        for version in (0x0300, 0x0301, 0x0302):
            with ht.connect(HOST, self.tls) as s:
                s.sendall(client_hello(version))
                got, _ = ht.wait_eof(s, 5)
            # A fatal alert record, protocol_version (70) or handshake
            # failure (40), and nothing else.
            self.assertEqual(got[:1], b"\x15", got)
            self.assertIn(got[6:7], (b"\x46", b"\x28"), got)
        # Python's own client limited to TLS 1.0 and 1.1, when allowed.
        for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            try:
                ctx = client_ctx(minv=v, maxv=v, ciphers="ALL:@SECLEVEL=0")
            except (ValueError, ssl.SSLError):
                continue
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                tls_get(self.tls, ctx)

    def test_case41_no_shared_cipher(self):
        with self.assertRaises(ssl.SSLError) as cm:
            tls_get(self.tls, client_ctx(maxv=ssl.TLSVersion.TLSv1_2,
                                         ciphers="AES128-SHA:AES256-SHA"))
        self.assertIn("HANDSHAKE_FAILURE", str(cm.exception).upper())
        rc, out = s_client(self.tls, "-tls1_3", "-ciphersuites",
                           "TLS_AES_128_CCM_SHA256")
        self.assertNotEqual(rc, 0)
        self.assertNotIn(ht.greeting(HOST).decode(), out)

    def test_case43_pipelined_150_in_order(self):
        with tls_connect(self.tls) as t:
            r = ht.Reader(t)
            t.sendall(b"".join(KEEP.replace(b"GET / ", b"GET /%d " % i)
                               for i in range(150)) + REQ)
            for _ in range(151):
                resp = r.response()
                self.assertEqual(resp.status, 200)
            self.assertTrue(r.closed())

    def test_case43_one_byte_per_record(self):
        # Each byte in its own TLS record and TCP segment.
        with tls_connect(self.tls) as t:
            t.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(REQ)):
                t.sendall(REQ[i:i + 1])
            resp = ht.Reader(t).response()
            self.assertEqual(resp.body, ht.greeting(HOST))

    def test_case43_split_at_every_offset_keep_alive(self):
        # One kept-alive connection, each request split in two records.
        with tls_connect(self.tls) as t:
            r = ht.Reader(t)
            for i in range(1, len(KEEP)):
                t.sendall(KEEP[:i])
                t.sendall(KEEP[i:])
                self.assertEqual(r.response().body, ht.greeting(HOST))

    def test_case43_errors_as_over_tcp(self):
        # A 405 keeps the connection; a malformed request is a 400 that
        # closes it, with close_notify.
        with tls_connect(self.tls) as t:
            r = ht.Reader(t)
            t.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 3\r\n\r\nabc" + KEEP)
            self.assertEqual(r.response().status, 405)
            self.assertEqual(r.response().status, 200)
            t.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Field: y\r\n\r\n")
            self.assertEqual(r.response().status, 400)
            self.assertTrue(r.closed())


def stop(h):
    try:
        ht.stop_and_close(h)
    finally:
        shutil.rmtree(getattr(h, "logdir", "/nonexistent"),
                      ignore_errors=True)


class AsyncTls(TlsCases, unittest.TestCase):
    WORKERS = 2
    MODE = "async"


class SyncTls(TlsCases, unittest.TestCase):
    WORKERS = 1
    MODE = "sync"

    def test_ticket_from_one_worker_resumed_by_the_other(self):
        self.skipTest("one sync worker")


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


class TicketRotation(unittest.TestCase):
    """Session-ticket keys rotate every session_ticket_lifetime: a ticket
    sealed before a rotation still resumes after it (the previous key
    opens it), and not once its key is two rotations old.  The server's
    clocks run 100 times faster (libfaketime, Debian package libfaketime),
    so that a lifetime of one minute passes in 0.6 s."""

    def test_tickets_resume_across_one_rotation_not_two(self):
        if not os.path.exists(FAKETIME_LIB):
            self.skipTest("no %s (Debian package libfaketime)"
                          % FAKETIME_LIB)
        if ht.SANITIZERS:
            # AddressSanitizer's runtime must come first among the
            # libraries: an LD_PRELOAD stops the process at start.
            self.skipTest("libfaketime cannot be preloaded into a "
                          "sanitizer build")
        tls, plain = ht.free_port(), ht.free_port()
        conf = ("[server]\nlisten = %s:%d\ntls_listen = %s:%d\n"
                "workers = 2\n[http]\nheader_timeout = 60m\n"
                "keepalive_timeout = 60m\n[tls]\ncertificate = %s\n"
                "certificate_key = %s\nsession_ticket_lifetime = 1m\n"
                "[log]\nlevel = debug\n"
                % (HOST, plain, HOST, tls, PKI.path("ec.pem"),
                   PKI.path("ec.key")))
        h = ht.Hellod(conf, port=plain, ready=False,
                      env={"LD_PRELOAD": FAKETIME_LIB,
                           "FAKETIME": "+0 x100"})
        self.addCleanup(h.close)
        h.wait_log(r"worker \d+ serving", count=2)

        def rotations():
            return h.log().count("session ticket keys rotated")
        ctx = client_ctx(minv=ssl.TLSVersion.TLSv1_3)
        resp, facts = tls_get(tls, ctx)
        self.assertEqual(resp.status, 200)
        first = facts["session"]
        n = rotations()
        ht.wait_for(lambda: rotations() > n, 10.0, interval=0.005,
                    what="a rotation of the ticket keys")
        # Sealed with what is now the previous key: it still resumes.
        resp, facts = tls_get(tls, ctx, session=first)
        self.assertEqual(resp.status, 200)
        self.assertTrue(facts["reused"], "a ticket of the previous key "
                        "did not resume")
        # Two rotations later its key is gone: a full handshake.
        n = rotations()
        ht.wait_for(lambda: rotations() >= n + 2, 10.0, interval=0.005,
                    what="two more rotations")
        resp, facts = tls_get(tls, ctx, session=first)
        self.assertEqual(resp.status, 200)
        self.assertFalse(facts["reused"])
        self.assertEqual(ht.log_problems(h.log()), [])
        self.assertEqual(h.stop(), 0)


def own_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return True
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, max(n, hard)))
    except (ValueError, OSError):
        return False
    return True


class AsyncTlsScale(unittest.TestCase):
    """One async worker: 1,000 idle TLS connections; a certificate
    replaced under load."""

    def test_case41_1000_idle_tls_connections_closed_at_header_timeout(self):
        if not own_nofile(4096):
            self.skipTest("cannot raise RLIMIT_NOFILE to 4096")
        cls = type("One", (TlsCases,), {"WORKERS": 1, "MODE": "async",
                                        "HEADER_TIMEOUT": 3.0})
        h, tls, tproxy, _ = cls.start()
        try:
            pids = sorted(h.worker_pids())
            # A warm-up handshake, then the descriptor base.
            tls_get(tls)
            base = {p: fd_count(p) for p in pids}
            hello = first_flight()
            socks = []
            t0 = time.monotonic()
            kinds = ((tls, b""), (tls, hello[:50]), (tproxy, b""),
                     (tproxy, proxy_v1() + hello[:50]))
            for i in range(1000):
                port, data = kinds[i % 4]
                s = socket.create_connection((HOST, port), timeout=5)
                s.sendall(data)
                socks.append(s)
            opened = time.monotonic() - t0
            # Served next to them.
            resp, _ = tls_get(tls)
            self.assertEqual(resp.status, 200)
            import selectors
            sel = selectors.DefaultSelector()
            for s in socks:
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
            closed_at = []
            deadline = t0 + opened + cls.HEADER_TIMEOUT + 5
            while len(closed_at) < len(socks) and \
                    time.monotonic() < deadline:
                for key, _ in sel.select(0.5):
                    try:
                        data = key.fileobj.recv(4096)
                    except ConnectionResetError:
                        data = b""
                    self.assertEqual(data, b"")
                    closed_at.append(time.monotonic() - t0)
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
            self.assertEqual(len(closed_at), 1000, "still open after %.1fs"
                             % (time.monotonic() - t0))
            sys.stderr.write("\n1000 opened in %.2fs, closed %.2f-%.2fs "
                             "after the first (header_timeout %.1fs)\n"
                             % (opened, min(closed_at), max(closed_at),
                                cls.HEADER_TIMEOUT))
            self.assertGreater(min(closed_at), cls.HEADER_TIMEOUT - 0.3)
            self.assertLess(max(closed_at),
                            opened + cls.HEADER_TIMEOUT + 1.5)
            self.assertEqual(sorted(h.worker_pids()), pids)
            for p in pids:
                ht.wait_for(lambda: fd_count(p) <= base[p], 5.0,
                            what="worker %d's descriptors back to %d "
                            "(now %d)" % (p, base[p], fd_count(p)))
            resp, _ = tls_get(tls)
            self.assertEqual(resp.status, 200)
            self.assertEqual(ht.log_problems(h.log()), [])
        finally:
            stop(h)

    def test_certificate_replaced_and_sighup_under_h2load(self):
        h2load = shutil.which("h2load")
        if h2load is None:
            self.skipTest("no h2load (Debian package nghttp2-client)")
        live = tempfile.mkdtemp(prefix="hellod-tls-live-")
        for n in ("ec.pem", "ec.key"):
            shutil.copy(PKI.path(n), os.path.join(live, n))
        tls = ht.free_port()
        conf = ("[server]\nworkers = 2\ntls_listen = %s:%d\n[tls]\n"
                "certificate = %s\ncertificate_key = %s\n"
                % (HOST, tls, os.path.join(live, "ec.pem"),
                   os.path.join(live, "ec.key")))
        h = ht.start_hellod(conf)
        try:
            h.wait_log(r"worker \d+ serving", count=2)
            _, f = tls_get(tls)
            self.assertEqual(f["cert"], PKI.der("ec"))
            # A connection opened before the reload and used after.
            old = tls_connect(tls)
            old_r = ht.Reader(old)
            old.sendall(KEEP)
            self.assertEqual(old_r.response().status, 200)
            load = subprocess.Popen(
                [h2load, "--h1", "-c", "20", "-n", "30000", "-t", "1",
                 "https://%s:%d/" % (HOST, tls)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                ht.wait_for(lambda: ht.tcp_connections(h.worker_pids())
                            >= 10, 10, what="h2load's connections")
                for n in ("ec.pem", "ec.key"):
                    shutil.copy(PKI.path("ec2" + n[2:]),
                                os.path.join(live, n + ".new"))
                    os.rename(os.path.join(live, n + ".new"),
                              os.path.join(live, n))
                ht.reload_and_wait(h, 2, 2)
                _, f = tls_get(tls)
                self.assertEqual(f["cert"], PKI.der("ec2"))
                # The old connection still answers, with its certificate.
                self.assertEqual(old.getpeercert(True), PKI.der("ec"))
                old.sendall(KEEP)
                self.assertEqual(old_r.response().status, 200)
                out = load.communicate(timeout=120)[0].decode()
            finally:
                if load.poll() is None:
                    load.kill()
                    load.wait()
                old.close()
            m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) "
                          r"done, (\d+) succeeded, (\d+) failed, (\d+) "
                          r"errored, (\d+) timeout", out)
            self.assertIsNotNone(m, out)
            self.assertEqual((m.group(4), m.group(5), m.group(6)),
                             ("30000", "0", "0"), out)
            self.assertEqual(ht.log_problems(h.log()), [])
        finally:
            stop(h)
            shutil.rmtree(live, ignore_errors=True)


class BehindHaproxy(unittest.TestCase):
    """HAProxy in TCP mode with send-proxy-v2 in front of tls_proxy_listen,
    across network namespaces (netns.py): the client in its namespace,
    HAProxy on the bridge address, hellod (async, then sync) in a host
    namespace.  The greeting names the client, not HAProxy.  Root only."""

    NET = 247               # 198.18.247.0/24
    TLS_PROXY, FRONT, FRONT_SYNC = 8443, 9443, 9444

    @classmethod
    def setUpClass(cls):
        import netns
        cls.netns = netns
        netns.skip_unless_possible()
        netns.need("haproxy", "haproxy")
        cls.topo = netns.Topology("tls", hosts=2, clients=1, net=cls.NET,
                                  isolate=True)
        cls.hd = []
        try:
            for h, args in zip(cls.topo.hosts, ((), ("--sync",))):
                conf = ("[server]\nworkers = 2\ntls_proxy_listen = %s:%d\n"
                        "[tls]\ncertificate = %s\ncertificate_key = %s\n"
                        % (h.addr, cls.TLS_PROXY, PKI.path("ec.pem"),
                           PKI.path("ec.key")))
                d = ht.Hellod(conf, args=args, host=h.addr, port=8080,
                              wrapper=h.wrapper, ready=False)
                cls.hd.append(d)
                netns.wait_listening(d.proc, h.addr, cls.TLS_PROXY, ns=h,
                                     log=d.log)
                d.wait_ready()
            br = cls.topo.addr
            lines = ["global", "    maxconn 4096", "", "defaults",
                     "    mode tcp", "    timeout connect 2s",
                     "    timeout client 10s", "    timeout server 10s", ""]
            for port, h in ((cls.FRONT, cls.topo.hosts[0]),
                            (cls.FRONT_SYNC, cls.topo.hosts[1])):
                lines += ["frontend fe%d" % port, "    bind %s:%d" % (br, port),
                          "    default_backend be%d" % port, "",
                          "backend be%d" % port,
                          "    server s %s:%d send-proxy-v2"
                          % (h.addr, cls.TLS_PROXY), ""]
            cls.haproxy = cls.topo.haproxy("\n".join(lines))
        except BaseException:
            cls.close_all()
            raise

    @classmethod
    def close_all(cls):
        try:
            for d in cls.hd:
                d.close()
        finally:
            cls.topo.close()

    @classmethod
    def tearDownClass(cls):
        problems = []
        try:
            cls.haproxy.stop()
            for d in cls.hd:
                rc = d.stop()
                if rc != 0:
                    problems.append("hellod exited %d:\n%s" % (rc, d.log()))
        finally:
            cls.close_all()
        left = cls.netns.leftovers("tls")
        if any(left.values()):
            problems.append("left after close(): %r" % left)
        if problems:
            raise AssertionError("\n".join(problems))

    def greet(self, port):
        client = self.topo.client
        s = client.connect(self.topo.addr, port)
        with client_ctx().wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(REQ)
            return ht.Reader(t).response()

    def test_greeting_names_the_client_behind_haproxy(self):
        for port in (self.FRONT, self.FRONT_SYNC):
            resp = self.greet(port)
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.body, ht.greeting(self.topo.client.addr))

    def test_curl_and_ab_through_haproxy(self):
        client = self.topo.client
        for port in (self.FRONT, self.FRONT_SYNC):
            url = "https://localhost:%d/" % port
            if shutil.which("curl"):
                p = client.run(["curl", "-sS", "--cacert", PKI.ca,
                                "--resolve", "localhost:%d:%s"
                                % (port, self.topo.addr), url], check=True)
                self.assertEqual(p.stdout,
                                 ht.greeting(client.addr).decode())
            if shutil.which("ab") is None:
                continue
            p = client.run(["ab", "-q", "-n", "1000", "-c", "10", "-l",
                            "https://%s:%d/" % (self.topo.addr, port)],
                           timeout=120, check=True)
            self.assertRegex(p.stdout, r"Complete requests:\s+1000\b",
                             p.stdout)
            self.assertRegex(p.stdout, r"Failed requests:\s+0\b", p.stdout)
            self.assertNotRegex(p.stdout, r"Non-2xx", p.stdout)


class TestSsl(unittest.TestCase):
    """testssl against the default [tls] settings, ECDSA and RSA
    certificates from the test CA: protocols, cipher categories, forward
    secrecy, server preferences and defaults, headers, vulnerabilities
    (-p -s -f -P -S -h -U --fast; without the per-cipher list -E and the
    client simulation -c, which take minutes on two shared cores)."""

    # Findings about the test's private CA and a loopback host, or about
    # the greeting by design, not about the server's TLS settings.  The
    # id, without testssl's " <cert#N>" suffix, and why it is accepted.
    ACCEPTED = {
        "cert_revocation": "the private CA publishes neither CRL nor OCSP",
        "cert_crlDistributionPoints": "the private CA publishes no CRL",
        "cert_ocspURL": "the private CA runs no OCSP responder",
        "OCSP_stapling": "the private CA runs no OCSP responder",
        "cert_certificateTransparency": "no CT log for a private CA",
        "DNS_CAArecord": "no DNS for localhost",
        "cert_chain_of_trust": "the private CA (trusted with --add-ca)",
        "cert_trust": "a loopback name",
        "HSTS": "the greeting sends no HSTS header, by design",
        "security_headers": "the greeting sends no security headers, "
                            "by design",
    }

    def test_testssl(self):
        testssl = shutil.which("testssl") or shutil.which("testssl.sh")
        if testssl is None:
            self.skipTest("no testssl (Debian package testssl.sh)")
        tls = ht.free_port()
        h = ht.start_hellod(
            "[server]\nworkers = 2\ntls_listen = %s:%d\n[tls]\n"
            "certificate = %s\ncertificate_key = %s\n"
            "certificate = %s\ncertificate_key = %s\n"
            % (HOST, tls, PKI.path("ec.pem"), PKI.path("ec.key"),
               PKI.path("rsa.pem"), PKI.path("rsa.key")))
        out = os.path.join(PKI.dir, "testssl.json")
        try:
            h.wait_log(r"worker \d+ serving", count=2)
            pids = sorted(h.worker_pids())
            t0 = time.monotonic()
            p = subprocess.run(
                [testssl, "--quiet", "--color", "0", "--warnings", "off",
                 "--fast", "-p", "-s", "-f", "-P", "-S", "-h", "-U",
                 "--add-ca", PKI.ca, "--jsonfile", out,
                 "localhost:%d" % tls],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=600)
            with open(out) as f:
                findings = json.load(f)
            took = time.monotonic() - t0
            bad = [f for f in findings
                   if f.get("severity") in ("LOW", "MEDIUM", "HIGH",
                                            "CRITICAL")
                   or re.search(r"not ok|\bvulnerable|weak",
                                f.get("finding", ""), re.I) and
                   not re.search(r"not vulnerable", f.get("finding", ""),
                                 re.I)]
            real = [f for f in bad
                    if f["id"].split(" <")[0] not in self.ACCEPTED]
            sys.stderr.write("\ntestssl: %.0fs, %d findings, %d "
                             "rated LOW or worse, all accepted:\n%s\n"
                             % (took, len(findings), len(bad), "\n".join(
                                 "  %s %s: %s" % (f["severity"], f["id"],
                                                  f["finding"][:80])
                                 for f in bad)))
            self.assertEqual(real, [], p.stdout.decode()[-3000:])
            # No protocol below TLS 1.2, no cipher below 128 bits, the
            # vulnerability checks all passed.
            ids = {f["id"]: f for f in findings}
            for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
                self.assertEqual(ids[old]["finding"], "not offered", old)
            for vuln in ("heartbleed", "CCS", "ticketbleed", "ROBOT",
                         "secure_renego", "secure_client_renego", "CRIME_TLS",
                         "POODLE_SSL", "fallback_SCSV", "SWEET32", "FREAK",
                         "DROWN", "LOGJAM", "BEAST", "LUCKY13", "RC4"):
                if vuln in ids and not re.search(
                        r"local (openssl|problem)", ids[vuln]["finding"],
                        re.I):     # RC4: Debian's openssl has none to try
                    self.assertIn(ids[vuln]["severity"], ("OK", "INFO"),
                                  ids[vuln])
            self.assertEqual(sorted(h.worker_pids()), pids)
            self.assertEqual(ht.log_problems(h.log()), [])
        finally:
            stop(h)


if __name__ == "__main__":
    ht.main()
