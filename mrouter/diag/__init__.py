"""Diagnosis and teaching: why an (S,G) is or is not forwarded (:mod:`~mrouter.diag.explain`),
the daemon's event schema and log (:mod:`~mrouter.diag.events`) and the timeline drawn from it
(:mod:`~mrouter.diag.timeline`)."""
