"""Storage adapters: MySQL (connections, versioned migrations) and Redis."""
