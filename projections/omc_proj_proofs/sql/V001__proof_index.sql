-- The proof index: every stream's leaves and complete subtrees, and its signed checkpoints,
-- so that inclusion and consistency proofs are served with O(log n) reads.

CREATE TABLE IF NOT EXISTS proof_leaves (
    stream_id VARCHAR(255) NOT NULL,
    leaf_index BIGINT NOT NULL,
    log_offset BIGINT NOT NULL,
    event_id CHAR(36) NULL,
    tenant VARCHAR(64) NULL,
    event_hash CHAR(64) NOT NULL,
    PRIMARY KEY (stream_id, leaf_index),
    KEY proof_leaves_by_event (event_id),
    KEY proof_leaves_by_tenant (stream_id, tenant)
) ENGINE=InnoDB;

-- node (height, index): the RFC 6962 hash of leaves [index * 2^height, (index + 1) * 2^height)
CREATE TABLE IF NOT EXISTS proof_nodes (
    stream_id VARCHAR(255) NOT NULL,
    height TINYINT NOT NULL,
    node_index BIGINT NOT NULL,
    node_hash BINARY(32) NOT NULL,
    PRIMARY KEY (stream_id, height, node_index)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS proof_checkpoints (
    stream_id VARCHAR(255) NOT NULL,
    tree_size BIGINT NOT NULL,
    root CHAR(66) NOT NULL,
    first_offset BIGINT NOT NULL,
    last_offset BIGINT NOT NULL,
    previous_tree_size BIGINT NOT NULL,
    digest CHAR(66) NOT NULL,
    signer CHAR(42) NOT NULL,
    signature VARCHAR(140) NOT NULL,
    event_id CHAR(36) NOT NULL,
    anchor_chain_id BIGINT NULL,
    anchor_registry CHAR(42) NULL,
    anchor_tx_hash CHAR(66) NULL,
    anchor_block_number BIGINT NULL,
    PRIMARY KEY (stream_id, tree_size)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS proof_offsets (
    topic VARCHAR(249) NOT NULL,
    kafka_partition INT NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, kafka_partition)
) ENGINE=InnoDB;
