"""The local development kit: the `laneway dev` stack supervisor, the demo, the bundled binaries.

Nothing platform-specific is loaded at import time, so `laneway --help` and `laneway demo`
start on any POSIX system.
"""
