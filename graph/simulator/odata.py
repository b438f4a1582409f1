"""A small OData $filter parser: the subset Graph's directory endpoints accept and our clients send.

Supported: ``prop eq 'x'``, ``prop ne 'x'``, ``prop eq true|false|null``, ``startswith(prop,'x')``,
``coll/any(v:v eq 'x')``, ``and``, ``or``, ``not``, parentheses. Which properties an endpoint allows, and how, is
decided by the endpoint (``FilterSpec``); everything else raises ``UnsupportedQuery``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Predicate = Callable[[Any], bool]
Getter = Callable[[Any], Any]


class UnsupportedQuery(ValueError):
    pass


@dataclass(frozen=True)
class FilterSpec:
    """Properties a collection lets you filter on: name -> (getter, kind, case_insensitive).

    kind: "str" (eq/ne/startswith), "bool" (eq/ne), "coll" (any(x: x eq ...)).
    """

    props: dict[str, tuple[Getter, str, bool]]


_TOKEN = re.compile(r"\s*(?:('(?:[^']|'')*')|(\()|(\))|(,)|(:)|(/)|([A-Za-z_][A-Za-z0-9_.]*)|(-?\d+))")


def _tokens(text: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise UnsupportedQuery(f"Invalid filter clause near '{text[pos : pos + 20]}'.")
        pos = match.end()
        kinds = ("str", "(", ")", ",", ":", "/", "ident", "num")
        for kind, value in zip(kinds, match.groups(), strict=True):
            if value is not None:
                out.append((kind, value[1:-1].replace("''", "'") if kind == "str" else value))
                break
    return out


class _Parser:
    def __init__(self, text: str, spec: FilterSpec) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.spec = spec

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1].lower() != value):
            raise UnsupportedQuery("Invalid filter clause.")
        self.i += 1
        return tok[1]

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[0] == "ident" and tok[1].lower() == word:
            self.i += 1
            return True
        return False

    def parse(self) -> Predicate:
        pred = self.expr()
        if self.peek() is not None:
            raise UnsupportedQuery("Invalid filter clause.")
        return pred

    def expr(self) -> Predicate:
        parts = [self.term()]
        while self.keyword("or"):
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        return lambda obj: any(p(obj) for p in parts)

    def term(self) -> Predicate:
        parts = [self.factor()]
        while self.keyword("and"):
            parts.append(self.factor())
        if len(parts) == 1:
            return parts[0]
        return lambda obj: all(p(obj) for p in parts)

    def prop(self, name: str, kinds: tuple[str, ...]) -> tuple[Getter, bool]:
        entry = self.spec.props.get(name)
        if entry is None or entry[1] not in kinds:
            raise UnsupportedQuery(
                f"Unsupported or invalid query filter clause specified for property '{name}'."
            )
        return entry[0], entry[2]

    def literal(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise UnsupportedQuery("Invalid filter clause.")
        self.i += 1
        kind, value = tok
        if kind == "str":
            return value
        if kind == "num":
            return int(value)
        if kind == "ident" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "ident" and value.lower() == "null":
            return None
        raise UnsupportedQuery("Invalid filter clause.")

    def factor(self) -> Predicate:
        if self.keyword("not"):
            inner = self.factor()
            return lambda obj: not inner(obj)
        tok = self.peek()
        if tok is not None and tok[0] == "(":
            self.i += 1
            inner = self.expr()
            self.take(")")
            return inner
        name = self.take("ident")
        if name.lower() == "startswith" and self.peek() is not None and self.peek()[0] == "(":  # type: ignore[index]
            self.take("(")
            getter, ci = self.prop(self.take("ident"), ("str",))
            self.take(",")
            prefix = self.literal()
            self.take(")")
            if not isinstance(prefix, str):
                raise UnsupportedQuery("Invalid filter clause.")
            if ci:
                low = prefix.lower()
                return lambda obj: (getter(obj) or "").lower().startswith(low)
            return lambda obj: (getter(obj) or "").startswith(prefix)
        nxt = self.peek()
        if nxt is not None and nxt[0] == "/":
            self.take("/")
            self.take("ident", "any")
            getter, ci = self.prop(name, ("coll",))
            self.take("(")
            var = self.take("ident")
            self.take(":")
            if self.take("ident") != var:
                raise UnsupportedQuery("Invalid filter clause.")
            self.take("ident", "eq")
            value = self.literal()
            self.take(")")
            if ci and isinstance(value, str):
                low = value.lower()
                return lambda obj: any(isinstance(x, str) and x.lower() == low for x in getter(obj) or ())
            return lambda obj: value in (getter(obj) or ())
        getter, ci = self.prop(name, ("str", "bool"))
        op = self.take("ident").lower()
        if op not in ("eq", "ne"):
            raise UnsupportedQuery(f"Unsupported operator '{op}'.")
        value = self.literal()
        if ci and isinstance(value, str):
            low = value.lower()

            def eq(obj: Any) -> bool:
                got = getter(obj)
                return isinstance(got, str) and got.lower() == low

        else:

            def eq(obj: Any) -> bool:
                return bool(getter(obj) == value)

        if op == "ne":
            return lambda obj: not eq(obj)
        return eq


def parse_filter(text: str, spec: FilterSpec) -> Predicate:
    return _Parser(text, spec).parse()


def operators(text: str) -> set[str]:
    """The lower-cased words outside string literals of a filter (``eq``, ``ne``, ``not``, property names...)."""
    try:
        return {value.lower() for kind, value in _tokens(text) if kind == "ident"}
    except UnsupportedQuery:
        return set()
