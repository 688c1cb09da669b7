// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title AnchorRegistry
/// @notice Public anchors of the notary's Merkle roots: one root per (stream, tree size),
///         written once and never changed. Anyone may anchor; the event names who did, and
///         verifiers trust only anchors from the notary addresses they know.
contract AnchorRegistry {
    event Anchored(bytes32 indexed streamId, uint64 treeSize, bytes32 root, address indexed notary);

    mapping(bytes32 => mapping(uint64 => bytes32)) private _roots;

    /// @notice Record `root` as the Merkle root of the first `treeSize` events of `streamId`.
    ///         Reverts when that (stream, size) already has a root, or when the root is zero.
    function anchor(bytes32 streamId, uint64 treeSize, bytes32 root) external {
        require(root != bytes32(0), "AnchorRegistry: zero root");
        require(treeSize != 0, "AnchorRegistry: empty tree");
        require(_roots[streamId][treeSize] == bytes32(0), "AnchorRegistry: already anchored");
        _roots[streamId][treeSize] = root;
        emit Anchored(streamId, treeSize, root, msg.sender);
    }

    /// @notice The root anchored for (streamId, treeSize); zero when none is.
    function rootOf(bytes32 streamId, uint64 treeSize) external view returns (bytes32) {
        return _roots[streamId][treeSize];
    }
}
