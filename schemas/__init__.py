"""The contracts of tillflow, written once: events, topics, Redis keys, settings.

Start reading here: every topic, key and setting that the rest of the code uses is
defined in this package.
"""
