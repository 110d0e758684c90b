"""The state tinyarms keeps on disk under its state directory, one module per store: the result
cache (``cache``), false positives and confirmations (``feedback``), the deep scans' journal
(``journal``) and the watched repositories (``repos``)."""
