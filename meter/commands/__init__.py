"""The commands of meter's library areas: ``meter pricing``/``price``, ``report``/``reprice``/``ledger``,
``reconcile`` and ``dashboards``.

Front ends only: each module reads its arguments, calls its area's library and prints. The
libraries know nothing of terminals, and no command module imports another command's: what
they share is ``meter.textout`` (text for people, day arguments, CSV cells). ``meter.cli`` puts
them in one argparse tree, beside the apps' own commands (``meter.apps``).
"""
