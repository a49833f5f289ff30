"""Event sinks: each reads its own bus subscription and never blocks the pipeline.

``jsonl`` writes JSON lines (stdout or a file), ``socket`` serves unix/tcp subscribers,
``pretty`` prints one line per utterance, ``console`` is the Rich live view on stderr.
"""
