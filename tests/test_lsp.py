"""The JSON Schema of `specc schema` in a real editor: yaml-language-server over LSP.

The server (npm package, pinned in .ci/install, installed into .ci/node/) is started on
stdio and driven with JSON-RPC as an editor would: initialize, configuration mapping each
document to the schema, didOpen, then completion, hover and the published diagnostics.
The same documents go through `specc check`, and both must judge them alike.

Without the server these tests fail when CI=true (CI installs it) and skip elsewhere.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT, specc

from specc.schema.layers import LAYER_TYPES

SERVER = REPO_ROOT / ".ci" / "node" / "node_modules" / ".bin" / "yaml-language-server"
TIMEOUT = 30.0

HEAD = """\
name: case
data: {source: "sklearn:iris"}
input: {shape: [4]}
output: {units: 3, activation: softmax}
layers:
"""
"""A valid spec up to its layers; each test appends layer items (line 6 onwards)."""


class LanguageServer:
    """A minimal LSP client: Content-Length framed JSON-RPC over the server's stdio."""

    def __init__(self, command: list[str], settings: dict[str, Any]) -> None:
        self.settings = settings
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.inbox: queue.Queue[dict | None] = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """Parse messages from stdout into the inbox (None when the server exits)."""
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    self.inbox.put(None)
                    return
                if not line.strip():
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            assert length is not None, "a message without Content-Length"
            self.inbox.put(json.loads(out.read(length)))

    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        """Send a notification."""
        self._send({"method": method, "params": params})

    def request(self, method: str, params: dict[str, Any]) -> Any:
        """Send a request and return its result."""
        self.next_id += 1
        rid = self.next_id
        self._send({"id": rid, "method": method, "params": params})
        reply = self.wait(lambda m: m.get("id") == rid and "method" not in m)
        assert reply is not None and "error" not in reply, reply
        return reply["result"]

    def wait(self, wanted: Callable[[dict], bool], timeout: float = TIMEOUT) -> dict | None:
        """The next message that `wanted` accepts (None on timeout); answers server requests."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                msg = self.inbox.get(timeout=left)
            except queue.Empty:
                break
            if msg is None:
                raise RuntimeError("yaml-language-server exited")
            if "method" in msg and "id" in msg:  # a request from the server
                self._send({"id": msg["id"], "result": self._answer(msg)})
            if wanted(msg):
                return msg
        return None

    def _answer(self, msg: dict[str, Any]) -> Any:
        """workspace/configuration gets the settings; other requests get null."""
        if msg["method"] != "workspace/configuration":
            return None
        return [self.settings.get(item.get("section"), {}) for item in msg["params"]["items"]]

    def close(self) -> None:
        """Shut the server down (and make sure it is gone)."""
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self.proc.wait(timeout=5)
        except (OSError, RuntimeError, subprocess.TimeoutExpired, AssertionError):
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding `specc schema` output; documents are written beside it."""
    folder = tmp_path_factory.mktemp("lsp")
    done = specc("schema", "-o", str(folder / "specc.schema.json"))
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="module")
def server(workspace: Path) -> Iterator[LanguageServer]:
    """yaml-language-server with `yaml.schemas` mapping every document here to the schema."""
    missing = [
        what for what, ok in (("node", shutil.which("node")), (SERVER, SERVER.exists())) if not ok
    ]
    if missing:
        reason = f"{', '.join(map(str, missing))} not found: run bash .ci/install (needs npm)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    schema = (workspace / "specc.schema.json").as_uri()
    settings = {
        "yaml": {
            "schemas": {schema: [f"{workspace.as_uri()}/*.yaml", "*.yaml"]},
            "validate": True,
            "completion": True,
            "hover": True,
        },
    }
    ls = LanguageServer([str(SERVER), "--stdio"], settings)
    capabilities = {
        "workspace": {"configuration": True},
        "textDocument": {
            "completion": {"completionItem": {"documentationFormat": ["markdown", "plaintext"]}},
            "hover": {"contentFormat": ["markdown", "plaintext"]},
            "publishDiagnostics": {},
        },
    }
    ls.request(
        "initialize",
        {"processId": os.getpid(), "rootUri": workspace.as_uri(), "capabilities": capabilities},
    )
    ls.notify("initialized", {})
    ls.notify("workspace/didChangeConfiguration", {"settings": settings})
    yield ls
    ls.close()


