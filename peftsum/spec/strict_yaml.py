"""Grid file bytes → a plain YAML document, refusing what a grid file must not make the loader build.

Grid files are UTF-8 YAML read with a SafeLoader subclass that also refuses duplicate keys, alias bombs, recursive
aliases, nesting past ``MAX_DEPTH``, complex keys, integer literals too long to convert and text that is not valid
Unicode. Each refusal is a :class:`SpecError` naming the position (and, where known, the field path).
"""

from __future__ import annotations

import codecs
from typing import Any

import yaml

from peftsum.spec.errors import SpecError, bounded_repr

# What a grid file may make the loader build. A grid is small: these bounds are far above any real one, and far
# below what would exhaust memory or the interpreter's stack.
ALIAS_BUDGET = 10_000  # nodes that YAML aliases (*name) may add to the document, all aliases together
MAX_DEPTH = 100  # nesting of lists and mappings, aliases expanded
MAX_INT_LITERAL = 1_000  # characters of an integer literal (Python refuses to convert more than 4,300 digits)
_INT_TAG = "tag:yaml.org,2002:int"


class _Refused(yaml.MarkedYAMLError):
    """A document the loader refuses to build, at a known field path."""

    def __init__(self, path: str, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.path = path


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that also refuses duplicate keys (PyYAML silently keeps the last one) and, while composing, what
    could exhaust memory or the stack later: aliases that expand past ``ALIAS_BUDGET`` nodes (a "billion laughs"
    bomb is a few hundred bytes, and cheap until something walks or prints it), recursive aliases, nesting deeper
    than ``MAX_DEPTH``, list or mapping keys (``? [a, b]``: unhashable) and integer literals too long to convert.
    Each refusal names the field path and the line."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._segments: list[str] = []  # field path of the node being composed
        self._depth = 0
        self._open: set[str] = set()  # anchors whose node is being composed (an alias to one is recursive)
        self._expanded = 0  # nodes added by aliases so far
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, nesting depth) with aliases expanded

    def _path(self) -> str:
        return "".join(self._segments).lstrip(".")

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if parent is None:
            segment = ""
        elif isinstance(parent, yaml.SequenceNode):
            segment = f"[{index}]"
        elif index is None:  # a mapping key: only a plain value can be one
            event = self.peek_event()
            target = self.anchors.get(event.anchor) if isinstance(event, yaml.AliasEvent) else None
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)) or \
                    isinstance(target, (yaml.SequenceNode, yaml.MappingNode)):
                raise _Refused(self._path(), "a mapping key must be a plain string, not a list or mapping (a YAML "
                                             "complex key such as '? [a, b]')", event.start_mark)
            return super().compose_node(parent, index)
        else:
            segment = f".{index.value}" if isinstance(index, yaml.ScalarNode) else ".?"
        self._segments.append(segment)
        try:
            return self._compose(parent, index)
        finally:
            self._segments.pop()

    def _compose(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _Refused(self._path(), f"alias *{event.anchor} refers to a node that contains it (a recursive "
                                             f"structure)", event.start_mark)
            if event.anchor in self.anchors:
                nodes, depth = self._size(self.anchors[event.anchor])
                self._expanded += nodes
                if self._expanded > ALIAS_BUDGET:
                    raise _Refused(self._path(), f"YAML aliases expand the document by more than {ALIAS_BUDGET:,} "
                                                 f"values (an alias bomb?): write the values out instead",
                                   event.start_mark)
                if self._depth + depth > MAX_DEPTH:
                    raise _Refused(self._path(), f"nests lists and mappings deeper than {MAX_DEPTH} levels "
                                                 f"(aliases expanded)", event.start_mark)
            return super().compose_node(parent, index)
        collection = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if collection:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(self._path(), f"nests lists and mappings deeper than {MAX_DEPTH} levels",
                               event.start_mark)
        if event.anchor is not None:
            self._open.add(event.anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._open.discard(event.anchor)
            self._depth -= collection
        if node.tag == _INT_TAG and len(node.value) > MAX_INT_LITERAL:
            raise _Refused(self._path(), f"an integer literal of {len(node.value):,} characters is longer than any "
                                         f"setting accepts", node.start_mark)
        return node

    def _size(self, root: yaml.Node) -> tuple[int, int]:
        """(nodes, nesting depth) of ``root`` with every alias inside it expanded; memoised, so all calls together
        visit each node once."""
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if id(node) in self._sizes:
                continue
            children = [] if isinstance(node, yaml.ScalarNode) else \
                node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
            if done:
                sizes = [self._sizes[id(c)] for c in children]
                self._sizes[id(node)] = (1 + sum(n for n, _ in sizes),
                                         (not isinstance(node, yaml.ScalarNode)) + max((d for _, d in sizes),
                                                                                       default=0))
            else:
                stack.append((node, True))
                stack.extend((c, False) for c in children if id(c) not in self._sizes)
        return self._sizes[id(root)]


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {bounded_repr(key)}",
                                                    key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _unicode_str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    """Strings must be real text: a lone surrogate escape ("\\ud83d") cannot be hashed, stored or sent to K8s."""
    value = loader.construct_scalar(node)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise yaml.constructor.ConstructorError(
            None, None, f"{bounded_repr(value)} is not valid Unicode text (a lone surrogate escape such as \\ud83d)",
            node.start_mark) from None
    return value


_StrictLoader.add_constructor("tag:yaml.org,2002:str", _unicode_str)


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"


def decode(data: bytes) -> str:
    """The grid file's text. Grid files are UTF-8 (a UTF-8 byte-order mark is allowed); anything else is refused
    naming the position of the first byte that is not UTF-8."""
    for bom, encoding in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                          (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if data.startswith(bom):
            raise SpecError("", "line 1, column 1", f"the file is {encoding} text (it starts with a {encoding} "
                                                    f"byte-order mark): grid files must be UTF-8; save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SpecError("", f"line {line}, column {column}",
                        f"the file is not UTF-8 text: byte 0x{data[err.start]:02x} at line {line}, column {column} "
                        f"cannot be decoded (grid files must be UTF-8; save it as UTF-8)") from None


def read_document(text: str) -> Any:
    """The YAML document of a grid file's text (plain mappings, lists and scalars)."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _Refused as err:
        raise SpecError(err.path, _where(err.problem_mark), err.problem) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise SpecError("", _where(mark), f"invalid YAML: {err.problem or err.context}") from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (NUL, other control characters)
        before = text[: err.position]
        where = f"line {before.count(chr(10)) + 1}, column {err.position - before.rfind(chr(10))}"
        char = chr(err.character) if isinstance(err.character, int) else err.character
        raise SpecError("", where, f"invalid YAML: the character {char!r} at {where} is not allowed in YAML text "
                                   f"(a binary or UTF-16 file? grid files are UTF-8 text)") from None
    except yaml.YAMLError as err:
        raise SpecError("", str(err), "invalid YAML") from None
