"""Safe parsing of factory formulas ("log(r)", "1/(1+exp(t))") into sympy.

Formulas come from config files and command lines, so they are parsed as math
only: Python's `ast` reads the text, a whitelist of node types is walked, and
the sympy expression is built here by hand. Nothing is ever evaluated by
Python (`sympy.parse_expr` would `eval` the text, so it is not used).

Allowed: numbers; the variable of the formula (`r` for ω, `t` for ρ, α, β);
the constants `pi`, `e`/`E` and any user constants passed by name;
`+ - * / **` and unary `-`/`+`; calls of the functions in `FUNCTIONS`.
Everything else (attribute access, subscripts, lambdas, strings, keywords,
comparisons, unknown or dunder names, ...) raises `FormulaError` naming the
offending piece.
"""
from __future__ import annotations

import ast
import keyword
import math

import sympy

__all__ = ["FormulaError", "parse_formula", "R", "T", "FUNCTIONS"]

# The two variables of the factory. r = q/p >= 0; t = the discriminator output.
R = sympy.Symbol("r", positive=True)
T = sympy.Symbol("t", real=True)

MAX_LENGTH = 1000        # characters in one formula
MAX_DEPTH = 60           # nesting depth of the expression tree
MAX_LITERAL = 1e12       # largest number literal accepted
MAX_EXPONENT = 100       # largest numeric power of a numeric base (guards 9**9**9)


class FormulaError(ValueError):
    """A formula that is not plain math, or uses something not allowed."""


def _sigmoid(x):
    return 1 / (1 + sympy.exp(-x))


def _softplus(x):
    return sympy.log(1 + sympy.exp(x))


# name -> (sympy builder, number of arguments)
FUNCTIONS = {
    "exp": (sympy.exp, 1),
    "log": (sympy.log, 1),
    "sqrt": (sympy.sqrt, 1),
    "abs": (sympy.Abs, 1),
    "tanh": (sympy.tanh, 1),
    "sinh": (sympy.sinh, 1),
    "cosh": (sympy.cosh, 1),
    "sin": (sympy.sin, 1),
    "cos": (sympy.cos, 1),
    "atan": (sympy.atan, 1),
    "atanh": (sympy.atanh, 1),
    "asinh": (sympy.asinh, 1),
    "erf": (sympy.erf, 1),
    "sigmoid": (_sigmoid, 1),
    "softplus": (_softplus, 1),
    "sp": (_softplus, 1),
}
CONSTANTS = {"pi": sympy.pi, "e": sympy.E, "E": sympy.E}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_NODE_WORDS = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators",
    ast.IfExp: "conditional expressions",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.JoinedStr: "f-strings",
    ast.Starred: "starred arguments",
    ast.NamedExpr: "assignment expressions",
    ast.Slice: "slices",
}


