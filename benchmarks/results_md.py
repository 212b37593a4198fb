"""benchmarks/RESULTS.md, section by section: each benchmark script owns one "## " section."""
from __future__ import annotations

import os
import platform

RESULTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
NOTES_HEADING = "### Notes"


def write_results_section(text: str, heading: str, path: str = RESULTS_PATH) -> None:
    """Replace (or append) the section under ``heading``, leaving the others alone.

    A "### Notes" subsection written by hand (the reading of the numbers) is kept."""
    content = open(path).read() if os.path.exists(path) else "# nnhp benchmark results\n"
    start = content.find(heading)
    section = heading + "\n\n" + text.strip() + "\n"
    if start < 0:
        content = content.rstrip("\n") + "\n\n" + section
    else:
        end = content.find("\n## ", start + len(heading))
        old = content[start:end] if end >= 0 else content[start:]
        notes = old.find(NOTES_HEADING)
        if notes >= 0:
            section += "\n" + old[notes:].strip() + "\n"
        content = content[:start] + section + (content[end:] if end >= 0 else "")
    with open(path, "w") as handle:
        handle.write(content)


def machine_description() -> str:
    """CPU model (from /proc/cpuinfo), cores and memory: the machine a section's figures came from."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            fields = dict(line.split(":", 1) for line in handle.read().split("\n\n")[0].splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        model = fields.get("model name", model)
        if "cpu family" in fields:      # a virtual machine may name only the vendor ("AMD EPYC")
            model += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
        memory = f", {kib / 2 ** 20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{model}, {os.cpu_count()} cores{memory}"
