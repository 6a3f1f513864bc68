"""Settings read from environment variables, all checked at once (pydantic-settings).

Why: a value such as `nan`, `inf`, `1e400` or `99999` for a port used to crash a command with a
traceback, or worse be accepted and only fail on the first e-mail hours later. Each group of
settings is an `EnvironmentSettings` model whose fields are the variables (their exact names
are the fields' aliases) and whose types come from `application.setting_values`.

Guarantees of `from_environment`:
- it reads only the mapping it is given (the process environment when none), never `.env` files;
- an unset or blank variable takes the field's default, except for numbers and flags, where a
  blank value is an error (someone meant to set it);
- a bad value is one `SettingsError`, one line: `NAME must be <what is expected>, got <value>`
  (secrets are shown by their length only). Commands turn it into exit status 2.
"""

import os
from collections.abc import Mapping
from typing import Any, Self

from pydantic import ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

SETTINGS_ERROR_CODE = "invalid_setting"
MAX_SHOWN_VALUE_CHARS = 80  # a bad value is quoted in the message up to this length


class SettingsError(ValueError):
    """A setting that cannot be used. `variable`, `value` (as it may be shown) and `expected` are
    set when one variable is to blame; `code` is stable."""

    code = SETTINGS_ERROR_CODE

    def __init__(self, message: str, *, variable: str | None = None, value: str | None = None,
                 expected: str | None = None) -> None:
        super().__init__(message)
        self.variable, self.value, self.expected = variable, value, expected

    @classmethod
    def invalid(cls, variable: str, shown: str, expected: str, *, verb: str = "be ") -> "SettingsError":
        """`NAME must <verb><expected>, got <shown>`; `shown` is the value as the message may show
        it (already quoted, or a description such as a secret's length)."""
        return cls(f"{variable} must {verb}{expected}, got {shown}", variable=variable, value=shown,
                   expected=f"{verb}{expected}")


def shown_value(text: str) -> str:
    """A bad value as a message shows it: quoted, escaped onto one line, cut to a readable length."""
    quoted = repr(text)
    return quoted if len(quoted) <= MAX_SHOWN_VALUE_CHARS else quoted[:MAX_SHOWN_VALUE_CHARS] + "..."


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading `environ` instead of the process's environment,
    with exact (case-sensitive) names and blank values passed on to the field types."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls, case_sensitive=True, env_ignore_empty=False)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return dict(self._environ)


class EnvironmentSettings(BaseSettings):
    """Base of the settings models: frozen, unknown variables ignored, defaults trusted as written."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True, validate_default=False)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   **_others: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # from_environment passes the variables in: no .env file, no secrets directory

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Self:
        values = _MappingSource(cls, os.environ if environ is None else environ)()
        try:
            return cls(**values)
        except ValidationError as error:
            raise _settings_error(error) from None


def _settings_error(error: ValidationError) -> SettingsError:
    """The first bad variable of `error`, as one line (the field types put `shown` in the context)."""
    first: dict[str, Any] = error.errors(include_url=False)[0]
    variable = str(first["loc"][0]) if first["loc"] else "a setting"
    context = first.get("ctx") or {}
    shown = context.get("shown") or shown_value(str(first.get("input", "")))
    return SettingsError.invalid(variable, shown, context.get("expected") or first["msg"])
