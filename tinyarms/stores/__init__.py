"""The state tinyarms keeps on disk under its state directory, one module per store: the result
cache (``cache``), false positives and confirmations (``feedback``, which ranks its
counter-examples with ``similarity``), the deep scans' journal (``journal``) and the watched
repositories (``repos``)."""
