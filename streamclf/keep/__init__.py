"""Kept utterances: `listen --keep DIR` writes each utterance's audio and ranked intents to an
``audiofolder`` (16 kHz mono WAV files beside one ``metadata.csv``) that `streamclf review` labels
and ``datasets.load_dataset("audiofolder", data_dir=DIR)`` and the trainer read.

``table.py`` reads and atomically rewrites metadata.csv, ``rows.py`` is what one row holds,
``wav.py`` encodes and decodes the clips, ``folder.py`` is the folder (its lock, its size bound,
adding, relabelling and discarding clips), ``keeper.py`` the daemon's writer thread.
"""
