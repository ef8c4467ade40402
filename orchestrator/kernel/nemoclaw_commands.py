"""The real NemoClaw CLI's command grammar, the one list of it in the project
(docs/reference/nemoclaw-cli.md, from the December 2026 reference, §6).

`nemoclaw` is sandbox-first: `nemoclaw <name> <action> [args]`, a bare `nemoclaw <name>`
connects; a first token that is a global command is that command. We implement a few commands
and hand every other one to the real CLI (cli/dispatch.py); a user workflow must not take a
global command's name (workflow/validate.py), so it can never shadow one.
"""

GLOBAL_COMMANDS = frozenset({
    "help", "version", "completion", "onboard", "list", "status", "resources", "agents", "profiles", "host",
    "debug", "credentials", "inference", "tunnel", "use", "launch", "gc", "uninstall", "update", "config",
    "upgrade-sandboxes", "backup-all",
})
"""The first tokens that are NemoClaw's global commands (`agents list`, `tunnel start`, ... by their first word)."""

SANDBOX_ACTIONS = frozenset({
    "connect", "status", "logs", "destroy", "rebuild", "recover", "start", "stop", "exec", "download", "upload",
    "doctor", "dashboard-url", "gateway", "channels", "policy", "hosts", "inference", "mcp", "sessions", "agents",
    "share", "skill",
})
"""The actions of `nemoclaw <name> <action>`."""

REBUILD_FLAGS_WITHOUT_MEANING_HERE = frozenset({"--yes", "-y", "--force", "--verbose"})
"""`nemoclaw <name> rebuild [--yes|--force] [--verbose]`: our rebuild asks no question and always
says what it does, so these change nothing in ours."""
