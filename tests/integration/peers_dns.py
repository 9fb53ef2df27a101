"""Real DNS servers on loopback for the tests: dnsmasq for MX/A/PTR records, and the
small helpers every DNS peer shares.

Dnsmasq runs on 127.0.0.1 with a free UDP port and only the given records
(--no-resolv --no-hosts); names under .test and 127.in-addr.arpa that it has no record
for are NXDOMAIN:

    dns = Dnsmasq(mx=[(domain, host, pref)],    # MX
                  hosts=[(name, ip)],           # A + matching PTR
                  a=[(name, ip)],               # A only (and for subdomains)
                  ptrs=[(ip, name)],            # PTR only (forward need not confirm)
                  null_mx=[domain]).start()     # RFC 7505 null MX
    moatd_factory(dns_servers=dns.servers)
    dns.stop()

Every start waits (bounded) until the server answers; stop() always reaps the process.
"""

import socket
import subprocess
import time


def free_udp_port(host="127.0.0.1"):
    """A port free for UDP, and for TCP too where possible (dnsmasq binds both)."""
    for _ in range(20):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((host, 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    return port


def dns_query(port, name, qtype=1, timeout=0.3):
    """One raw UDP query to 127.0.0.1:port; returns the reply bytes (raises OSError)."""
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + qtype.to_bytes(2, "big") + b"\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        return s.recvfrom(512)[0]
    finally:
        s.close()


def wait_answering(proc, port, name, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        try:
            dns_query(port, name)
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not answer on port {port}")


def stop_process(proc):
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Dnsmasq:
    START_TRIES = 5

    def __init__(self, mx=(), hosts=(), a=(), ptrs=(), null_mx=(), txt=()):
        self.port = None
        args = [f"--txt-record={name},{value}" for name, value in txt]
        for domain, host, pref in mx:
            args.append(f"--mx-host={domain},{host},{pref}")
        for name, ip in hosts:
            args.append(f"--host-record={name},{ip}")
        for name, ip in a:
            args.append(f"--address=/{name}/{ip}")
        for ip, name in ptrs:
            rev = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
            args.append(f"--ptr-record={rev},{name}")
        for domain in null_mx:
            args.append(f"--dns-rr={domain},15,000000")
        self.args = args
        self.proc = None

    @property
    def servers(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        # dnsmasq binds TCP as well as UDP on its port: a port free for UDP may be
        # taken for TCP.  Exit status 2 is "address in use": try another port.
        for attempt in range(self.START_TRIES):
            self.port = free_udp_port()
            argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                    "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={self.port}",
                    "--no-resolv", "--no-hosts", "--user=root", "--group=root", "--pid-file=",
                    "--local=/test/", "--local=/127.in-addr.arpa/",
                    "--log-facility=-"] + self.args
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_answering(self.proc, self.port, "test", "dnsmasq")
                return self
            except AssertionError:
                stop_process(self.proc)
                if self.proc.returncode != 2 or attempt == self.START_TRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def stop(self):
        stop_process(self.proc)
