"""Start, check and stop the real services of the local stack without Docker.

Each service runs as a detached process with its log and pid file under
``<runtime_dir>/`` so ``tillflow up`` is idempotent and ``tillflow down`` finds what it started.
"""