class Document:
    """A spec opened in the server and written to disk for `specc check`."""

    count = 0

    def __init__(self, server: LanguageServer, folder: Path, text: str) -> None:
        Document.count += 1
        self.server, self.text = server, text
        self.path = folder / f"doc{Document.count}.yaml"
        self.path.write_text(text)
        self.uri = self.path.as_uri()
        self._published: list[tuple[int, str]] | None = None
        server.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": self.uri, "languageId": "yaml", "version": 1, "text": text}},
        )

    def diagnostics(self) -> list[tuple[int, str]]:
        """(1-based line, message) of the editor's diagnostics, once the schema applied."""
        if self._published is None:
            self._published = self._wait_for_diagnostics()
        return self._published

    def _wait_for_diagnostics(self) -> list[tuple[int, str]]:
        """The first diagnostics published for this document with the schema loaded."""

        def published(m: dict) -> bool:
            return m.get("method") == "textDocument/publishDiagnostics" and (
                m["params"]["uri"] == self.uri
            )

        first = self.server.wait(published)
        assert first is not None, "no diagnostics published"
        found = first["params"]["diagnostics"]
        if not found:  # published before the schema was loaded: give it a moment
            later = self.server.wait(lambda m: published(m) and m["params"]["diagnostics"], 5)
            found = later["params"]["diagnostics"] if later else []
        return [(d["range"]["start"]["line"] + 1, d["message"]) for d in found]

    def position(self, marker: str, after: bool = True) -> dict[str, int]:
        """The LSP position at the end (or start) of the first `marker` in the text."""
        index = self.text.index(marker) + (len(marker) if after else 0)
        line = self.text.count("\n", 0, index)
        return {"line": line, "character": index - (self.text.rfind("\n", 0, index) + 1)}

    def completion(self, marker: str) -> list[str]:
        """Labels the server offers at the end of `marker`."""
        self.diagnostics()  # the document has been validated: its schema is loaded
        result = self.server.request(
            "textDocument/completion",
            {"textDocument": {"uri": self.uri}, "position": self.position(marker)},
        )
        items = result["items"] if isinstance(result, dict) else result
        return [item["label"] for item in items]

    def hover(self, marker: str) -> str:
        """The hover text at the start of `marker`."""
        self.diagnostics()
        result = self.server.request(
            "textDocument/hover",
            {"textDocument": {"uri": self.uri}, "position": self.position(marker, after=False)},
        )
        contents = result["contents"] if result else ""
        return contents["value"] if isinstance(contents, dict) else str(contents)

    def check(self) -> list[tuple[int, str, str]]:
        """(line, code, message) of `specc check` on the same file."""
        done = specc("check", "--format", "json", str(self.path))
        assert done.returncode in (0, 1), done.stderr
        return [
            (d["line"], d["code"], d["message"]) for d in json.loads(done.stdout)["diagnostics"]
        ]


@pytest.fixture
def doc(server: LanguageServer, workspace: Path) -> Callable[[str], Document]:
    """Open `HEAD + layers` as a new document."""
    return lambda layers: Document(server, workspace, HEAD + layers)


def test_empty_item_completes_exactly_the_layer_keys(doc: Callable[[str], Document]) -> None:
    """`- ` in layers offers the 22 layer keys, not also the Pydantic class names."""
    labels = doc("  - dense: {units: 8}\n  - \n").completion("8}\n  - ")
    assert sorted(labels) == sorted(LAYER_TYPES)


def test_typed_prefix_completes_the_matching_keys(doc: Callable[[str], Document]) -> None:
    """`- c` offers conv1d and conv2d (the editor filters by what is typed), no class names."""
    labels = doc("  - dense: {units: 8}\n  - c\n").completion("  - c")
    assert {"conv1d", "conv2d"} <= set(labels)
    assert set(labels) <= set(LAYER_TYPES)
    assert [k for k in LAYER_TYPES if "c" in k] == [k for k in labels if "c" in k]


def test_hover_shows_the_layer_docs(doc: Callable[[str], Document]) -> None:
    """Hovering a layer key shows its docstring, and a parameter key shows its own."""
    document = doc("  - dense: {units: 8}\n  - maxpool1d: {pool_size: 2}\n")
    assert "fully connected" in document.hover("dense:")
    assert "Number of units" in document.hover("units: 8}")
    assert "Max pooling" in document.hover("maxpool1d:")


def test_unknown_layer_names_the_key(doc: Callable[[str], Document]) -> None:
    """An unknown layer key is reported as such by both, at the same line."""
    document = doc("  - dense: {units: 8}\n  - dnse: {units: 3}\n")
    editor = document.diagnostics()
    assert editor, "the editor accepts an unknown layer"
    assert all("Missing property" not in message for _, message in editor), editor
    assert any(line == 7 and "dnse" in message for line, message in editor), editor
    cli = document.check()
    assert [(line, code) for line, code, _ in cli] == [(7, "unknown-name")]
    assert "dnse" in cli[0][2]


@pytest.mark.parametrize(
    "layer",
    ['  - dense: {units: "8"}\n', "  - dense: {units: 8, bias: yes}\n", "  - dense:\n"],
    ids=["quoted-int", "yes-for-bool", "empty-dense"],
)
def test_both_reject(doc: Callable[[str], Document], layer: str) -> None:
    """A quoted number, `yes` for a boolean and a parameterless `- dense:` are errors in both."""
    document = doc(layer)
    editor = document.diagnostics()
    cli = document.check()
    assert [line for line, _ in editor] == [6], editor
    assert [line for line, _, _ in cli] == [6], cli


@pytest.mark.parametrize(
    "layer",
    ["  - dense: {units: 8.0, bias: false}\n", "  - dense: {units: 8}\n  - dropout:\n"],
    ids=["integral-float", "empty-dropout-needs-rate"],
)
def test_both_judge_alike(doc: Callable[[str], Document], layer: str) -> None:
    """An integral float for an int (accepted) and a null layer needing params (rejected)."""
    document = doc(layer)
    editor_lines = sorted({line for line, _ in document.diagnostics()})
    cli_lines = sorted({line for line, _, _ in document.check()})
    assert editor_lines == cli_lines


def test_parameterless_layer_may_be_empty(server: LanguageServer, workspace: Path) -> None:
    """`- flatten:` (null) is accepted by both: a layer without parameters needs none."""
    text = (
        HEAD.replace("[4]", "[1, 2, 2]") + "  - flatten:\n  - dense: {units: 8, activation: relu}\n"
    )
    document = Document(server, workspace, text)
    assert document.diagnostics() == []
    assert [code for _, code, _ in document.check()] == []
