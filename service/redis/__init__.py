"""Redis plumbing of the service: key names, the client pool, streams and Lua scripts.

Importing this package is cheap; nothing connects until a function is called.
"""

from __future__ import annotations
