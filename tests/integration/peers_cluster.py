"""Real cluster engines on loopback for the tests: PostgreSQL 15 and Redis 7 from Debian,
each in its own temporary directory on a free port, stopped (and restarted) at will.

    pg = Postgres().start()                    # database "moat", trust auth on 127.0.0.1
    pg.conninfo                                # "host=127.0.0.1 port=N dbname=moat user=moat"
    pg.sql("SELECT count(*) FROM ...")         # psql -At, returns stdout text
    pg.stop(); pg.start()                      # same data directory, same port

    redis = Redis(tmp_path / "redis").start()
    redis.address                              # "127.0.0.1:N"
    redis.cli("KEYS", "*")                     # redis-cli, returns stdout text
    redis.stop(); redis.start()

    nodes = cluster_nodes(moatd_factory, 3, pg=pg, redis=redis, **conf)

Also the fixtures `pg` (a started Postgres) and `downstream` (an aiosmtpd sink), and what the
cluster tests share: health(d), pg_state(d), start_nodes(factory, pg, n, **conf) (joined and
connected), admin(d), sender_refused(d, sender), Load(nodes, total) (a bounded background load
over the nodes) and lines_received(downstream, want).

Every start waits (bounded) until the engine answers; stop() always reaps it.  As root
(CI), PostgreSQL runs as the "postgres" system user, which initdb requires; its directory
is then a fresh one under the system's temporary directory (pytest's tmp_path has root-only
parents that user cannot enter), removed by cleanup().
"""

import json
import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time

import pytest

from api_client import ADMIN_PASSWORD, Api
from conftest import message, wait_for
from peers_delivery import Downstream, free_port

PG_BIN = "/usr/lib/postgresql/15/bin"
START_TIMEOUT = 30.0


def _as_pg_user(argv):
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--"] + argv


class Postgres:
    def __init__(self, workdir=None):
        self._top = None
        if workdir is None:
            self._top = tempfile.mkdtemp(prefix="moat-pg-")
            os.chmod(self._top, 0o755)
            workdir = os.path.join(self._top, "pg")
        self.dir = str(workdir)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.conninfo = f"host=127.0.0.1 port={self.port} dbname=moat user=moat connect_timeout=2"
        self._initdone = False

    def _chown(self):
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for root, dirs, files in os.walk(self.dir):
                for n in dirs + files:
                    os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def _init(self):
        os.makedirs(self.dir, exist_ok=True)
        self._chown()
        subprocess.run(_as_pg_user([f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust",
                                    "-U", "postgres", "--no-sync", "-E", "UTF8"]),
                       check=True, capture_output=True, timeout=120)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                    "synchronous_commit = off\nfull_page_writes = off\n"
                    "max_connections = 100\n")
        self._chown()
        self._initdone = True

    def start(self):
        if not self._initdone:
            self._init()
        subprocess.run(_as_pg_user([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l",
                                    os.path.join(self.dir, "pg.log"), "-w", "-t", "60",
                                    "start"]),
                       check=True, capture_output=True, timeout=90)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                                "postgres", "-At", "-c", "SELECT 1"],
                               capture_output=True, text=True, timeout=10)
            if r.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not answer: {r.stderr}")
            time.sleep(0.1)
        if not getattr(self, "_created", False):
            self.sql("CREATE ROLE moat LOGIN", user="postgres", db="postgres")
            self.sql("CREATE DATABASE moat OWNER moat", user="postgres", db="postgres")
            self._created = True
        return self

    def sql(self, query, user="moat", db="moat"):
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", user,
                            "-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", query],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr}")
        return r.stdout

    def stop(self, mode="fast"):
        if not os.path.exists(os.path.join(self.data, "postmaster.pid")):
            return
        subprocess.run(_as_pg_user([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", mode, "-w",
                                    "-t", "60", "stop"]),
                       capture_output=True, timeout=90)

    def cleanup(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._top is not None:
            shutil.rmtree(self._top, ignore_errors=True)


class Redis:
    def __init__(self, workdir):
        self.dir = str(workdir)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no",
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited")
            try:
                if self.cli("PING").strip() == "PONG":
                    return self
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer")
            time.sleep(0.05)

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)] +
                           [str(a) for a in args], capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise RuntimeError(f"redis-cli failed: {r.stderr}")
        return r.stdout

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def cluster_nodes(moatd_factory, n, pg=None, redis=None, **conf):
    """n moatd nodes (numbered 1..n) sharing pg and/or redis; extra conf for every node."""
    nodes = []
    for i in range(1, n + 1):
        c = dict(conf)
        c["cluster_node"] = str(i)
        if pg is not None:
            c["cluster_pg"] = pg.conninfo
        if redis is not None:
            c["cluster_redis"] = redis.address
        nodes.append(moatd_factory(**c))
    return nodes


@pytest.fixture
def pg():
    p = Postgres()
    try:
        yield p.start()
    finally:
        p.cleanup()


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


def health(d):
    status, _, body = d.http_get("/healthz")
    assert status == 200
    return json.loads(body)


def pg_state(d):
    return health(d).get("cluster", {}).get("postgresql", {})


def start_nodes(moatd_factory, pg, n, **conf):
    """n nodes on pg (cluster_retry 300ms), each joined and connected."""
    nodes = cluster_nodes(moatd_factory, n, pg=pg, cluster_retry="300ms", **conf)
    for d in nodes:
        assert wait_for(lambda: "cluster joined" in d.log_text(), timeout=15), d.log_text()[-3000:]
        assert wait_for(lambda: pg_state(d).get("state") == "up", timeout=10)
    return nodes


def admin(d):
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    return api


def sender_refused(d, sender):
    """One fresh SMTP session (a session keeps its snapshot): is MAIL FROM refused?"""
    c = d.raw()
    try:
        c.ehlo()
        c.send(f"MAIL FROM:<{sender}>\r\n")
        return c.readreply().code == 550
    finally:
        c.close()


class Load:
    """total messages from load@example.net over the nodes in turn, one session each, on a
    thread; message i carries the line "load-i".  .sent and .errors as it goes; join()."""

    def __init__(self, nodes, total):
        self.nodes, self.total = nodes, total
        self.sent, self.errors = [], []
        self.want = {f"load-{i}" for i in range(total)}
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self):
        for i in range(self.total):
            d = self.nodes[i % len(self.nodes)]
            try:
                with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=10) as s:
                    s.sendmail("load@example.net", [f"r{i}@example.org"],
                               message(subject=f"load {i}", body_lines=(f"load-{i}",)))
                self.sent.append(i)
            except (smtplib.SMTPException, OSError) as e:
                self.errors.append((i, repr(e)))
            time.sleep(0.01)

    def join(self, timeout=120):
        self.thread.join(timeout)
        assert not self.thread.is_alive()


def lines_received(downstream, want):
    """Which of the lines in want the sink has seen, each on a line of its own."""
    got = set()
    for m in list(downstream.messages):
        for line in m["content"].splitlines():
            w = line.decode("ascii", "replace").strip()
            if w in want:
                got.add(w)
    return got
