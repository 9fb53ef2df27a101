"""The infected PC that keeps its account's valid envelope sender (docs/submission.md,
"The own-sender bot"): it varies From: and Subject per message, writes to three large
domains, and uses 40 parallel connections, while ten ordinary accounts each send a message
every 200 ms (their own sender and From:, 2-3 recipients).

The numbers (defaults: limit_account_messages 10,300,1200,5000, account_suspend_score 20):
  the per-second limit holds from the first message: at most 10 of the bot's MAILs are
  accepted in its first second, the rest get 451 4.7.1 and retry; every message adds a new
  foreign From: (3 x (distinct - 1)), so the 8th scores 21 and is refused at the end of
  DATA (550 5.7.1): the bot is suspended after 7 accepted messages (asserted: <= 50).
  Ordinary mail: 0 refused, 0 deferred; its latency is printed.
"""

import random
import smtplib
import statistics
import string
import threading
import time

import pytest

from conftest import wait_for
from peers_delivery import Downstream, delivery_conf
from peers_dns import Dnsmasq
from submission_util import SUBMISSION_CONF, add_user, smtp_tls

BOT_CONNECTIONS = 40
ORDINARY = 10
ORDINARY_EVERY = 0.2        # seconds between an ordinary account's messages
BOT_MAX_SECONDS = 20
ORDINARY_AFTER_BOT = 2.0    # ordinary mail goes on this long after the bot stopped
PER_SECOND = 10             # limit_account_messages' default per second
LARGE = ["bigmail.test", "webmail.test", "freemail.test"]
BODY = "Cheap watches, best prices.\r\nClick here.\r\n"


def rnd(n=8):
    return "".join(random.choice(string.ascii_lowercase) for _ in range(n))


def msg(from_addr, subject, to, body):
    return (f"From: {from_addr}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{time.time_ns()}.{rnd()}@example.com>\r\n\r\n{body}").encode()


@pytest.fixture
def world(moatd_factory):
    dns = Dnsmasq(mx=[(dom, "mx.partner.test", 10) for dom in LARGE]
                  + [(f"partner{i}.test", "mx.partner.test", 10) for i in range(3)],
                  hosts=[("mx.partner.test", "127.0.0.2")]).start()
    down = Downstream().start()
    conf = delivery_conf(down.addr, smarthost=down.addr, local_domains=("example.com",))
    conf.update(SUBMISSION_CONF)
    conf.update(recipient_domain_check="yes", dns_servers=dns.servers, dns_timeout="1s",
                dns_tries="1", max_sessions_per_client="100", max_sessions="200")
    d = moatd_factory(**conf)
    for i in range(ORDINARY):
        add_user(d, f"user{i}", [f"user{i}@example.com"], f"user{i}-password")
    add_user(d, "bot", ["bot@example.com"], "bot-password-1")
    yield d, down
    down.stop()
    dns.stop()


class Bot:
    def __init__(self):
        self.lock = threading.Lock()
        self.accepted = []      # (time of the MAIL's 250, time of the DATA's 250)
        self.deferred = 0
        self.suspended = False
        self.errors = []
        self.start = None
        self.stop = threading.Event()

    def run(self, d, ready):
        try:
            s = smtp_tls(d.smtp_port)
            for _ in range(100):  # 454: logins of this account already under way
                try:
                    s.login("bot", "bot-password-1")
                    break
                except smtplib.SMTPAuthenticationError as e:
                    if e.smtp_code != 454:
                        raise
                    time.sleep(0.1)
            else:
                raise AssertionError("bot: no login")
        except Exception as e:
            self.errors.append(repr(e))
            ready.wait()
            return
        ready.wait()
        try:
            while not self.stop.is_set() and time.monotonic() - self.start < BOT_MAX_SECONDS:
                code, resp = s.mail("bot@example.com")
                t_mail = time.monotonic()
                if code == 451:
                    with self.lock:
                        self.deferred += 1
                    s.rset()
                    time.sleep(0.02)
                    continue
                if code == 550:
                    self.suspended = True
                    break
                assert code == 250, (code, resp)
                for dom in LARGE:
                    code, resp = s.rcpt(f"{rnd()}@{dom}")
                    if code != 250:
                        break
                if code != 250:
                    s.rset()
                    if code == 550:
                        self.suspended = True
                        break
                    continue
                code, resp = s.data(msg(f"{rnd()} <{rnd()}@{rnd()}.example>",
                                        f"Offer {rnd(12)}", f"{rnd()}@{LARGE[0]}", BODY))
                if code == 250:
                    with self.lock:
                        self.accepted.append((t_mail, time.monotonic()))
                elif code == 550:
                    self.suspended = True
                    break
            s.quit()
        except (smtplib.SMTPException, OSError) as e:
            self.errors.append(repr(e))


