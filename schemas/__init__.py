"""The contracts of tillflow, written once: events, topics, Redis keys and values, settings.

Start reading here: every topic, key and setting that the rest of the code uses is
defined in this package, with the values stored in Redis (``serving``) and the silver
rules read off the event contract (``silver_rules``).
"""
