"""Kept utterances: `listen --keep DIR` writes each utterance's audio and ranked intents to an
``audiofolder`` (16 kHz mono WAV files beside one ``metadata.csv``) that `streamclf review` labels
and ``datasets.load_dataset("audiofolder", data_dir=DIR)`` and the trainer read.

``rows.py`` is what one row holds, ``folder.py`` is the folder (its lock, its size bound, adding,
relabelling and discarding clips; metadata.csv and the clips read and written atomically by
``streamclf.audiofolder``, as `enroll` writes its folder), ``keeper.py`` the daemon's writer thread.
"""
