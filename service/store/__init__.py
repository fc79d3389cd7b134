"""Decision stores: one contract, two implementations (embedded SQLite, Redis)."""
