"""Sinks of the dataflow: each a tiny DynamicSink whose partition builds its client in build()."""
