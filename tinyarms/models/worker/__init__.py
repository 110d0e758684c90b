"""Model worker processes: llama.cpp runs in a process of its own, one per loaded model.

Native inference code can die (SIGILL on a CPU that lacks an instruction the build assumed,
SIGSEGV on a damaged file), hang, or be chosen by the OOM killer: the process holding the weights
is the biggest one. Like Ollama's runners, a worker takes that with it and costs one question;
the daemon, the CLI and the test process never import ``llama_cpp``.

- ``wire``: the framing both sides share (one JSON object per line);
- ``client``: the parent's side: the pool that starts, asks, restarts and retires workers;
- ``process``: one worker as the parent sees it (its process, one question at a time);
- ``crashes``: what a worker died of and the fix for it, and the doctor's mark that mends;
- ``engine`` and ``__main__``: the worker's side (``python -m tinyarms.models.worker``), the only
  code that imports ``llama_cpp``.
"""
