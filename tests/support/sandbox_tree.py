"""The one shell script the end-to-end tests use to fingerprint a sandbox's agent state from
inside its container: a line per path under the agent's state dirs (type, mode, SHA-256)."""

from __future__ import annotations


def state_tree_script(agent_dir: str, state_dirs: list[str] | tuple[str, ...]) -> str:
    dirs = " ".join(state_dirs)
    return (
        f"cd {agent_dir} && for d in {dirs}; do [ -e \"$d\" ] && find \"$d\"; done | sort | "
        "while IFS= read -r p; do "
        "if [ -L \"$p\" ]; then echo \"L $(stat -c %a \"$p\") $p -> $(readlink \"$p\")\"; "
        "elif [ -d \"$p\" ]; then echo \"D $(stat -c %a \"$p\") $p\"; "
        "else echo \"F $(stat -c %a \"$p\") $(sha256sum < \"$p\" | cut -d' ' -f1) $p\"; fi; done"
    )
