-- 022: DKIM signing keys (docs/sender-auth.md, "Signing").
--
-- One row per (domain, selector).  private_pem is the private key in PKCS#8
-- PEM: a secret, read only by the snapshot loader and `moatd dkim sign`,
-- never returned by the API nor logged.  public_b64 is the p= value of the
-- DNS record (base64 of the SubjectPublicKeyInfo for RSA, of the raw 32-octet
-- key for Ed25519).  bits: the RSA modulus size, 256 for Ed25519.
--
-- Every change bumps the policy generation (triggers), so the running daemon
-- loads the new keys into its next snapshot.  IF NOT EXISTS: re-runnable.
CREATE TABLE IF NOT EXISTS dkim_key (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    domain      TEXT NOT NULL,
    selector    TEXT NOT NULL,
    algorithm   TEXT NOT NULL CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
    bits        INTEGER NOT NULL,
    private_pem TEXT NOT NULL,
    public_b64  TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_ms  INTEGER NOT NULL,
    UNIQUE (domain, selector)
);

CREATE TRIGGER IF NOT EXISTS dkim_key_ins AFTER INSERT ON dkim_key
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS dkim_key_upd AFTER UPDATE ON dkim_key
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS dkim_key_del AFTER DELETE ON dkim_key
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