def _check_name(name: str, where: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise FormulaError(f"{where}: {name!r} is not allowed as a name (identifiers only, no leading underscore)")


def parse_formula(text, variables=("t",), constants: dict | None = None, what: str = "formula") -> sympy.Expr:
    """Parse `text` (a string, number or sympy expression) into a sympy expression.

    `variables` names the free symbols allowed ('r' and/or 't'); `constants`
    maps extra names to numbers (e.g. {"a": -1, "b": 1}).
    """
    syms = {"r": R, "t": T}
    allowed = {v: syms[v] for v in variables}
    consts = {}
    for name, value in (constants or {}).items():
        _check_name(str(name), f"{what}: constant")
        if name in syms or name in FUNCTIONS or name in CONSTANTS:
            raise FormulaError(f"{what}: constant name {name!r} clashes with a variable, function or built-in constant")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FormulaError(f"{what}: constant {name!r} must be a finite number, got {value!r}")
        consts[name] = sympy.Rational(str(value)) if isinstance(value, float) else sympy.Integer(value)

    if isinstance(text, sympy.Basic):
        return _from_sympy(text, allowed, what)
    if isinstance(text, bool):
        raise FormulaError(f"{what}: expected a formula, got a bool")
    if isinstance(text, (int, float)):
        text = repr(text)
    if not isinstance(text, str):
        raise FormulaError(f"{what}: expected a formula string, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise FormulaError(f"{what}: empty formula")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"{what}: formula longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise FormulaError(f"{what}: not a valid formula: {text!r} ({e.msg})") from None
    return _Builder(text, allowed, consts, what).build(tree.body, 0)


def _from_sympy(expr: sympy.Basic, allowed: dict, what: str) -> sympy.Expr:
    """Accept a sympy expression, renaming its r/t symbols to the factory's own."""
    subs = {}
    for s in expr.free_symbols:
        if s.name not in allowed:
            raise FormulaError(f"{what}: unknown symbol {s.name!r}; allowed: {', '.join(sorted(allowed))}")
        subs[s] = allowed[s.name]
    return sympy.sympify(expr).xreplace(subs)


class _Builder:
    def __init__(self, text, allowed, consts, what):
        self.text, self.allowed, self.consts, self.what = text, allowed, consts, what

    def _piece(self, node) -> str:
        seg = ast.get_source_segment(self.text, node)
        return seg if seg is not None else type(node).__name__

    def fail(self, node, why: str):
        raise FormulaError(f"{self.what}: {why}: {self._piece(node)!r} in {self.text!r}")

    def build(self, node, depth: int) -> sympy.Expr:
        if depth > MAX_DEPTH:
            self.fail(node, f"formula nested deeper than {MAX_DEPTH}")
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.fail(node, f"only numbers are allowed as literals, not {type(v).__name__}")
            if not math.isfinite(v) or abs(v) > MAX_LITERAL:
                self.fail(node, f"number literals must be finite and at most {MAX_LITERAL:g}")
            return sympy.Rational(repr(v)) if isinstance(v, float) else sympy.Integer(v)
        if isinstance(node, ast.Name):
            name = node.id
            if name.startswith("__"):
                self.fail(node, "dunder names are not allowed")
            if name in self.allowed:
                return self.allowed[name]
            if name in self.consts:
                return self.consts[name]
            if name in CONSTANTS:
                return CONSTANTS[name]
            if name in ("r", "t"):
                self.fail(node, f"this formula is in {' and '.join(self.allowed)} only")
            if name in FUNCTIONS:
                self.fail(node, f"function {name!r} must be called")
            known = sorted(self.allowed) + sorted(self.consts) + sorted(CONSTANTS)
            self.fail(node, f"unknown name (known names: {', '.join(known)})")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -self.build(node.operand, depth + 1)
            if isinstance(node.op, ast.UAdd):
                return self.build(node.operand, depth + 1)
            self.fail(node, "only unary + and - are allowed")
        if isinstance(node, ast.BinOp):
            op = type(node.op)
            if op is ast.BitXor:
                self.fail(node, "'^' is not a power here; use '**'")
            if op not in _BINOPS:
                self.fail(node, f"operator {type(node.op).__name__} is not allowed (use + - * / **)")
            a, b = self.build(node.left, depth + 1), self.build(node.right, depth + 1)
            if op is ast.Add:
                return a + b
            if op is ast.Sub:
                return a - b
            if op is ast.Mult:
                return a * b
            if op is ast.Div:
                if b == 0:
                    self.fail(node, "division by zero")
                return a / b
            if a.is_number and b.is_number:
                if not (b.is_real and a.is_real):  # e.g. 2**sqrt(-1): not a real number
                    self.fail(node, "powers must be real numbers")
                if abs(float(b)) > MAX_EXPONENT:
                    self.fail(node, f"numeric powers with exponent above {MAX_EXPONENT} are not allowed")
            return a**b
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                self.fail(node, "attribute access (method calls) is not allowed in a formula")
            if not isinstance(node.func, ast.Name):
                self.fail(node, "only calls of named math functions are allowed")
            name = node.func.id
            if name.startswith("__") or name not in FUNCTIONS:
                self.fail(node, f"unknown function {name!r} (allowed: {', '.join(sorted(FUNCTIONS))})")
            if node.keywords:
                self.fail(node, "keyword arguments are not allowed")
            fn, arity = FUNCTIONS[name]
            if len(node.args) != arity:
                self.fail(node, f"{name} takes {arity} argument(s), got {len(node.args)}")
            return fn(*(self.build(a, depth + 1) for a in node.args))
        word = _NODE_WORDS.get(type(node), f"{type(node).__name__} expressions")
        self.fail(node, f"{word}: not allowed in a formula")
