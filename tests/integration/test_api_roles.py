"""The role matrix: user A against user B's objects (404) and every admin resource (403),
through a session and through a token; administrators reach everything."""

import pytest

from api_client import ADMIN_PASSWORD, Api, admin_api, api_moatd  # noqa: F401

ADMIN_ONLY = [
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {"name": "evil", "password": "password1"}),
    ("PATCH", "/api/v1/users/{admin}", {"role": "user"}),
    ("DELETE", "/api/v1/users/{admin}", None),
    ("PATCH", "/api/v1/users/{self}", {"role": "admin"}),
    ("GET", "/api/v1/messages", None),
    ("GET", "/api/v1/messages/1", None),
    ("GET", "/api/v1/stats/messages", None),
    ("GET", "/api/v1/audit", None),
    ("GET", "/metrics", None),
]


@pytest.fixture
def two_users(admin_api):
    d, admin = admin_api
    a = admin.create_user("alice", password="alice-pass-1")
    b = admin.create_user("bob", password="bob-pass-1")
    alice = Api(d.http_port)
    alice.login("alice", "alice-pass-1")
    bob = Api(d.http_port)
    bob.login("bob", "bob-pass-1")
    alice_tok = Api(d.http_port, token=alice.create_token("alice-t")["token"])
    btok = bob.create_token("bob-t")
    admin_id = admin.get("/api/v1/account").json["id"]
    return dict(d=d, admin=admin, alice=alice, alice_tok=alice_tok, bob=bob, a=a, b=b,
                btok=btok, admin_id=admin_id)


@pytest.mark.parametrize("via", ["session", "token"])
def test_user_refused_admin_resources(two_users, via):
    t = two_users
    client = t["alice"] if via == "session" else t["alice_tok"]
    for method, path, body in ADMIN_ONLY:
        path = path.replace("{admin}", str(t["admin_id"])).replace("{self}", str(t["a"]["id"]))
        r = client.request(method, path, body=body)
        r.expect(403, "forbidden")
    # Nothing changed.
    assert t["d"].query("SELECT role FROM dir_user WHERE name='alice'")[0][0] == "user"
    assert t["d"].query("SELECT count(*) FROM dir_user WHERE name='evil'")[0][0] == 0


@pytest.mark.parametrize("via", ["session", "token"])
def test_user_cannot_see_or_touch_other_users_objects(two_users, via):
    t = two_users
    client = t["alice"] if via == "session" else t["alice_tok"]
    bid, btid = t["b"]["id"], t["btok"]["id"]
    client.get(f"/api/v1/users/{bid}").expect(404, "not_found")
    client.get(f"/api/v1/users/{t['admin_id']}").expect(404, "not_found")
    client.get(f"/api/v1/tokens/{btid}").expect(404, "not_found")
    client.delete(f"/api/v1/tokens/{btid}").expect(404, "not_found")
    items = client.get("/api/v1/tokens").expect(200).json["items"]
    assert {i["user"] for i in items} == {"alice"}
    assert client.get(f"/api/v1/tokens?user_id={bid}").expect(200).json["items"] == []
    # Bob's token still works.
    Api(t["d"].http_port, token=t["btok"]["token"]).get("/api/v1/account").expect(200)
    # A user-scoped request cannot mint an admin token.
    client.post("/api/v1/tokens", {"name": "escalate", "scope": "admin"}).expect(
        403, "forbidden", "scope")


def test_user_own_objects_allowed(two_users):
    t = two_users
    alice = t["alice"]
    me = alice.get(f"/api/v1/users/{t['a']['id']}").expect(200).json
    assert me["name"] == "alice"
    acc = alice.get("/api/v1/account").expect(200).json
    assert acc["id"] == me["id"] and acc["role"] == "user"
    tid = alice.get("/api/v1/tokens").json["items"][0]["id"]
    alice.get(f"/api/v1/tokens/{tid}").expect(200)
    alice.delete(f"/api/v1/tokens/{tid}").expect(204)
    t["alice_tok"].get("/api/v1/account").expect(401)


def test_admin_reaches_everything(two_users):
    t = two_users
    admin = t["admin"]
    admin.get(f"/api/v1/users/{t['b']['id']}").expect(200)
    admin.get(f"/api/v1/tokens/{t['btok']['id']}").expect(200)
    names = {i["user"] for i in admin.get("/api/v1/tokens").json["items"]}
    assert names == {"alice", "bob"}
    admin.delete(f"/api/v1/tokens/{t['btok']['id']}").expect(204)
    for method, path, body in ADMIN_ONLY:
        if method != "GET":
            continue
        r = admin.get(path)
        assert r.status in (200, 404), r  # /messages/1 may not exist


def test_last_admin_protected(admin_api):
    d, admin = admin_api
    me = admin.get("/api/v1/account").json["id"]
    admin.patch(f"/api/v1/users/{me}", {"role": "user"}).expect(409, "last_admin")
    admin.patch(f"/api/v1/users/{me}", {"disabled": True}).expect(409, "last_admin")
    admin.delete(f"/api/v1/users/{me}").expect(409, "cannot_delete_self")
    second = admin.create_user("root2", password="root2-pass", role="admin")
    admin.patch(f"/api/v1/users/{me}", {"role": "user"}).expect(200)
    # Now admin is a user: its own session lost admin rights.
    admin.get("/api/v1/users").expect(403)
    r2 = Api(d.http_port)
    r2.login("root2", "root2-pass")
    r2.delete(f"/api/v1/users/{second['id']}").expect(409, "cannot_delete_self")
    r2.patch(f"/api/v1/users/{second['id']}", {"role": "user"}).expect(409, "last_admin")