def ordinary(d, i, stop, lat, problems, sent):
    try:
        s = smtp_tls(d.smtp_port)
        s.login(f"user{i}", f"user{i}-password")
    except Exception as e:
        problems.append(f"user{i} login: {e!r}")
        return
    n = 0
    while not stop.is_set():
        t0 = time.monotonic()
        rcpts = [f"r{i}.{n}.{k}@partner{(n + k) % 3}.test" for k in range(2 + n % 2)]
        try:
            refused = s.sendmail(f"user{i}@example.com", rcpts,
                                 msg(f"User {i} <user{i}@example.com>", f"report {i} {n}",
                                     rcpts[0], f"Hello from user {i}, number {n}.\r\n"))
        except smtplib.SMTPException as e:
            problems.append(f"user{i} message {n}: {e!r}")
            return
        if refused:
            problems.append(f"user{i} message {n}: refused {refused}")
        lat.append(time.monotonic() - t0)
        sent.append(len(rcpts))
        n += 1
        left = ORDINARY_EVERY - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
    s.quit()


def test_own_sender_bot_over_40_connections(world):
    d, down = world
    stop = threading.Event()
    lat = []
    problems = []
    sent = []
    normal = [threading.Thread(target=ordinary, args=(d, i, stop, lat, problems, sent))
              for i in range(ORDINARY)]
    for t in normal:
        t.start()

    bot = Bot()
    # every bot connection logged in: go (the barrier's action sets the start time)
    ready = threading.Barrier(BOT_CONNECTIONS + 1, timeout=90,
                              action=lambda: setattr(bot, "start", time.monotonic()))
    bots = [threading.Thread(target=bot.run, args=(d, ready)) for _ in range(BOT_CONNECTIONS)]
    for t in bots:
        t.start()
    ready.wait()
    for t in bots:
        t.join(timeout=BOT_MAX_SECONDS + 30)
    bot_seconds = time.monotonic() - bot.start
    time.sleep(ORDINARY_AFTER_BOT)  # ordinary mail goes on meanwhile (not a synchronisation)
    stop.set()
    for t in normal:
        t.join(timeout=30)

    first_second = sum(1 for t_mail, _ in bot.accepted if t_mail < bot.start + 1.0)
    ordered = sorted(lat)
    p50 = statistics.median(ordered) * 1000 if ordered else -1
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else -1
    print(f"\nbot: accepted {len(bot.accepted)} messages ({first_second} in its first second),"
          f" deferred MAILs {bot.deferred}, suspended={bot.suspended},"
          f" ran {bot_seconds:.1f} s")
    print(f"ordinary: {len(lat)} messages, latency p50 {p50:.0f} ms, p99 {p99:.0f} ms")

    assert not bot.errors, bot.errors[:3]
    assert not problems, problems[:5]
    assert bot.suspended
    assert d.query("SELECT user FROM account_state WHERE suspended > 0") == [("bot",)]
    assert 0 < len(bot.accepted) <= 50
    assert first_second <= PER_SECOND
    assert bot.deferred > 0  # the per-second limit did hold it back
    # the alert says why: foreign From: addresses
    alert = wait_for(lambda: d.query("SELECT score, signals, clients FROM account_alert"
                                     " WHERE user = 'bot'"), timeout=5)
    score, signals, clients = alert[0]
    print(f"alert: score {score} signals {signals} clients {clients}")
    assert '"name":"foreign_from"' in signals and score >= 20

    # every ordinary message was accepted (10 accounts x every 200 ms) and is delivered
    assert len(lat) >= ORDINARY * 10
    want = sum(sent)
    got = wait_for(lambda: len([r for r in down.rcpts() if "partner" in r]) >= want or None,
                   timeout=30)
    assert got, (len([r for r in down.rcpts() if "partner" in r]), want)
