-- API keys of the gateway (services/omc_gateway/apikeys.py). A key is omc_<key_id>_<secret>;
-- only SHA-256 of the secret is kept. A revoked key keeps its row (revoked_at set), so the
-- actor "key:<key_id>" found in the log can always be traced to its tenant.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id        CHAR(12)     NOT NULL,
    secret_sha256 CHAR(64)     NOT NULL,
    tenant        VARCHAR(64)  NOT NULL,
    scopes        VARCHAR(255) NOT NULL,
    name          VARCHAR(200) NULL,
    created_at    TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    revoked_at    TIMESTAMP(6) NULL DEFAULT NULL,
    PRIMARY KEY (key_id),
    KEY api_keys_tenant (tenant, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
