"""The native local stack run by `cdchub stack up|down|status`."""
