"""The version, in a module of its own so that any room can read it without importing the
package root (which wires the whole app)."""

__version__ = "0.1.0"
