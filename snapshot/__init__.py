"""The snapshotter: consistent point-in-time copies of a board in SQLite."""
