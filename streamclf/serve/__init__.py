"""`streamclf serve`: a Wyoming server for many audio streams, all classified by one shared model.

``address`` parses where it listens, ``pcm`` turns audio chunks into samples, ``stream`` is one
connection's segmenter and counters, ``handler`` speaks the Wyoming protocol to one client,
``hub`` routes the shared worker's results back to their streams, ``service`` is the life cycle.
"""
