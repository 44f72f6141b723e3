"""一张图: the command map, the first page a district duty officer opens."""
