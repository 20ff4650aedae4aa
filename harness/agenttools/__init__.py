"""The execution agent's tools: read, write and search files and run commands, confined to the workdir.

Executors (``openai``, later the planner) expose these to a model; every
protection of SPEC section 10 lives here, once:

* Paths are relative to the workdir: absolute paths, ``~``, ``..``, empty
  paths and NUL bytes are refused before anything is opened. Reads open the
  file, then check what was opened (its real path through ``/proc/self/fd``
  must lie inside the workdir, compared by path components). Writes walk
  every folder from the workdir down with ``O_NOFOLLOW`` and never go through
  a symlink, not even one that stays inside: the refusal names the link's
  target, which the model can write instead.
* Protected paths (:data:`PROTECTED_PATTERNS` and the paths a caller passes)
  are refused by name, case-insensitively, whether they exist or not.
* A write never opens its target: the new text goes to a fresh file next to
  it (``O_CREAT | O_EXCL | O_NOFOLLOW``) that is renamed over it, so a FIFO,
  a device or a file swapped in at the last moment is never written into.
  Non-regular and hard-linked targets are refused.
* ``run_command`` runs in its own session with ``/dev/null`` as stdin, an
  environment built from an allowlist (no API keys, tokens or other secrets),
  a timeout and an output cap, through :func:`planrun.process.run_process`
  (no process outlives the call); with bubblewrap, inside a sandbox where the
  file system is read-only except the workdir, with no network and private
  ``/tmp``, ``/dev`` and ``/proc``.

Results are strings for the model; a refusal or failure is a :class:`ToolError`
whose one-line message goes back to the model.

What is where (the public names are all re-exported here):

* :mod:`~planrun.agenttools.messages`: :class:`ToolError` and how text from the
  workdir is shown in its messages;
* :mod:`~planrun.agenttools.paths`: :class:`Protection`, :data:`PROTECTED_PATTERNS`,
  :data:`NOT_SECRET`, the path checks and the opening confined to the workdir;
* :mod:`~planrun.agenttools.sandbox`: the environment of commands (allowlist and
  deny list), bubblewrap (:func:`sandbox_name`, its probe and argv);
* :mod:`~planrun.agenttools.search`: the ``search`` tool;
* :mod:`~planrun.agenttools.schemas`: :data:`TOOL_SCHEMAS`, :func:`schemas` and
  the check of a call's arguments;
* :mod:`~planrun.agenttools.toolbox`: :class:`Toolbox`, the other tools and the dispatch.
"""

from planrun.agenttools.messages import ToolError
from planrun.agenttools.paths import NOT_SECRET, PROTECTED_PATTERNS, Protection
from planrun.agenttools.sandbox import sandbox_name
from planrun.agenttools.schemas import TOOL_SCHEMAS, schemas
from planrun.agenttools.toolbox import Toolbox

__all__ = [
    "NOT_SECRET",
    "PROTECTED_PATTERNS",
    "TOOL_SCHEMAS",
    "Protection",
    "ToolError",
    "Toolbox",
    "sandbox_name",
    "schemas",
]
