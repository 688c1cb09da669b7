-- The MySQL read model of OpenMCP-Chain (projection "mysql"), built from the log by
-- omc_proj_mysql. Every row carries its tenant, which leads every key: a query of one tenant
-- never reads another's rows. Collation utf8mb4_nopad_bin: ids and tenants compare exactly
-- ('acme' <> 'ACME' <> 'acme '). Times are UTC, DATETIME(6). No column is filled from the
-- clock or an auto-increment, so a replay from offset 0 writes the same bytes (only
-- projection_offsets.updated_at is wall time).

-- Where the projection stands: the next offset to apply per partition, written in the same
-- transaction as the rows.
CREATE TABLE IF NOT EXISTS projection_offsets (
    projection VARCHAR(64) NOT NULL,
    topic VARCHAR(249) NOT NULL,
    `partition` INT NOT NULL,
    next_offset BIGINT NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (projection, topic, `partition`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- One row per task: created `accepted` by its SubmitTask command, then folded from its events.
CREATE TABLE IF NOT EXISTS tasks (
    tenant VARCHAR(128) NOT NULL,
    task_id VARCHAR(191) NOT NULL,
    agent_id VARCHAR(191) NULL,
    status VARCHAR(32) NOT NULL,
    instruction MEDIUMTEXT NULL,
    chain_id BIGINT NULL,
    submitted_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    last_sequence BIGINT NOT NULL,
    last_event_type VARCHAR(191) NULL,
    last_hash VARCHAR(64) NULL,
    pending_action_id VARCHAR(191) NULL,
    result MEDIUMTEXT NULL,
    failure MEDIUMTEXT NULL,
    tx_hashes MEDIUMTEXT NOT NULL,
    PRIMARY KEY (tenant, task_id),
    KEY tasks_newest (tenant, submitted_at, task_id),
    KEY tasks_by_status (tenant, status, submitted_at, task_id),
    KEY tasks_by_agent (tenant, agent_id, submitted_at, task_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Every event of every task's chain, with its envelope and where it was read: the audit trail.
CREATE TABLE IF NOT EXISTS task_events (
    tenant VARCHAR(128) NOT NULL,
    task_id VARCHAR(191) NOT NULL,
    sequence BIGINT NOT NULL,
    event_id VARCHAR(191) NOT NULL,
    event_type VARCHAR(191) NOT NULL,
    occurred_at DATETIME(6) NOT NULL,
    actor VARCHAR(255) NOT NULL,
    correlation_id VARCHAR(255) NOT NULL,
    causation_id VARCHAR(255) NULL,
    prev_hash VARCHAR(64) NOT NULL,
    hash VARCHAR(64) NOT NULL,
    topic VARCHAR(249) NOT NULL,
    `partition` INT NOT NULL,
    `offset` BIGINT NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    PRIMARY KEY (tenant, task_id, sequence, event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- One row per agent: `registering` from its RegisterAgent command, `active` once registered,
-- `rejected` when the runtime refused the command.
CREATE TABLE IF NOT EXISTS agents (
    tenant VARCHAR(128) NOT NULL,
    agent_id VARCHAR(191) NOT NULL,
    name TEXT NULL,
    description TEXT NULL,
    signer_address VARCHAR(42) NULL,
    model VARCHAR(255) NULL,
    parameters_json TEXT NULL,
    status VARCHAR(32) NOT NULL,
    policy_version BIGINT NULL,
    requested_policy MEDIUMTEXT NULL,
    registered_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    last_sequence BIGINT NOT NULL,
    PRIMARY KEY (tenant, agent_id),
    KEY agents_newest (tenant, registered_at, agent_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Each agent's current policy (omc.agent.Policy as JSON) ...
CREATE TABLE IF NOT EXISTS policies (
    tenant VARCHAR(128) NOT NULL,
    agent_id VARCHAR(191) NOT NULL,
    version BIGINT NOT NULL,
    policy MEDIUMTEXT NOT NULL,
    set_at DATETIME(6) NOT NULL,
    event_id VARCHAR(191) NOT NULL,
    last_sequence BIGINT NOT NULL,
    PRIMARY KEY (tenant, agent_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- ... and every version it ever had.
CREATE TABLE IF NOT EXISTS policy_history (
    tenant VARCHAR(128) NOT NULL,
    agent_id VARCHAR(191) NOT NULL,
    version BIGINT NOT NULL,
    policy MEDIUMTEXT NOT NULL,
    set_at DATETIME(6) NOT NULL,
    event_id VARCHAR(191) NOT NULL,
    PRIMARY KEY (tenant, agent_id, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Budget reservations per action: reserved, released, or exceeded (refused).
CREATE TABLE IF NOT EXISTS budgets (
    tenant VARCHAR(128) NOT NULL,
    action_id VARCHAR(191) NOT NULL,
    agent_id VARCHAR(191) NOT NULL,
    task_id VARCHAR(191) NOT NULL,
    status VARCHAR(32) NOT NULL,
    amount_wei VARCHAR(80) NOT NULL,
    window_start DATETIME(6) NULL,
    window_end DATETIME(6) NULL,
    reserved_total_wei VARCHAR(80) NULL,
    budget_wei VARCHAR(80) NULL,
    policy_version BIGINT NULL,
    release_reason VARCHAR(64) NULL,
    reserved_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    last_sequence BIGINT NOT NULL,
    PRIMARY KEY (tenant, action_id),
    KEY budgets_by_agent (tenant, agent_id, status, window_end)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- One row per transaction request, folded from its tx events.
CREATE TABLE IF NOT EXISTS transactions (
    tenant VARCHAR(128) NOT NULL,
    request_id VARCHAR(191) NOT NULL,
    task_id VARCHAR(191) NULL,
    action_id VARCHAR(191) NULL,
    purpose VARCHAR(32) NULL,
    chain_id BIGINT NOT NULL,
    sender VARCHAR(42) NOT NULL,
    `to` VARCHAR(42) NULL,
    value_wei VARCHAR(80) NULL,
    nonce BIGINT NULL,
    tx_hash VARCHAR(66) NULL,
    status VARCHAR(32) NOT NULL,
    block_number BIGINT NULL,
    block_hash VARCHAR(66) NULL,
    confirmations INT NULL,
    gas_used BIGINT NULL,
    effective_gas_price_wei VARCHAR(80) NULL,
    failure_code VARCHAR(64) NULL,
    failure_detail TEXT NULL,
    requested_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    last_sequence BIGINT NOT NULL,
    PRIMARY KEY (tenant, request_id),
    KEY transactions_newest (tenant, requested_at, request_id),
    KEY transactions_by_task (tenant, task_id, requested_at, request_id),
    KEY transactions_by_status (tenant, status, requested_at, request_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Every hash a request was signed under (replacements included) and what replaced it.
CREATE TABLE IF NOT EXISTS tx_hashes (
    tenant VARCHAR(128) NOT NULL,
    tx_hash VARCHAR(66) NOT NULL,
    request_id VARCHAR(191) NOT NULL,
    nonce BIGINT NULL,
    signed_sequence BIGINT NULL,
    replaced_by VARCHAR(66) NULL,
    PRIMARY KEY (tenant, tx_hash),
    KEY tx_hashes_by_request (tenant, request_id, signed_sequence)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Receipts (TxIncluded); `canonical` = 0 once a reorg took the block away.
CREATE TABLE IF NOT EXISTS receipts (
    tenant VARCHAR(128) NOT NULL,
    tx_hash VARCHAR(66) NOT NULL,
    request_id VARCHAR(191) NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash VARCHAR(66) NOT NULL,
    transaction_index INT NOT NULL,
    gas_used BIGINT NOT NULL,
    effective_gas_price_wei VARCHAR(80) NOT NULL,
    status_ok TINYINT(1) NOT NULL,
    contract_address VARCHAR(42) NULL,
    confirmations INT NULL,
    canonical TINYINT(1) NOT NULL,
    included_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    last_sequence BIGINT NOT NULL,
    PRIMARY KEY (tenant, tx_hash),
    KEY receipts_by_request (tenant, request_id, canonical)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Signed checkpoints of the event streams and their anchors on chain (proof events).
CREATE TABLE IF NOT EXISTS anchors (
    tenant VARCHAR(128) NOT NULL,
    stream_id VARCHAR(255) NOT NULL,
    tree_size BIGINT NOT NULL,
    root VARCHAR(66) NOT NULL,
    status VARCHAR(32) NOT NULL,
    first_offset BIGINT NULL,
    last_offset BIGINT NULL,
    previous_tree_size BIGINT NULL,
    previous_root VARCHAR(66) NULL,
    digest VARCHAR(66) NULL,
    signer VARCHAR(42) NULL,
    signature TEXT NULL,
    chain_id BIGINT NULL,
    request_id VARCHAR(191) NULL,
    anchor_address VARCHAR(42) NULL,
    tx_hash VARCHAR(66) NULL,
    block_number BIGINT NULL,
    block_hash VARCHAR(66) NULL,
    signed_at DATETIME(6) NULL,
    submitted_at DATETIME(6) NULL,
    confirmed_at DATETIME(6) NULL,
    updated_at DATETIME(6) NOT NULL,
    last_sequence BIGINT NOT NULL,
    PRIMARY KEY (tenant, stream_id, tree_size),
    KEY anchors_by_tx (tenant, tx_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
