"""A Django site whose admin shows the ledger's attempts and starts renders (child process)."""
