"""The MCP server: MemoryTools' methods as MCP tools and each memory as the resource
memory://<id>, on the official SDK's MCPServer. Both transports serve this one server."""

from __future__ import annotations

import functools
from contextlib import AbstractAsyncContextManager
from typing import Any, Callable

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp_types import ToolAnnotations
from pydantic import ValidationError as ArgumentsError

from ..errors import LumaraError, NotFound
from ..services import Services
from ..version import __version__
from .tools import MemoryTools

INSTRUCTIONS = (
    "Lumara keeps the user's personal memories on their own machine. Search them before "
    "answering anything about the user's life (search_memories), remember what the user "
    "asks you to (add_memory: one statement per memory; check the duplicates and "
    "contradiction candidates it reports), and correct or delete memories on request. "
    "Memories are also readable as resources, memory://<id>.")

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
ADDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
# Changed or trashed memories can be brought back (history, trash), but the change is not
# additive: clients may ask the user first.
CHANGES = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
# Not-found hints, by error code: what to call to find the right id.
NEXT_STEP = {"memory_not_found": " search_memories or recent_memories give the memories' ids."}


class LumaraMCPServer(MCPServer):
    """MCPServer whose argument errors read like the REST API's: the tool, each argument at
    fault and what it takes; unknown arguments are refused rather than ignored (a misspelt
    "tgas" would otherwise save a memory without its tags)."""

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Any = None) -> Any:
        tool = self._tool_manager.get_tool(name)
        if tool is not None:
            unknown = sorted(set(arguments) - set(tool.parameters.get("properties", {})))
            if unknown:
                raise ToolError(f"Error executing tool {name}: unknown argument(s) "
                                f"{', '.join(unknown)}. It takes: "
                                f"{', '.join(tool.parameters.get('properties', {}))}.")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as error:
            if isinstance(error.__cause__, ArgumentsError):
                raise ToolError(argument_problems(name, error.__cause__)) from None
            raise


def argument_problems(tool: str, error: ArgumentsError) -> str:
    """Worded as the SDK words a tool's own errors: Error executing tool add_memory: type:
    Input should be 'knowledge', 'experience' or 'method' (got 'fact'). …"""
    problems = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "arguments"
        got = "" if problem["type"] == "missing" else f" (got {problem['input']!r:.60})"
        problems.append(f"{where}: {problem['msg']}{got}")
    return (f"Error executing tool {tool}: " + "; ".join(problems)
            + ". See the tool's input schema.")


def build_server(services: Services, *,
                 lifespan: Callable[[Any], AbstractAsyncContextManager[Any]] | None = None
                 ) -> MCPServer:
    """The server for `services`; `lifespan` runs around a transport's session (stdio.py
    starts the models' loads there)."""
    tools = MemoryTools(services)
    # log_level: the SDK configures logging only where the program has not (a library
    # must not); its own lines are warnings and errors.
    server = LumaraMCPServer("lumara", title="Lumara", version=__version__,
                             instructions=INSTRUCTIONS, log_level="WARNING", lifespan=lifespan)
    for method, hints in ((tools.search_memories, READ_ONLY), (tools.add_memory, ADDS),
                          (tools.update_memory, CHANGES), (tools.delete_memory, CHANGES),
                          (tools.recent_memories, READ_ONLY), (tools.ask, READ_ONLY)):
        server.add_tool(as_tool(method), annotations=hints)
    server.resource("memory://{id}", name="memory", title="A memory",
                    description="One of the user's memories as JSON: text, type, tags, dates, "
                                "source and metadata.",
                    mime_type="application/json")(as_resource(tools.read_memory))
    return server


def as_tool(method: Callable[..., dict]) -> Callable[..., dict]:
    """`method` with Lumara's errors raised as tool errors (the client's model reads the
    message); its signature and docstring stay the tool's schema and description."""

    @functools.wraps(method)
    def tool(**arguments: Any) -> dict:
        try:
            return method(**arguments)
        except LumaraError as error:
            raise ToolError(error.message + NEXT_STEP.get(error.code, "")) from None

    return tool


def as_resource(method: Callable[[str], str]) -> Callable[[str], str]:
    @functools.wraps(method)
    def resource(id: str) -> str:
        try:
            return method(id)
        except NotFound as error:
            raise ResourceNotFoundError(error.message + NEXT_STEP.get(error.code, "")) from None

    return resource
