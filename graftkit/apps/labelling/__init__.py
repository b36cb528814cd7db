"""Active learning over a run folder: pick the next rows to label (``select``), merge the answers (``answers``).

``pool`` reads the candidates and drops rows already labelled or held out for testing; ``select`` ranks them by
uncertainty, diversity or both (small-text's query strategies), or re-checks labelled rows with cleanlab;
``answers`` writes the rows to answer and merges the answered ones into the labelled file, refusing bad rows by
file and line. ``graftkit label`` (graftkit/cli/label.py) is the command line over them.
"""
