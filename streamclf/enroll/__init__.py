"""`streamclf enroll`: record the user saying each command, into an ``audiofolder`` to train on.

``prompts`` reads the vocabulary, ``listener`` is the microphone as `listen` hears it (same
source, resampler and segmenter), ``keys`` reads single keys, ``view`` draws the prompt and the
level meter on stderr, ``folder`` writes the WAV files and metadata.csv, ``session`` runs the takes,
``command`` checks everything and wires it together.
"""
