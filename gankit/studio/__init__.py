"""``gankit studio``: a local web page to explore trained generators.

:mod:`gankit.studio.core` holds what the page shows, as plain functions of a run and a few
numbers (the same ones ``gankit sample``, ``interpolate`` and ``translate`` use);
:mod:`gankit.studio.app` only maps HTTP requests onto them; :mod:`gankit.studio.cli` adds
the command. The page itself (``static/``) is plain HTML and JavaScript, served from here:
nothing is fetched from the internet.
"""
