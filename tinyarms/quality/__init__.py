"""How good tinyarms is and what to run it with, measured rather than assumed: ``tinyarms eval``
on a labelled corpus (``evaluation``, ``labels``, ``corpus``, ``scoring``, ``calibration``,
``results``, ``feedback_effect``), ``tinyarms bench`` on this machine (``bench``,
its source file in ``benchdata/``) and ``tinyarms models recommend`` from those figures
(``recommend``). Off the hook's path: only the commands that measure import them."""
