"""Errors that classhub reports to a person as one clear line plus what to do."""


class ClasshubError(Exception):
    """A failure the CLI prints without a traceback."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message


class ConfigError(ClasshubError):
    """A site or course file is invalid: each problem names the file and the key path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "invalid configuration:\n" + "\n".join(f"  {p}" for p in problems),
            "fix the file(s) above; nothing was started",
        )
