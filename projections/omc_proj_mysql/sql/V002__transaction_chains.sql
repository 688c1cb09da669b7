-- A transaction row is written by two hash chains of its account's key: the tx manager's
-- ("account": TxSigned, TxBroadcast, TxReplaced, TxFailed) and the chain watcher's
-- ("receipts": TxIncluded, TxConfirmed, TxReorged, TxFailed REVERTED). Each chain's position
-- is kept on its own, and last_sequence (the upsert guard) is their sum, which grows with
-- every event of either chain.
ALTER TABLE transactions
    ADD COLUMN account_sequence BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN receipts_sequence BIGINT NOT NULL DEFAULT 0;

UPDATE transactions SET account_sequence = last_sequence;
