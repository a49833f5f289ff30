"""`streamclf review DIR`: walk through the utterances `listen --keep` kept, hear each, and accept the
model's top intent, give it another label, or discard it; every decision is written to the folder's
metadata.csv at once.

``keymap.py`` maps keys to decisions and labels, ``keys.py`` reads one key at a time (a terminal in
cbreak mode, or characters from a pipe), ``playback.py`` plays a clip, ``view.py`` draws on stderr
with Rich, ``session.py`` is the loop and ``command.py`` the command's arguments and wiring.
"""
