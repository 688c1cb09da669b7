"""Versioned prompt templates rendered into chat messages with a recorded hash.

A template is a file `prompts/<name>@<version>.txt` with two sections, `[system]` and
`[user]`. The system section is fixed text: nothing untrusted ever goes in it (a placeholder
there is refused). The user section holds one placeholder, `$instruction_json`, replaced by the
instruction as a JSON string, so the instruction cannot break out of its delimiters.

    render("task-planner@1", instruction, history) -> RenderedPrompt
        messages     [system, user, *history]
        prompt_json  canonical JSON of the messages (sorted keys, no spaces, UTF-8 kept)
        prompt_hash  "0x" + SHA-256 of prompt_json's UTF-8 bytes

`history` is the conversation after the instruction, as OpenAI chat messages: assistant turns
(`assistant_turn`) and tool results (`tool_result`, content = canonical JSON
{"ok":…,"result":…}). Pure apart from reading the template file, which is cached.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from omc_errors import OmcError
from omc_llm.canonical import canonical_json, sha256_hex
from omc_llm.model import InferenceInput, ToolCallOut

DEFAULT_TEMPLATE = "task-planner@1"
PLACEHOLDER = "$instruction_json"
INSTRUCTION_LABEL = "INSTRUCTION: "
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*@[0-9]+")
_SECTIONS = re.compile(r"\[system\]\n(?P<system>.*?)\n\[user\]\n(?P<user>.*)", re.DOTALL)


class PromptError(OmcError):
    """A template is missing or malformed, or the history holds a message it may not."""


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: its name@version and its two sections."""

    name: str
    system: str
    user: str


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """The messages as sent, with their canonical JSON and hash."""

    template: str
    messages: list[dict[str, Any]]
    prompt_json: str
    prompt_hash: str

    def to_input(self, model: str, parameters: dict[str, Any] | None = None,
                 tools: list[dict[str, Any]] | None = None) -> InferenceInput:
        """The request for `model` with these messages."""
        return InferenceInput(model=model, parameters=dict(parameters or {}),
                              messages=list(self.messages), tools=list(tools or []))


def parse_template(name: str, text: str) -> Template:
    """A template from its file text; PromptError if malformed or unsafe."""
    match = _SECTIONS.fullmatch(text.rstrip("\n"))
    if match is None:
        raise PromptError(f"template {name}: needs a [system] then a [user] section")
    system, user = match.group("system").strip("\n"), match.group("user").strip("\n")
    if "$" in system:
        raise PromptError(f"template {name}: the system section may hold no placeholder")
    if user.count(PLACEHOLDER) != 1 or user.count("$") != 1:
        raise PromptError(f"template {name}: the user section needs {PLACEHOLDER} exactly once")
    if f"{INSTRUCTION_LABEL}{PLACEHOLDER}" not in user:
        raise PromptError(f"template {name}: write the placeholder as "
                          f"'{INSTRUCTION_LABEL}{PLACEHOLDER}' on a line of its own")
    return Template(name=name, system=system, user=user)


@lru_cache(maxsize=32)
def load_template(name: str) -> Template:
    """The packaged template `name@version`; PromptError if there is none."""
    if not _NAME.fullmatch(name):
        raise PromptError(f"template name {name!r} is not name@version")
    path = resources.files("omc_llm") / "prompts" / f"{name}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptError(f"no prompt template {name}") from None
    return parse_template(name, text)


def assistant_turn(response_text: str, tool_calls: list[ToolCallOut] | tuple[ToolCallOut, ...]
                   ) -> dict[str, Any]:
    """The model's earlier answer as a history message."""
    message: dict[str, Any] = {"role": "assistant", "content": response_text or None}
    if tool_calls:
        message["tool_calls"] = [
            {"id": c.call_id, "type": "function",
             "function": {"name": c.name, "arguments": c.arguments_json}} for c in tool_calls]
    return message


def tool_result(call_id: str, ok: bool, result_json: str) -> dict[str, Any]:
    """A tool's recorded result as a history message (content: canonical JSON)."""
    try:
        result = json.loads(result_json)
    except ValueError:
        result = result_json
    return {"role": "tool", "tool_call_id": call_id,
            "content": canonical_json({"ok": ok, "result": result})}


def _check_history(history: list[dict[str, Any]]) -> None:
    for i, message in enumerate(history):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("assistant", "tool"):
            raise PromptError(f"history[{i}]: only assistant and tool messages may follow the "
                              f"instruction, got role {role!r}")
        if role == "tool" and not (isinstance(message.get("tool_call_id"), str)
                                   and isinstance(message.get("content"), str)):
            raise PromptError(f"history[{i}]: a tool message needs tool_call_id and content text")


def prompt_hash_of(messages: list[dict[str, Any]]) -> str:
    """The prompt hash of chat messages: SHA-256 of their canonical JSON."""
    return sha256_hex(canonical_json(messages))


def render_template(template: Template, instruction: str,
                    history: list[dict[str, Any]] | None = None) -> RenderedPrompt:
    """The prompt from a parsed template (see `render`)."""
    history = list(history or [])
    _check_history(history)
    user = template.user.replace(PLACEHOLDER, json.dumps(instruction, ensure_ascii=False))
    messages = [{"role": "system", "content": template.system},
                {"role": "user", "content": user}, *history]
    prompt_json = canonical_json(messages)
    return RenderedPrompt(template=template.name, messages=messages, prompt_json=prompt_json,
                          prompt_hash=sha256_hex(prompt_json))


def render(template_name: str, instruction: str,
           history: list[dict[str, Any]] | None = None) -> RenderedPrompt:
    """The prompt of `template_name` for `instruction` followed by `history`."""
    return render_template(load_template(template_name), instruction, history)


def extract_instruction(user_content: str) -> str:
    """The instruction a rendered user message carries (its INSTRUCTION: line), else the text."""
    for line in reversed(user_content.split("\n")):
        if line.startswith(INSTRUCTION_LABEL):
            try:
                value = json.loads(line[len(INSTRUCTION_LABEL):])
            except ValueError:
                break
            if isinstance(value, str):
                return value
            break
    return user_content
