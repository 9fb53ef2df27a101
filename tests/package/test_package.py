"""The Debian package (docs/install.md): build, install, run, upgrade, remove, purge.

Installs moatd machine-wide (dpkg -i, the system user moat, /var/lib/moat),
so it runs only as root, only where moatd is not installed already, and
undoes everything at the end, whatever happened.  Without a running systemd
the maintainer scripts must cope as Debian's do (deb-systemd-invoke does
nothing); moatd is run here by hand as the user moat.  The unit's hardening
figure is checked offline (systemd-analyze security --offline=yes).

Run: /usr/bin/python3 -m pytest -q tests/package  (MOAT_DEB=path skips the build)
"""

import os
import pwd
import grp
import re
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "debian" / "moatd.service"
DATA = Path("/var/lib/moat")
CONF = Path("/etc/moat/moatd.conf")
READY_RE = re.compile(r" ready smtp=(\S+) http=(\S+) pid=(\d+)")


def run(*args, check=True, timeout=300, **kw):
    p = subprocess.run(list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{args}: exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def installed():
    p = run("dpkg-query", "-W", "-f=${Status}", "moatd", check=False)
    return p.returncode == 0 and "installed" in p.stdout and "not-installed" not in p.stdout


def user_exists(name="moat"):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name="moat"):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(0.05)


def test_unit_exposure_at_most_2():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    p = run("systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT),
            check=False)
    m = re.search(r"Overall exposure level for moatd\.service: (\d+\.\d+)", p.stdout + p.stderr)
    assert m, p.stdout[-2000:] + p.stderr[-2000:]
    assert float(m.group(1)) <= 2.0, p.stdout
    # The settings the exposure depends on, and the ones it does not measure.
    text = UNIT.read_text()
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30s", "User=moat",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "ProtectSystem=strict",
                 "ReadWritePaths=/var/lib/moat", "SystemCallFilter=@system-service",
                 "MemoryDenyWriteExecute=yes", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in text.splitlines(), line


