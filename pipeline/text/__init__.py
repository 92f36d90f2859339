"""Pure text-and-time logic: no files, no database, no models, no network.

Functions here take strings (and numbers of seconds) and return strings, lists and plain values, so every
layer above may use them: today :mod:`pipeline.text.sentences`, the one sentence splitter (chat replies
spoken sentence by sentence, and text-to-speech chunks).
"""
