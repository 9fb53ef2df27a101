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

Every start waits (bounded) until the engine answers; stop() always reaps it.  As root
(CI), PostgreSQL runs as the "postgres" system user, which initdb requires; its directory
is then a fresh one under the system's temporary directory (pytest's tmp_path has root-only
parents that user cannot enter), removed by cleanup().
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time

from peers_delivery import free_port

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
