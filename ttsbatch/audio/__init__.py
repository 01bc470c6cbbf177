"""The pure audio core: WAV headers, stitching, the timeline, subtitles and words.

Both executors (the workers' finalize and the local in-order assembly) and
the imitation provider build on it, so it belongs to neither side. Pure
functions over data, counted in integer samples: no I/O, no clients, no
settings; what they write goes to writers the caller passes in.
"""