@pytest.fixture
def machine():
    """Refuses to touch a machine that has moatd or a user moat already; cleans up after."""
    if os.geteuid() != 0:
        pytest.skip("installs a package: needs root")
    if installed() or user_exists() or group_exists() or DATA.exists() or CONF.parent.exists():
        pytest.skip("moatd, the user moat, /var/lib/moat or /etc/moat already present")
    procs = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    run("dpkg", "--purge", "moatd", check=False)
    if user_exists():
        run("userdel", "moat", check=False)
    if group_exists():
        run("groupdel", "moat", check=False)
    shutil.rmtree(DATA, ignore_errors=True)
    shutil.rmtree(CONF.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    """(first, second): the package, and the same with a higher version."""
    tmp = tmp_path_factory.mktemp("debs")
    first = os.environ.get("MOAT_DEB")
    if not first:
        if os.geteuid() != 0:
            pytest.skip("installs a package: needs root")
        p = run(str(REPO / "scripts" / "dev.sh"), "package", timeout=900)
        first = p.stdout.strip().splitlines()[-1]
    first = Path(first)
    assert first.is_file(), first
    # The next release: same contents, version one higher.
    tree = tmp / "tree"
    run("dpkg-deb", "-R", str(first), str(tree))
    control = tree / "DEBIAN" / "control"
    text = control.read_text()
    version = re.search(r"^Version: (\S+)$", text, re.M).group(1)
    control.write_text(text.replace(f"Version: {version}", f"Version: {version}+next1"))
    second = tmp / f"moatd_{version}+next1_amd64.deb"
    run("dpkg-deb", "--root-owner-group", "-b", str(tree), str(second))
    return first, second


def start_moatd(procs, log):
    """The installed moatd on the installed config, as the user moat, on free ports."""
    fh = open(log, "ab")
    p = subprocess.Popen(
        ["setpriv", "--reuid=moat", "--regid=moat", "--init-groups", "--",
         "/usr/sbin/moatd", "-c", str(CONF),
         "-o", "smtp_listen=127.0.0.1:0", "-o", "http_listen=127.0.0.1:0"],
        stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, cwd="/")
    procs.append(p)
    m = wait_for(lambda: READY_RE.search(log.read_text()) or p.poll() is not None, 20)
    assert m is not True and m and p.poll() is None, log.read_text()[-3000:]
    return p, m


def stop_moatd(p, log):
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0, log.read_text()[-3000:]


def user_version(path):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


def old_database(path, upto):
    """A database as an older release left it: migrations 1..upto, one list entry."""
    con = sqlite3.connect(path)
    for f in sorted((REPO / "schema").glob("[0-9][0-9][0-9]_*.sql"))[:upto]:
        con.executescript(f.read_text())
    con.execute(f"PRAGMA user_version = {upto}")
    con.execute("INSERT INTO policy_entry (list, value, created) VALUES (?, ?, ?)",
                ("local_domain", "kept.example", 1))
    con.commit()
    con.close()


def test_install_run_upgrade_purge(machine, debs, tmp_path):
    first, second = debs

    # --- install, with no systemd running ---------------------------------------------------
    run("dpkg", "-i", str(first))
    pw = pwd.getpwnam("moat")
    assert pw.pw_uid < 1000, "a system user"
    assert pw.pw_dir == str(DATA) and pw.pw_shell == "/usr/sbin/nologin"
    st = DATA.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (pw.pw_uid, pw.pw_gid, 0o750)
    assert os.access("/usr/sbin/moatd", os.X_OK)
    assert Path("/lib/systemd/system/moatd.service").read_text() == UNIT.read_text()
    # Enabled for the next boot, as Debian does for services.
    assert Path("/etc/systemd/system/multi-user.target.wants/moatd.service").is_symlink()
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "moatd").stdout
    assert "/etc/moat/moatd.conf" in conffiles
    cst = CONF.stat()
    assert (cst.st_uid, cst.st_gid, cst.st_mode & 0o777) == (0, pw.pw_gid, 0o640)
    conf = CONF.read_text()
    assert re.search(r"^data_dir = /var/lib/moat$", conf, re.M)
    assert re.search(r"^http_listen = 127\.0\.0\.1:", conf, re.M)
    webui = Path("/usr/share/moat/webui/index.html")
    has_console = (REPO / "webui" / "dist" / "index.html").exists()
    assert webui.exists() == has_console

    # --- run as moat -------------------------------------------------------------------------
    log = tmp_path / "run1.log"
    p, m = start_moatd(machine, log)
    http = m.group(2)
    with urllib.request.urlopen(f"http://{http}/healthz", timeout=5) as r:
        assert r.status == 200
    if has_console:
        with urllib.request.urlopen(f"http://{http}/", timeout=5) as r:
            assert b"<html" in r.read().lower()
    stop_moatd(p, log)
    db = DATA / "moat.db"
    assert db.stat().st_uid == pw.pw_uid
    latest = user_version(db)
    assert latest >= 4
    assert not list(DATA.glob("moat.db.pre-migration-*")), "no copy of a new database"

    # --- upgrade: an older release's database is migrated, a copy kept -------------------------
    for f in DATA.glob("moat.db*"):
        f.unlink()
    old_database(db, 3)
    os.chown(db, pw.pw_uid, pw.pw_gid)
    CONF.write_text(conf + "\n# an administrator's edit\n")
    run("dpkg", "-i", str(second))
    assert "# an administrator's edit" in CONF.read_text(), "conffile kept on upgrade"
    assert pwd.getpwnam("moat").pw_uid == pw.pw_uid
    log = tmp_path / "run2.log"
    p, _ = start_moatd(machine, log)
    stop_moatd(p, log)
    backup = DATA / "moat.db.pre-migration-3"
    assert backup.is_file(), sorted(os.listdir(DATA))
    assert user_version(backup) == 3
    assert user_version(db) == latest
    for path in (backup, db):
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        rows = con.execute("SELECT value FROM policy_entry WHERE list = 'local_domain'").fetchall()
        con.close()
        assert rows == [("kept.example",)], (path, rows)

    # --- remove keeps data, config and user; purge removes them ----------------------------------
    run("dpkg", "-r", "moatd")
    assert not Path("/usr/sbin/moatd").exists()
    assert db.exists() and CONF.exists() and user_exists()
    run("dpkg", "--purge", "moatd")
    assert not installed()
    assert not DATA.exists()
    assert not CONF.parent.exists()
    assert not user_exists() and not group_exists()
    assert not Path("/etc/systemd/system/multi-user.target.wants/moatd.service").exists()
