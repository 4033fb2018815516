"""Lumara's memories for MCP clients (Claude Desktop, Cursor, VS Code, …): the tools and
the memory resource (tools.py), the MCP server built on the official SDK (server.py), and
its two transports: stdio for a client's config file (stdio.py, `python -m lumara_web mcp`)
and Streamable HTTP at /mcp on the running web server (http.py, mounted by web/mcp.py).

The SDK is the top-level `mcp` package; this room is `lumara_web.mcp`, and Python 3 imports
are absolute, so `import mcp` here always means the SDK."""
