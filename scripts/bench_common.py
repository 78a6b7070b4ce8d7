"""Helpers shared by the llama.cpp benchmark scripts (standard library only)."""
import os


def default_model():
    """The embedded SmolLM2 GGUF in psyche's model cache ($PSYCHE_HOME/models or
    ~/.cache/psyche/models)."""
    home = os.environ.get("PSYCHE_HOME")
    base = os.path.join(home, "models") if home else os.path.expanduser("~/.cache/psyche/models")
    return os.path.join(base, "SmolLM2-135M-Instruct.Q4_1.gguf")


def load_avg():
    """The 1, 5 and 15 minute load averages, printed beside every timing."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"
