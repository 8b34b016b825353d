"""A small evaluator of Terraform expressions, for offline checks.

python-hcl2 parses the configuration but leaves every expression as text
("${substr(var.name, 0, 20)}-ed-exec-"). This evaluates that text with the
values a plan would know from variables and locals alone: literals, var.*,
local.*, each.*, count.index, operators, conditionals, for expressions,
templates and the functions the modules use. Anything that only exists after
apply (module outputs, resource attributes, data sources) evaluates to
UNKNOWN, and so does everything computed from it.

It is deliberately not a Terraform: it exists so that
test_aws_constraints.py can compute names, sizes and limits from the
defaults, and it says UNKNOWN rather than guess.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable


class _Unknown:
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self):
        return "UNKNOWN"


UNKNOWN = _Unknown()


def is_known(value) -> bool:
    if value is UNKNOWN:
        return False
    if isinstance(value, list):
        return all(is_known(v) for v in value)
    if isinstance(value, dict):
        return all(is_known(v) for v in value.values())
    return True


class EvalError(Exception):
    pass


# --- tokens ------------------------------------------------------------------------

_PUNCT = ["=>", "==", "!=", ">=", "<=", "&&", "||", "...", "(", ")", "[", "]", "{", "}", ",", ".", "?", ":", "!", "<", ">", "+", "-", "*", "/", "%", "="]


def _scan_string(text: str, i: int) -> int:
    """Index just past the closing quote of the string starting at text[i]."""
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        if text.startswith("${", i) or text.startswith("%{", i):
            i = _scan_braces(text, i + 1)
            continue
        i += 1
    raise EvalError("unterminated string")


def _scan_braces(text: str, i: int) -> int:
    """text[i] is '{': index just past its matching '}'."""
    depth = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = _scan_string(text, i)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise EvalError("unbalanced braces")


def tokenize(text: str) -> list[tuple[str, Any]]:
    tokens = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == '"':
            end = _scan_string(text, i)
            tokens.append(("str", text[i + 1 : end - 1]))
            i = end
            continue
        m = re.match(r"\d+(\.\d+)?([eE][+-]?\d+)?", text[i:])
        if m:
            tokens.append(("num", float(m.group(0)) if any(ch in m.group(0) for ch in ".eE") else int(m.group(0))))
            i += len(m.group(0))
            continue
        m = re.match(r"[A-Za-z_][A-Za-z0-9_-]*", text[i:])
        if m:
            tokens.append(("id", m.group(0)))
            i += len(m.group(0))
            continue
        for p in _PUNCT:
            if text.startswith(p, i):
                tokens.append(("p", p))
                i += len(p)
                break
        else:
            raise EvalError(f"unexpected character {c!r}")
    tokens.append(("end", None))
    return tokens


# --- evaluation -----------------------------------------------------------------------


def _unescape(raw: str) -> str:
    return (
        raw.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")
    )


class Scope:
    """Names an expression can see."""

    def __init__(self, variables: dict, locals_: dict, extra: dict | None = None, local_cache: dict | None = None):
        self.variables = variables
        self.locals = locals_  # name -> raw expression
        self.extra = extra or {}  # each, count, for-expression names
        self.local_cache = local_cache if local_cache is not None else {}

    def child(self, **names) -> "Scope":
        return Scope(self.variables, self.locals, {**self.extra, **names}, self.local_cache)

    def local(self, name: str):
        if name in self.local_cache:
            return self.local_cache[name]
        if name not in self.locals:
            raise EvalError(f"local.{name} is not declared")
        self.local_cache[name] = UNKNOWN  # cycle guard
        value = evaluate(self.locals[name], Scope(self.variables, self.locals, {}, self.local_cache))
        self.local_cache[name] = value
        return value


def evaluate(raw, scope: Scope):
    """Value of an attribute as python-hcl2 returns it."""
    if isinstance(raw, dict):
        return {k: evaluate(v, scope) for k, v in raw.items() if not str(k).startswith("__")}
    if isinstance(raw, list):
        return [evaluate(v, scope) for v in raw]
    if isinstance(raw, str):
        if raw.startswith("<<"):
            body = raw.split("\n", 1)[1] if "\n" in raw else ""
            body = body.rsplit("\n", 1)[0]
            return template(body, scope)
        return template(raw, scope)
    return raw


def template(text: str, scope: Scope):
    """A template string: literal text and ${...} interpolations."""
    parts = []
    i = 0
    literal = []
    while i < len(text):
        if text.startswith("$${", i):
            literal.append("${")
            i += 3
            continue
        if text.startswith("%%{", i):
            literal.append("%{")
            i += 3
            continue
        if text.startswith("${", i):
            end = _scan_braces(text, i + 1)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(("expr", text[i + 2 : end - 1]))
            i = end
            continue
        if text.startswith("%{", i):
            return UNKNOWN  # directives are not needed by the checks
        literal.append(text[i])
        i += 1
    if literal:
        parts.append("".join(literal))
    if len(parts) == 1 and isinstance(parts[0], tuple):
        return expression(parts[0][1], scope)
    out = []
    for part in parts:
        if isinstance(part, tuple):
            value = expression(part[1], scope)
            if value is UNKNOWN:
                return UNKNOWN
            out.append(_to_string(value))
        else:
            out.append(part)
    return "".join(out)


def _to_string(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return ""
    return str(value)


def expression(text: str, scope: Scope):
    parser = _Parser(tokenize(text), scope)
    value = parser.expr()
    if parser.peek() != ("end", None):
        raise EvalError(f"unexpected {parser.peek()} in {text!r}")
    return value


class _Parser:
    def __init__(self, tokens, scope: Scope):
        self.tokens = tokens
        self.pos = 0
        self.scope = scope

    def peek(self, ahead: int = 0):
        return self.tokens[self.pos + ahead]

    def take(self):
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def accept(self, punct: str) -> bool:
        if self.peek() == ("p", punct):
            self.pos += 1
            return True
        return False

    def expect(self, punct: str):
        if not self.accept(punct):
            raise EvalError(f"expected {punct!r}, found {self.peek()}")

    # expr := or ('?' expr ':' expr)?
    def expr(self):
        cond = self.binary(0)
        if self.accept("?"):
            yes = self.expr()
            self.expect(":")
            no = self.expr()
            if cond is UNKNOWN:
                return yes if yes == no and yes is not UNKNOWN else UNKNOWN
            return yes if cond else no
        return cond

    LEVELS = [["||"], ["&&"], ["==", "!="], ["<", ">", "<=", ">="], ["+", "-"], ["*", "/", "%"]]

    def binary(self, level: int):
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[0] == "p" and self.peek()[1] in self.LEVELS[level]:
            op = self.take()[1]
            right = self.binary(level + 1)
            left = _binop(op, left, right)
        return left

    def unary(self):
        if self.accept("!"):
            value = self.unary()
            return UNKNOWN if value is UNKNOWN else not value
        if self.accept("-"):
            value = self.unary()
            return UNKNOWN if value is UNKNOWN else -value
        return self.postfix(self.primary())

    def postfix(self, value):
        while True:
            if self.peek() == ("p", ".") and self.peek(1)[0] == "id":
                self.take()
                name = self.take()[1]
                value = _attr(value, name)
            elif self.peek() == ("p", ".") and self.peek(1) == ("p", "*"):
                self.take()
                self.take()
                value = UNKNOWN
            elif self.peek() == ("p", "[") and self.peek(1) == ("p", "*") and self.peek(2) == ("p", "]"):
                self.pos += 3
                value = UNKNOWN
            elif self.accept("["):
                index = self.expr()
                self.expect("]")
                value = _index(value, index)
            else:
                return value

    def primary(self):
        kind, text = self.take()
        if kind == "num":
            return text
        if kind == "str":
            return template(_unescape(text), self.scope)
        if kind == "p" and text == "(":
            value = self.expr()
            self.expect(")")
            return value
        if kind == "p" and text == "[":
            return self.list_or_for()
        if kind == "p" and text == "{":
            return self.object_or_for()
        if kind == "id":
            if text in ("true", "false"):
                return text == "true"
            if text == "null":
                return None
            if self.peek() == ("p", "("):
                return self.call(text)
            return self.reference(text)
        raise EvalError(f"unexpected {kind} {text!r}")

    def reference(self, name: str):
        if name in self.scope.extra:
            return self.scope.extra[name]
        if name in ("var", "local") and self.peek() == ("p", ".") and self.peek(1)[0] == "id":
            self.take()
            field = self.take()[1]
            if name == "var":
                if field not in self.scope.variables:
                    raise EvalError(f"var.{field} is not declared")
                return self.scope.variables[field]
            return self.scope.local(field)
        # module.*, data.*, resources, path.*, providers: only known after apply
        # (or not values at all). Consume the rest of the traversal.
        while self.peek() == ("p", ".") and self.peek(1)[0] == "id":
            self.pos += 2
        return UNKNOWN

    def call(self, name: str):
        self.expect("(")
        if name == "can":
            return self._can()
        args = []
        expand = False
        while not self.accept(")"):
            args.append(self.expr())
            if self.accept("..."):
                expand = True
            self.accept(",")
        if expand and args:
            last = args.pop()
            if last is UNKNOWN:
                return UNKNOWN
            args.extend(last)
        function = FUNCTIONS.get(name)
        if function is None:
            return UNKNOWN
        if name in ("try", "coalesce"):
            return function(*args)
        if any(a is UNKNOWN for a in args):
            return UNKNOWN
        try:
            return function(*args)
        except EvalError:
            raise
        except Exception as error:  # a Terraform function error
            raise EvalError(f"{name}(): {error}") from error

    def _can(self):
        """can(expr): true if expr evaluates, false if it fails, unknown if unknown."""
        start, depth = self.pos, 1
        while depth:  # find the matching ')' first, to resume there on error
            token = self.take()
            if token[0] == "end":
                raise EvalError("unterminated can(")
            if token in (("p", "("), ("p", "["), ("p", "{")):
                depth += 1
            elif token in (("p", ")"), ("p", "]"), ("p", "}")):
                depth -= 1
        end = self.pos
        self.pos = start
        try:
            value = self.expr()
            self.expect(")")
        except (EvalError, TypeError, ValueError, KeyError, IndexError):
            self.pos = end
            return False
        return UNKNOWN if value is UNKNOWN else True

    def _for(self, closing: str, is_object: bool):
        # after '[' or '{' and the 'for' keyword
        names = [self.take()[1]]
        if self.accept(","):
            names.append(self.take()[1])
        if self.take() != ("id", "in"):
            raise EvalError("expected 'in'")
        collection = self.expr()
        self.expect(":")
        body_start = self.pos
        if collection is UNKNOWN:
            items = None
        elif isinstance(collection, dict):
            items = list(collection.items())
        else:
            items = list(enumerate(collection))
        results = [] if not is_object else {}
        unknown = items is None
        for key, value in items or [(UNKNOWN, UNKNOWN)]:
            self.pos = body_start
            bound = {names[0]: value} if len(names) == 1 else {names[0]: key, names[1]: value}
            saved = self.scope
            self.scope = saved.child(**bound)
            try:
                if is_object:
                    k = self.expr()
                    self.expect("=>")
                    v = self.expr()
                    grouped = self.accept("...")
                else:
                    v = self.expr()
                keep = True
                if self.peek() == ("id", "if"):
                    self.take()
                    keep = self.expr()
            finally:
                self.scope = saved
            if items is None:
                continue
            if keep is UNKNOWN or (is_object and k is UNKNOWN):
                unknown = True
                continue
            if keep:
                if is_object:
                    if grouped:
                        results.setdefault(k, []).append(v)
                    else:
                        results[k] = v
                else:
                    results.append(v)
        self.expect(closing)
        return UNKNOWN if unknown else results

    def list_or_for(self):
        if self.peek() == ("id", "for"):
            self.take()
            return self._for("]", False)
        items = []
        while not self.accept("]"):
            items.append(self.expr())
            self.accept(",")
        return items

    def object_or_for(self):
        if self.peek() == ("id", "for"):
            self.take()
            return self._for("}", True)
        obj = {}
        while not self.accept("}"):
            kind, text = self.peek()
            if kind in ("id", "str") and self.peek(1) in (("p", "="), ("p", ":")):
                self.take()
                key = text if kind == "id" else template(_unescape(text), self.scope)
            else:
                key = self.expr()
            if not (self.accept("=") or self.accept(":")):
                raise EvalError("expected '=' in object")
            value = self.expr()
            if key is UNKNOWN:
                return _skip_rest(self, obj)
            obj[key] = value
            self.accept(",")
        return obj


def _skip_rest(parser: _Parser, obj):
    depth = 1
    while depth:
        token = parser.take()
        if token == ("p", "{"):
            depth += 1
        elif token == ("p", "}"):
            depth -= 1
    return UNKNOWN


def _binop(op, a, b):
    if op == "&&":
        if a is False or b is False:
            return False
        return UNKNOWN if UNKNOWN in (a, b) else bool(a and b)
    if op == "||":
        if a is True or b is True:
            return True
        return UNKNOWN if UNKNOWN in (a, b) else bool(a or b)
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    return {
        "<": lambda: a < b,
        ">": lambda: a > b,
        "<=": lambda: a <= b,
        ">=": lambda: a >= b,
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "/": lambda: a / b,
        "%": lambda: a % b,
    }[op]()


def _attr(value, name):
    if value is UNKNOWN:
        return UNKNOWN
    if isinstance(value, dict):
        if name not in value:
            raise EvalError(f"no attribute {name}")
        return value[name]
    raise EvalError(f"cannot take .{name} of {type(value).__name__}")


def _index(value, index):
    if value is UNKNOWN or index is UNKNOWN:
        return UNKNOWN
    if isinstance(value, dict):
        if index not in value:
            raise EvalError(f"no key {index!r}")
        return value[index]
    return value[int(index)]


def _substr(s, offset, length):
    end = None if length == -1 else offset + length
    return s[offset:end]


def _format(spec, *args):
    out, i, n = [], 0, 0
    while i < len(spec):
        if spec[i] == "%" and i + 1 < len(spec):
            verb = spec[i + 1]
            if verb == "%":
                out.append("%")
            else:
                out.append(_to_string(args[n]) if verb in "sdv" else ("%" + verb) % args[n])
                n += 1
            i += 2
        else:
            out.append(spec[i])
            i += 1
    return "".join(out)


def _regex(pattern, text):
    match = re.search(pattern, text)
    if not match:
        raise EvalError(f"regex {pattern!r} does not match {text!r}")
    if match.groupdict():
        return match.groupdict()
    if match.groups():
        return list(match.groups())
    return match.group(0)


def _try(*values):
    for value in values:
        if value is not UNKNOWN:
            return value
    return UNKNOWN


def _range(*args):
    if len(args) == 1:
        return list(range(int(args[0])))
    start, stop = args[0], args[1]
    step = args[2] if len(args) > 2 else 1
    return list(range(int(start), int(stop), int(step)))


FUNCTIONS: dict[str, Callable] = {
    "substr": _substr,
    "max": lambda *a: max(a),
    "min": lambda *a: min(a),
    "floor": lambda x: math.floor(x),
    "ceil": lambda x: math.ceil(x),
    "length": lambda x: len(x),
    "lower": lambda s: s.lower(),
    "upper": lambda s: s.upper(),
    "replace": lambda s, a, b: s.replace(a, b),
    "trimsuffix": lambda s, x: s[: -len(x)] if x and s.endswith(x) else s,
    "trimprefix": lambda s, x: s[len(x) :] if x and s.startswith(x) else s,
    "format": _format,
    "tostring": _to_string,
    "tonumber": lambda x: float(x) if "." in str(x) else int(x),
    "tolist": list,
    "toset": lambda x: sorted(set(x), key=str),
    "tomap": dict,
    "concat": lambda *ls: [v for l in ls for v in l],
    "contains": lambda l, v: v in l,
    "lookup": lambda m, k, *d: m[k] if k in m else d[0],
    "range": _range,
    "join": lambda sep, l: sep.join(_to_string(v) for v in l),
    "split": lambda sep, s: s.split(sep),
    "element": lambda l, i: l[int(i) % len(l)],
    "merge": lambda *ms: {k: v for m in ms for k, v in m.items()},
    "keys": lambda m: sorted(m),
    "values": lambda m: [m[k] for k in sorted(m)],
    "compact": lambda l: [v for v in l if v not in ("", None)],
    "one": lambda l: (l[0] if l else None) if len(l) <= 1 else (_ for _ in ()).throw(EvalError("one() of more than one")),
    "alltrue": lambda l: all(l),
    "anytrue": lambda l: any(l),
    "setsubtract": lambda a, b: [v for v in a if v not in b],
    "coalesce": lambda *a: next((v for v in a if v not in (None, "")), UNKNOWN),
    "regex": _regex,
    "try": _try,
    "abs": abs,
    # The checks want the structure, not its text: jsonencode(x) is x here.
    "jsonencode": lambda x: x,
    "yamlencode": lambda x: x,
}
