"""Nothing lost: kill -9 of moatd while it delivers N messages; after a restart every
acknowledged recipient arrives at least once (leased rows are taken back at start)."""

import time

from conftest import message
from peers_delivery import Downstream, delivery_conf, send, wait_for

N = 40


def test_kill9_during_delivery(moatd_factory):
    ds = Downstream().start()
    ds.data_delay = 0.05  # slow enough that the kill lands mid-way
    try:
        conf = delivery_conf(ds.addr, delivery_concurrency_per_destination="4")
        d = moatd_factory(**conf)
        want = set()
        for i in range(N):
            rcpts = [f"a{i}@example.org", f"b{i}@example.net"]
            send(d, "alice@example.net", rcpts, message(subject=f"m{i}"))
            want.update(rcpts)
        # Kill while some, but not all, are delivered.
        wait_for(lambda: len(ds.deliveries()) >= N // 2, timeout=20)
        d.kill9()
        before = len(ds.deliveries())
        assert before < 2 * N, "everything was delivered before the kill; test proves nothing"
        d2 = moatd_factory(data_dir=d.data_dir, **conf)
        ds.data_delay = 0
        assert wait_for(lambda: want <= set(ds.rcpts()), timeout=30), \
            f"missing after restart: {sorted(want - set(ds.rcpts()))}"
        assert wait_for(lambda: d2.query("SELECT count(*) FROM queue_message") == [(0,)]
                        and d2.queue_files() == [], timeout=10)
        dups = len(ds.deliveries()) - len(want)
        print(f"delivered before kill={before} duplicates={dups}")
    finally:
        ds.stop()


def test_kill9_before_delivery_then_restart(moatd_factory):
    """Rows leased by the runner at the moment of the crash are due again at start."""
    ds = Downstream()
    conf = delivery_conf(ds.addr)
    d = moatd_factory(**conf)
    qids = [send(d, "alice@example.net", [f"r{i}@example.org"]) for i in range(5)]
    # The downstream is down: attempts fail and rows get deferred or stay leased.
    time.sleep(0.5)
    d.kill9()
    ds.start()
    try:
        d2 = moatd_factory(data_dir=d.data_dir, **conf)
        d2.query("SELECT 1")
        # retry_max is 2s: everything arrives within a few seconds.
        ds.wait_for(5, timeout=20)
        assert sorted(ds.rcpts()) == sorted(f"r{i}@example.org" for i in range(5))
        assert len(qids) == 5
    finally:
        ds.stop()
