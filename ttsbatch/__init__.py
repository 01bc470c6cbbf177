"""ttsbatch: turn large bodies of text into speech with a word-level timeline."""

__version__ = "0.1.0"
